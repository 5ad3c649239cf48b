"""Crash safety (issue 19, item 3), the CI-sized run of ``scripts/crash_safety.py``.

``psa-guard generate``, ``psa-guard eval``, ``psa-guard direg train`` and ``psa-guard arm train``
run as separate processes on the tiny model and are killed with SIGKILL at random points and
restarted until they finish; then nothing finished may be lost or duplicated, every output line
must parse, the caches must verify, and the results must equal an uninterrupted run's. The full
run (the embedded model, at least 10 kills each) is ``python scripts/crash_safety.py``; its
figures are in docs/reliability.md.

The harness is checked too: a writer that neither resumes nor repairs is caught.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.reliability.runtime_support import ForkLauncher, load_script


@pytest.fixture(scope="module")
def crash() -> ModuleType:
    return load_script("crash_safety")


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkLauncher]:
    launcher = ForkLauncher()
    log = tmp_path_factory.mktemp("fork") / "warm-up.log"
    assert launcher(["--help"], log).wait(120) == 0  # starts the fork server (imports once)
    yield launcher


# (scenario, kills, settings): small jobs, several kills each; the script does >= 10 on the
# embedded model
CASES = [
    ("generate", 5, {"items": 20, "max_new_tokens": 16, "batch_size": 2}),
    ("eval", 5, {"items": 20, "max_new_tokens": 16, "batch_size": 2}),
    ("direg-train", 2, {"train_steps": 20}),
    ("arm-train", 1, {"train_steps": 27}),  # checkpoints at steps 25 and 27
]


@pytest.mark.parametrize(("scenario", "kills", "extra"), CASES, ids=[c[0] for c in CASES])
def test_a_command_killed_at_random_points_loses_and_duplicates_nothing(
        crash: ModuleType, launch: ForkLauncher, tiny_model_dir: Path, tmp_path: Path,
        scenario: str, kills: int, extra: dict[str, Any]) -> None:
    settings = crash.Settings(model=str(tiny_model_dir), workdir=tmp_path, launch=launch,
                              kills=kills, seed=19, **extra)
    report = crash.run_scenario(scenario, settings)
    figures = report.figures
    assert report.kills >= kills and report.restarts >= kills
    assert crash.failures(report) == []
    if scenario == "generate":
        assert figures["finished"] == figures["items"]  # every prompt, once
        assert figures["whole_lines_at_kills"] > 0  # kills landed after finished work
    elif scenario == "eval":
        assert figures["cache_records"] == figures["finished"] == figures["items"]
        assert figures["cache_corrupted_lines"] <= figures["cache_torn_tails_at_kills"]
    else:
        assert figures["artifact_differs_from_reference"] == 0
        assert figures["steps_lost_or_duplicated_in_log"] == 0


def naive_generate(argv: Sequence[str], log: str) -> None:
    """A writer without resume or repair: it appends a reply for every prompt on every start."""
    arguments = dict(zip(argv[1::2], argv[2::2]))
    prompts = Path(arguments["--input"]).read_text().splitlines()
    with open(arguments["--output"], "a", encoding="utf-8") as out:
        for line in prompts:
            row = json.loads(line)
            out.write(json.dumps({"id": row["id"], "response": f"reply to {row['id']}"}) + "\n")
            out.flush()
            time.sleep(0.01)
    sys.exit(0)


class NaiveLauncher(ForkLauncher):
    def __call__(self, argv: Sequence[str], log: Path) -> Any:
        from tests.reliability.runtime_support import Forked

        process = self.context.Process(target=naive_generate, args=(list(argv), str(log)))
        process.start()
        return Forked(process)


def test_the_harness_catches_a_writer_that_does_not_resume(crash: ModuleType,
                                                           launch: ForkLauncher,
                                                           tmp_path: Path) -> None:
    settings = crash.Settings(model="unused", workdir=tmp_path, launch=NaiveLauncher(), kills=3,
                              items=30, seed=1)
    report = crash.run_scenario("generate", settings)
    assert report.kills >= 3
    assert report.figures["duplicated"] > 0
    assert any("duplicated" in problem for problem in crash.failures(report))


def test_the_script_runs_from_its_command_line(crash: ModuleType, launch: ForkLauncher,
                                               tiny_model_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` wires the options through to a report file (forked commands, as above: the
    script's own launcher starts Python for each, which the full run exercises)."""
    monkeypatch.setattr(crash, "exec_launcher", launch)
    out = tmp_path / "crash.json"
    code = crash.main(["--scenario", "generate", "--kills", "1", "--model", str(tiny_model_dir),
                       "--items", "6", "--max-new-tokens", "4", "--workdir",
                       str(tmp_path / "work"), "--json", str(out)])
    result = json.loads(out.read_text())
    assert code == 0 and result["problems"] == []
    (report,) = result["reports"]
    assert report["scenario"] == "generate" and report["kills"] >= 1
    assert report["figures"]["finished"] == report["figures"]["items"]
    assert os.path.exists(tmp_path / "work" / "generate_reference.jsonl")


