"""Atomic whole-file writes: temporaries left by killed writers are removed by the next write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from psa_guard.core.atomic import atomic_path, stale_temporaries, write_atomic


def dead_pid() -> int:
    """The id of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_temporary_name_carries_the_writer_pid(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    with atomic_path(out) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(f".a.json.{os.getpid()}.") and tmp.name.endswith(".tmp")
        tmp.write_text("x")
    assert out.read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_the_next_write_removes_temporaries_of_dead_writers(tmp_path: Path) -> None:
    out = tmp_path / "state.json"
    out.write_text("old")
    stale = tmp_path / f".state.json.{dead_pid()}.0badc0de.tmp"
    stale.write_text("half a fi")
    assert stale_temporaries(out) == [stale]
    write_atomic(out, "new")
    assert out.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


@pytest.mark.skipif(os.name == "nt", reason="process probing is POSIX only")
def test_temporaries_of_running_writers_and_other_files_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "state.json"
    keep = [
        tmp_path / f".state.json.{os.getppid()}.0badc0de.tmp",  # a running writer
        tmp_path / f".other.json.{dead_pid()}.0badc0de.tmp",  # another destination
        tmp_path / ".state.json.0badc0de.tmp",  # not this module's naming
        tmp_path / f".state.json.x.{dead_pid()}.0badc0de.tmp",  # destination "state.json.x"
    ]
    for path in keep:
        path.write_text("x")
    assert stale_temporaries(out) == []
    write_atomic(out, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in keep] + ["state.json"])


def test_wildcards_in_the_name_are_literal(tmp_path: Path) -> None:
    out = tmp_path / "a[1].json"
    stale = tmp_path / f".a[1].json.{dead_pid()}.0badc0de.tmp"
    lookalike = tmp_path / f".a1.json.{dead_pid()}.0badc0de.tmp"
    stale.write_text("x")
    lookalike.write_text("x")
    assert stale_temporaries(out) == [stale]


def test_no_folder_means_no_temporaries(tmp_path: Path) -> None:
    assert stale_temporaries(tmp_path / "missing" / "a.json") == []
