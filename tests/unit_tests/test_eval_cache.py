"""The append-only completion cache: round trip, keys, corruption detection, torn last lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from psa_guard.evaluation.cache import CacheRecord, CompletionCache, completion_key, settings_key
from psa_guard.generation import GenerationSettings

SETTINGS = settings_key(GenerationSettings(max_new_tokens=8))


def _record(prompt: str, text: str = "reply", config: str = "base") -> CacheRecord:
    return CacheRecord(config, "m", prompt, SETTINGS,
                       {"text": text, "prompt_tokens": 3, "completion_tokens": 2,
                        "finish_reason": "stop", "seconds": 0.1})


def test_round_trip(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "c.jsonl")
    cache.append([_record("a", "A"), _record("b", "B")])
    again = CompletionCache(tmp_path / "c.jsonl").load()
    assert len(again) == 2 and again.corrupted == []
    assert again.get(_record("a").key).text == "A"
    assert again.get(_record("zzz").key) is None


def test_key_depends_on_every_field() -> None:
    base = completion_key("base", "m", "p", SETTINGS)
    assert completion_key("direg", "m", "p", SETTINGS) != base
    assert completion_key("base", "m2", "p", SETTINGS) != base
    assert completion_key("base", "m", "p2", SETTINGS) != base
    assert completion_key("base", "m", "p", settings_key(GenerationSettings(max_new_tokens=9))) != base
    assert completion_key("base", "m", "p", settings_key(GenerationSettings(max_new_tokens=8))) == base


@pytest.mark.parametrize(
    "damage",
    [
        lambda line: line.replace('"reply-a"', '"tampered"'),   # payload edited: checksum fails
        lambda line: line[: len(line) // 2],                      # torn line: not JSON
        lambda line: "not json at all",
        lambda line: json.dumps({"config": "base"}),              # no checksum
    ],
)
def test_corrupted_line_is_detected_and_skipped(tmp_path: Path, damage) -> None:
    path = tmp_path / "c.jsonl"
    CompletionCache(path).append([_record("a", "reply-a"), _record("b", "reply-b")])
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = damage(lines[0])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cache = CompletionCache(path).load()
    assert cache.corrupted == [1]
    assert cache.get(_record("a").key) is None  # will be regenerated
    assert cache.get(_record("b").key).text == "reply-b"


def test_forged_key_is_rejected(tmp_path: Path) -> None:
    """A record whose key was recomputed for other fields (checksum valid) is still refused."""
    import hashlib

    path = tmp_path / "c.jsonl"
    body = json.loads(_record("a").to_line())
    body.pop("checksum")
    body["key"] = "0" * 64
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    body["checksum"] = hashlib.sha256(canonical.encode()).hexdigest()
    path.write_text(json.dumps(body) + "\n", encoding="utf-8")
    assert CompletionCache(path).load().corrupted == [1]


def test_append_after_torn_last_line_keeps_new_records(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    CompletionCache(path).append([_record("a")])
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"key": "half a record')  # a writer died mid-line
    cache = CompletionCache(path).load()
    cache.append([_record("b", "B")])
    reloaded = CompletionCache(path).load()
    assert reloaded.corrupted == [2]
    assert reloaded.get(_record("b").key).text == "B"
    assert reloaded.get(_record("a").key) is not None


def test_last_valid_record_wins(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    cache = CompletionCache(path)
    cache.append([_record("a", "old")])
    cache.append([_record("a", "new")])
    assert CompletionCache(path).load().get(_record("a").key).text == "new"