# Every place in psa_guard/, integrations/, scripts/ and benchmarks/ that writes a file, unless it
# writes into an ``atomic_path`` temporary (the calls of write_atomic, write_jsonl and append_jsonl
# are those helpers): (file, code) -> how it stays crash-safe. docs/reliability.md has the table
# per file.
SCANNED = ("psa_guard", "integrations", "scripts", "benchmarks")
WRITES = re.compile(r"\.savefig\(|np\.save\(|torch\.save\(|save_file\(|\.write_text\(|"
                    r"\.write_bytes\(|open\([^)]*[\"'](?:w|a|x|r\+)|save_pretrained\(|"
                    r"shutil\.copy|\.to_csv\(|json\.dump\(|os\.write\(|truncate\(")
NOT_ATOMIC_PATH = {
    ("psa_guard/core/jsonl.py", 'open(path, "a+b", buffering=0)'): "append_jsonl: whole lines",
    ("psa_guard/core/jsonl.py", "os.ftruncate(handle.fileno(), start)"): "append roll-back",
    ("psa_guard/core/jsonl.py", "os.write(fd, view)"): "append_jsonl's write",
    ("psa_guard/core/jsonl.py", 'open(path, "r+b")'): "repair_jsonl_tail: cut a torn tail",
    ("psa_guard/core/jsonl.py", "handle.truncate(good_end)"): "repair_jsonl_tail",
    ("psa_guard/direg/commands.py", "model.save_pretrained(staging)"): "staged, moved in",
    ("psa_guard/direg/commands.py", "tokenizer.save_pretrained(staging)"): "staged, moved in",
    ("psa_guard/embedded.py", 'open(dest, "wb")'): "staging folder, renamed into place",
    ("psa_guard/embedded.py", "model.save_pretrained(out_dir)"): "staging folder",
    ("psa_guard/embedded.py", "tokenizer.save_pretrained(out_dir)"): "staging folder",
    ("psa_guard/loading.py", "model.save_pretrained(folder)"): "text of an error message",
    ("scripts/crash_safety.py", 'open(log, "ab")'): "a command's log: appended",
    ("benchmarks/load_serve.py", 'open(args.server_log, "ab")'): "the server's log: appended",
    ("scripts/build_category_data.py", 'open(c.read("advbench")'): "a read (\"advbench\" is no mode)",
}


def test_every_file_the_project_writes_is_written_atomically_or_appended() -> None:
    root = Path(__file__).resolve().parents[2]
    unexplained = []
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            lines = path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines):
                if not WRITES.search(line) or line.strip().startswith("#"):
                    continue
                if any("atomic_path(" in before for before in lines[max(0, number - 3):number + 1]):
                    continue
                if not any(file == name and code in line for file, code in NOT_ATOMIC_PATH):
                    unexplained.append(f"{name}:{number + 1}: {line.strip()}")
    assert unexplained == [], "write it with core.atomic or core.jsonl, or explain it here"
