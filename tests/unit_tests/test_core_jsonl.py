"""psa_guard.core: JSONL reading (strict and lenient), appends, tail repair, atomic writes."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from psa_guard import core
from psa_guard.core.atomic import atomic_path, write_atomic
from psa_guard.core.jsonl import (
    append_jsonl,
    iter_jsonl,
    read_jsonl,
    read_jsonl_lenient,
    repair_jsonl_tail,
    write_jsonl,
)
from psa_guard.errors import DataError, InputLineError


def test_core_public_api() -> None:
    assert sorted(core.__all__) == [
        "EMBEDDER_NAME", "EMBEDDING_DIM", "Embedder", "LinearHead", "append_jsonl", "atomic_path",
        "balanced_weights", "dumps_line", "encode_cached", "file_sha256", "fit_logistic",
        "iter_jsonl", "load_embedder", "load_head", "parse_line", "read_jsonl",
        "read_jsonl_lenient", "repair_jsonl_tail", "save_head", "verify_head", "write_atomic",
        "write_jsonl",
    ]
    for name in core.__all__:
        assert hasattr(core, name), name


# ---- strict reading ---------------------------------------------------------------------------


def test_iter_jsonl_numbers_lines_as_an_editor_does(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\n', encoding="utf-8")
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2})]
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(("bad", "reason"), [
    ("{not json", "not valid JSON"),
    ('{"a": 1', "not valid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('"text"', "expected a JSON object, got str"),
])
def test_a_bad_line_names_the_file_and_line(tmp_path: Path, bad: str, reason: str) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(f'{{"a": 1}}\n\n{bad}\n{{"a": 2}}\n', encoding="utf-8")
    with pytest.raises(InputLineError, match=reason) as info:
        read_jsonl(path)
    assert info.value.line_number == 3 and info.value.path == str(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)


def test_objects_false_accepts_any_json_value(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('[1, 2]\n"x"\n3\n', encoding="utf-8")
    assert read_jsonl(path, objects=False) == [[1, 2], "x", 3]


def test_gzip_files_are_read_through_gzip(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('{"chosen": "ünïcode"}\n')
    assert read_jsonl(path) == [{"chosen": "ünïcode"}]


def test_a_missing_file_is_a_file_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_jsonl(tmp_path / "nope.jsonl")


# ---- lenient reading --------------------------------------------------------------------------


def _needs_id(row: dict) -> str:
    if not isinstance(row["id"], str):
        raise DataError(f"'id' must be a string, got {row['id']!r}")
    return row["id"]


def test_lenient_reading_collects_every_bad_line_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join([
        '{"id": "a"}',
        "this is not json",
        '{"no": "id"}',
        "",
        '{"id": 7}',
        "[1]",
        '{"id": "b"}',
    ]) + "\n", encoding="utf-8")
    good, bad = read_jsonl_lenient(path, _needs_id)
    assert good == [(1, "a"), (7, "b")]
    assert [e.line_number for e in bad] == [2, 3, 5, 6]
    reasons = [e.reason for e in bad]
    assert "not valid JSON" in reasons[0]
    assert "missing key 'id'" in reasons[1]
    assert reasons[2] == "'id' must be a string, got 7"
    assert "expected a JSON object" in reasons[3]
    assert all(str(e).startswith(f"{path}:{e.line_number}: ") for e in bad)


def test_lenient_reading_can_replace_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "\xff\xfe"\n{"id": "b"}\n')
    good, bad = read_jsonl_lenient(path, lambda row: row["id"], errors="replace")
    assert [record for _, record in good] == ["a", "b"]
    assert [e.line_number for e in bad] == [2]


# ---- appending and repairing ------------------------------------------------------------------


def test_append_writes_whole_lines_and_creates_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.jsonl"
    assert append_jsonl(path, [{"id": 1}, {"id": "ü"}]) == 2
    assert append_jsonl(path, []) == 0
    assert append_jsonl(path, [{"id": 3}]) == 1
    assert path.read_text(encoding="utf-8") == '{"id": 1}\n{"id": "ü"}\n{"id": 3}\n'


def test_append_fsyncs_what_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    append_jsonl(tmp_path / "out.jsonl", [{"id": 1}])
    assert len(synced) == 1


def test_append_after_a_torn_line_keeps_the_new_lines_whole(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": 1}\n{"id": 2, "resp', encoding="utf-8")
    append_jsonl(path, [{"id": 3}])
    good, bad = read_jsonl_lenient(path)
    assert [row["id"] for _, row in good] == [1, 3]
    assert [e.line_number for e in bad] == [2]


def test_append_refuses_a_line_break_inside_a_row(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match="line break"):
        append_jsonl(path, [{"id": 1}], encode=lambda row: json.dumps(row, indent=1))
    assert not path.exists()


def test_repair_cuts_a_torn_last_line_so_appends_resume_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "a", "response": "x"}\n{"id": "b", "resp', encoding="utf-8")
    assert repair_jsonl_tail(path, lambda row: row["id"]) == ["a"]
    assert path.read_text(encoding="utf-8") == '{"id": "a", "response": "x"}\n'
    append_jsonl(path, [{"id": "b"}])
    assert read_jsonl(path) == [{"id": "a", "response": "x"}, {"id": "b"}]


def test_repair_cuts_from_the_first_line_that_parse_rejects(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "a"}\n\n{"no_id": 1}\n{"id": "c"}\n', encoding="utf-8")
    assert repair_jsonl_tail(path, lambda row: row["id"]) == ["a"]
    assert path.read_text(encoding="utf-8") == '{"id": "a"}\n\n'


def test_repair_leaves_a_sound_file_and_a_missing_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    text = '{"id": "a"}\n{"id": "b"}\n'
    path.write_text(text, encoding="utf-8")
    before = path.stat().st_mtime_ns
    assert repair_jsonl_tail(path) == [{"id": "a"}, {"id": "b"}]
    assert path.read_text(encoding="utf-8") == text and path.stat().st_mtime_ns == before
    assert repair_jsonl_tail(tmp_path / "missing.jsonl") == []
    assert not (tmp_path / "missing.jsonl").exists()


# ---- atomic whole-file writes -----------------------------------------------------------------

OLD = '{"old": true}\n'


def _only_the_file_is_left(path: Path) -> bool:
    return [p.name for p in path.parent.iterdir()] == [path.name]


def test_write_jsonl_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "rows.jsonl"
    rows = [{"id": 1, "text": "ünïcode"}, {"id": 2}]
    write_jsonl(path, rows)
    assert read_jsonl(path) == rows
    assert _only_the_file_is_left(path)


def test_a_failed_rename_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(OLD, encoding="utf-8")

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_jsonl(path, [{"new": 1}])
    assert path.read_text(encoding="utf-8") == OLD
    assert _only_the_file_is_left(path)


def test_a_failed_fsync_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(OLD, encoding="utf-8")

    def fail(fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="I/O error"):
        write_atomic(path, "new content\n")
    assert path.read_text(encoding="utf-8") == OLD
    assert _only_the_file_is_left(path)


def test_rows_that_fail_midway_keep_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(OLD, encoding="utf-8")

    def rows() -> Iterator[dict]:
        yield {"id": 1}
        raise RuntimeError("generator broke")

    with pytest.raises(RuntimeError, match="generator broke"):
        write_jsonl(path, rows())
    with pytest.raises(ValueError, match="line break"):
        write_jsonl(path, [{"id": 1}], encode=lambda row: "{\n}")
    assert path.read_text(encoding="utf-8") == OLD
    assert _only_the_file_is_left(path)


def test_atomic_path_for_writers_that_take_a_file_name(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer died")
    assert path.read_bytes() == b"old" and _only_the_file_is_left(path)
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp != path
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and _only_the_file_is_left(path)
