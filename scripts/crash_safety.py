"""Crash safety of the commands that write files: SIGKILL at random points, restart, check.

Each scenario runs one ``psa-guard`` command until it exits 0, killing it with SIGKILL at a random
point and restarting it after each kill, at least ``--kills`` times, then checks what it left
against an uninterrupted reference run of the same command::

    python scripts/crash_safety.py --kills 10 --json docs/reliability_crash.json
    python scripts/crash_safety.py --model /path/to/hf-folder --scenario generate --kills 3

Scenarios and their checks:

* ``generate`` (``psa-guard generate``): every output line parses; every input id is there
  exactly once (none lost, none duplicated); every line that was whole when a kill hit is still
  there, byte for byte; each reply equals the reference run's.
* ``eval`` (``psa-guard eval``): every whole line of the completion cache verifies its checksum
  and key, except torn lines, which are only ever the last line when a kill hits and are read
  as corrupted (skipped) afterwards; every record that was whole at a kill is still there; no
  key is cached twice; ``report.json``, ``report.md`` and ``judged.jsonl`` parse, and the judged
  replies equal the reference run's.
* ``direg-train`` (``psa-guard direg train``) and ``arm-train`` (``psa-guard arm train``), the
  training commands that claim to resume: the checkpoint loads after every kill, the final
  artifact is bit for bit the reference run's, and the training log has one entry per step.

Every scenario also counts temporary files left behind by killed atomic writes.

**Kill points.** Each attempt draws its kill point at random: either when the command's progress
(1-3 lines appended to its output or cache, or the next checkpoint written), plus a
random delay of up to one progress interval so that the kill lands anywhere, mid-write included;
or at a uniform random time within the reference run's duration (model loading, judging, report
writing). A command that finishes before its kill point ends the round; if fewer than ``--kills``
kills were done, a new round starts on fresh files, so every round is checked whole.

The commands run as real processes (``python -m psa_guard.cli``). Tests pass their own launcher
(forked from a preloaded process) and a tiny model; the logic is the same.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

SCENARIOS = ("generate", "eval", "direg-train", "arm-train")
ATTRIBUTES = ("empathy", "sensitivity", "non_judgmental", "truthfulness", "helpfulness")


# ---- launching and killing ----------------------------------------------------------------------
class Running(Protocol):
    """A launched command."""

    pid: int

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


Launcher = Callable[[Sequence[str], Path], Running]


def exec_launcher(argv: Sequence[str], log: Path) -> Running:
    """``python -m psa_guard.cli ARGV`` as a new process, its output appended to ``log``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    with open(log, "ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "psa_guard.cli", *argv], env=env,
                                stdout=handle, stderr=subprocess.STDOUT)


def sigkill(process: Running) -> None:
    """SIGKILL, then reap."""
    try:
        os.kill(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(60)


@dataclass
class Progress:
    """Counts progress events of a run: JSONL lines appended, or files replaced (new inode)."""

    lines: Path | None = None
    replaced: Path | None = None
    _versions: set[tuple[int, int]] = field(default_factory=set)

    def count(self) -> int:
        if self.lines is not None:
            try:
                with open(self.lines, "rb") as handle:
                    return handle.read().count(b"\n")
            except FileNotFoundError:
                return 0
        if self.replaced is not None:
            try:
                stat = os.stat(self.replaced)
                self._versions.add((stat.st_ino, stat.st_mtime_ns))
            except FileNotFoundError:
                pass
            return len(self._versions)
        return 0


@dataclass
class Attempt:
    """One launch: how it ended and when."""

    mode: str
    seconds: float
    killed: bool
    exit_code: int | None


def run_until_done(launch: Launcher, argv: Sequence[str], log: Path, progress: Progress,
                   rng: random.Random, *, kills_wanted: int, reference_seconds: float,
                   after_kill: Callable[[], None], timeout: float = 900.0) -> list[Attempt]:
    """Launch ``argv`` until it exits by itself, killing it at random points up to
    ``kills_wanted`` times; ``after_kill`` snapshots the files after each kill.

    Raises:
        RuntimeError: the command failed (exit code not 0) or hung.
    """
    attempts: list[Attempt] = []
    interval = max(0.05, reference_seconds / 20)
    while True:
        kill_now = sum(a.killed for a in attempts) < kills_wanted
        mode = rng.choice(("progress", "progress", "time")) if kill_now else "none"
        target = progress.count() + rng.randint(1, 3 if progress.lines is not None else 1)
        when = rng.uniform(0.0, reference_seconds)
        started = time.monotonic()
        process = launch(argv, log)
        killed = False
        while process.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                sigkill(process)
                raise RuntimeError(f"{' '.join(argv[:1])} hung for {timeout:.0f} s; see {log}")
            if mode == "time" and elapsed >= when or mode == "progress" and (
                    progress.count() >= target):
                if mode == "progress":
                    time.sleep(rng.uniform(0.0, interval))
                if process.poll() is None:
                    sigkill(process)
                    killed = True
                break
            time.sleep(0.002)
        code = process.poll()
        attempts.append(Attempt(mode, round(time.monotonic() - started, 3), killed,
                                None if killed else code))
        if killed:
            after_kill()
            continue
        if code != 0:
            raise RuntimeError(f"{argv[0]} exited with {code}; see {log}")
        return attempts


def run_reference(launch: Launcher, argv: Sequence[str], log: Path, marker: Path) -> float:
    """Run ``argv`` once, uninterrupted, unless ``marker`` records that it was; its wall time."""
    if marker.exists():
        return float(marker.read_text())
    started = time.monotonic()
    process = launch(argv, log)
    code = process.wait(900)
    if code != 0:
        raise RuntimeError(f"reference run of {argv[0]} exited with {code}; see {log}")
    seconds = time.monotonic() - started
    from psa_guard.core.atomic import write_atomic

    write_atomic(marker, f"{seconds:.3f}\n")
    return seconds


# ---- reading what a run left --------------------------------------------------------------------
@dataclass
class Snapshot:
    """A JSONL file as a kill left it: its whole lines (raw) and whether a torn tail followed."""

    whole: list[bytes]
    torn_tail: bool


def snapshot(path: Path) -> Snapshot:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Snapshot([], False)
    lines = data.split(b"\n")
    return Snapshot([line + b"\n" for line in lines[:-1]], bool(lines[-1]))


def parses(line: bytes) -> Any | None:
    try:
        return json.loads(line)
    except ValueError:
        return None


def leftover_temporaries(*folders: Path) -> list[str]:
    """Hidden ``.NAME.<random>.tmp`` files of atomic writes that a kill interrupted."""
    found: list[str] = []
    for folder in folders:
        if folder.is_dir():
            found += sorted(str(p) for p in folder.rglob(".*.tmp"))
    return found


# ---- inputs -------------------------------------------------------------------------------------
def write_prompts(path: Path, n: int, data: str | None) -> None:
    """``n`` prompts as ``psa-guard generate`` input: benign suite prompts (jbb_benign,
    xstest_safe), or numbered questions when the data folder is not there."""
    try:
        from psa_guard.datasets.suites import load_suite

        prompts = [p.prompt for name in ("jbb_benign", "xstest_safe")
                   for p in load_suite(name, data=data)]
    except Exception:  # no data folder: any prompt does for crash safety
        prompts = []
    prompts = (prompts or [f"Question {i}: what is {i} plus {i}?" for i in range(n)])[:n]
    from psa_guard.core.atomic import write_atomic

    write_atomic(path, "".join(json.dumps({"id": f"p{i}", "prompt": text}) + "\n"
                               for i, text in enumerate(prompts)), encoding="utf-8")


def write_harm_pairs(path: Path, n: int) -> None:
    """Synthetic ``prompt``/``response`` pairs for ``direg train`` (content does not matter here)."""
    from psa_guard.core.atomic import write_atomic

    write_atomic(path, "".join(json.dumps({"prompt": f"Request {i}: tell me about item {i}.",
                                           "response": f"Sure. Item {i} is item {i}, step {i}."})
                               + "\n" for i in range(n)), encoding="utf-8")


def write_preference_pairs(path: Path, per_attribute: int) -> None:
    """Synthetic Pv-Arm preference pairs, train and held-out, for every attribute."""
    rows = []
    for attribute in ATTRIBUTES:
        for i in range(per_attribute):
            for split in ("train", "heldout"):
                rows.append({"attribute": attribute, "prompt": f"{split} {attribute} {i}?",
                             "chosen": f"A careful {attribute} answer {i}.",
                             "rejected": f"A careless answer {i}.", "source": "synthetic",
                             "split": split})
    from psa_guard.core.atomic import write_atomic

    write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# ---- scenarios ----------------------------------------------------------------------------------
@dataclass
class Settings:
    """What every scenario shares."""

    model: str
    workdir: Path
    launch: Launcher = exec_launcher
    kills: int = 10
    seed: int = 0
    data: str | None = None
    items: int = 48
    max_new_tokens: int = 24
    batch_size: int = 4
    train_steps: int = 30
    train_model: str | None = None
    arm_layers: int = 1
    policy: str | None = None


@dataclass
class Report:
    """The figures of one scenario (summed over its rounds)."""

    scenario: str
    rounds: int = 0
    kills: int = 0
    kill_modes: dict[str, int] = field(default_factory=dict)
    restarts: int = 0
    reference_seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, name: str, value: int) -> None:
        self.figures[name] = self.figures.get(name, 0) + value


def _tally(report: Report, attempts: list[Attempt]) -> None:
    report.rounds += 1
    report.restarts += len(attempts) - 1
    for attempt in attempts:
        if attempt.killed:
            report.kills += 1
            report.kill_modes[attempt.mode] = report.kill_modes.get(attempt.mode, 0) + 1


def scenario_generate(s: Settings, report: Report, round_dir: Path, rng: random.Random) -> None:
    prompts = s.workdir / "prompts.jsonl"
    if not prompts.exists():
        write_prompts(prompts, s.items, s.data)
    ids = [json.loads(line)["id"] for line in prompts.read_text().splitlines()]

    def argv(out: Path) -> list[str]:
        args = ["generate", "--input", str(prompts), "--output", str(out), "--model", s.model,
                "--batch-size", str(s.batch_size), "--max-new-tokens", str(s.max_new_tokens)]
        return args + (["--policy", s.policy] if s.policy else [])

    reference = s.workdir / "generate_reference.jsonl"
    report.reference_seconds = run_reference(s.launch, argv(reference), s.workdir / "log.txt",
                                             s.workdir / "generate_reference.seconds")
    expected = {row["id"]: row["response"] for row in map(json.loads, reference.read_bytes()
                                                          .splitlines())}
    out = round_dir / "out.jsonl"
    seen: list[Snapshot] = []
    attempts = run_until_done(s.launch, argv(out), round_dir / "log.txt", Progress(lines=out), rng,
                              kills_wanted=s.kills - report.kills,
                              reference_seconds=report.reference_seconds,
                              after_kill=lambda: seen.append(snapshot(out)))
    _tally(report, attempts)
    final = snapshot(out)
    rows = [parses(line) for line in final.whole]
    got = [row["id"] for row in rows if isinstance(row, dict) and "id" in row]
    finished_at_kills = {line for snap in seen for line in snap.whole}
    report.add("items", len(ids))
    report.add("finished", len(set(got)))
    report.add("lost", len(set(ids) - set(got)))
    report.add("duplicated", len(got) - len(set(got)))
    report.add("unparsable_lines", sum(row is None for row in rows) + int(final.torn_tail))
    report.add("torn_tails_at_kills", sum(snap.torn_tail for snap in seen))
    report.add("whole_lines_at_kills", len(finished_at_kills))
    report.add("whole_lines_lost_or_changed", len(finished_at_kills - set(final.whole)))
    report.add("replies_differing_from_reference", sum(
        1 for row in rows if isinstance(row, dict) and expected.get(row["id"]) != row["response"]))
    report.add("leftover_temporary_files", len(leftover_temporaries(round_dir)))


def _cache_lines(path: Path) -> tuple[list[Any], int, list[bytes]]:
    """``(valid records, whole lines that are not valid records, raw valid lines)``."""
    from psa_guard.evaluation.cache import CacheRecord

    snap = snapshot(path)
    valid, bad, raw = [], 0, []
    for line in snap.whole:
        if not line.strip():
            continue
        try:
            valid.append(CacheRecord.from_line(line.decode("utf-8")))
            raw.append(line)
        except (ValueError, KeyError, TypeError):
            bad += 1
    return valid, bad, raw


def scenario_eval(s: Settings, report: Report, round_dir: Path, rng: random.Random) -> None:
    limit = max(1, s.items // 2)

    def argv(out: Path, cache: Path) -> list[str]:
        return ["eval", "--config", "base", "--suite", "jbb_benign", "harmbench", "--limit",
                str(limit), "--model", s.model, "--cache", str(cache), "--out", str(out),
                "--max-new-tokens", str(s.max_new_tokens), "--batch-size", str(s.batch_size),
                "--no-progress"] + (["--data", s.data] if s.data else [])

    reference = s.workdir / "eval_reference"
    report.reference_seconds = run_reference(
        s.launch, argv(reference, s.workdir / "eval_reference_cache.jsonl"),
        s.workdir / "log.txt", s.workdir / "eval_reference.seconds")
    expected = {(r["suite"], r["id"]): r for r in map(json.loads, (reference / "judged.jsonl")
                                                       .read_bytes().splitlines())}
    out, cache = round_dir / "eval", round_dir / "cache.jsonl"
    seen: list[Snapshot] = []
    valid_at_kills: set[bytes] = set()

    def after_kill() -> None:
        seen.append(snapshot(cache))
        valid_at_kills.update(_cache_lines(cache)[2])

    attempts = run_until_done(s.launch, argv(out, cache), round_dir / "log.txt",
                              Progress(lines=cache), rng, kills_wanted=s.kills - report.kills,
                              reference_seconds=report.reference_seconds, after_kill=after_kill)
    _tally(report, attempts)
    from psa_guard.evaluation.cache import CompletionCache

    records, bad, raw = _cache_lines(cache)
    keys = [r.key for r in records]
    loaded = CompletionCache(cache).load()
    torn = sum(snap.torn_tail for snap in seen)
    report.add("items", 2 * limit)
    report.add("cache_records", len(set(keys)))
    report.add("cache_duplicated_keys", len(keys) - len(set(keys)))
    report.add("cache_torn_tails_at_kills", torn)
    report.add("cache_corrupted_lines", len(loaded.corrupted))
    report.add("cache_corrupted_lines_not_from_a_torn_tail", max(0, bad - torn))
    report.add("cache_records_lost_or_changed", len(valid_at_kills - set(raw)))
    judged = _judged(out)
    report.add("lost", len(set(expected) - {(r["suite"], r["id"]) for r in judged}))
    report.add("finished", len(judged))
    report.add("duplicated", len(judged) - len({(r["suite"], r["id"]) for r in judged}))
    report.add("unparsable_lines", sum(parses(line) is None for line in
                                       (out / "judged.jsonl").read_bytes().splitlines()))
    json.loads((out / "report.json").read_text())  # raises if the report does not parse
    if not (out / "report.md").read_text().strip():
        report.problems.append(f"{out / 'report.md'} is empty")
    report.add("judged_rows_differing_from_reference", sum(
        1 for r in judged if expected.get((r["suite"], r["id"])) != r))
    report.add("leftover_temporary_files", len(leftover_temporaries(round_dir)))


def _judged(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "judged.jsonl").read_bytes().splitlines()]


def _checkpoint_step(path: Path, key: str) -> int | None:
    """The step recorded in a training checkpoint, or None if it does not load."""
    import torch

    if not path.exists():
        return 0
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)[key])
    except Exception:
        return None


def _same_tensors(a: Path, b: Path) -> bool:
    from safetensors import safe_open

    with safe_open(str(a), framework="pt") as fa, safe_open(str(b), framework="pt") as fb:
        if set(fa.keys()) != set(fb.keys()):
            return False
        return all(fa.get_tensor(k).equal(fb.get_tensor(k)) for k in fa.keys())  # noqa: SIM118


def scenario_train(kind: str, s: Settings, report: Report, round_dir: Path,
                   rng: random.Random) -> None:
    model = s.train_model or s.model
    steps = s.train_steps
    if kind == "direg-train":
        data = s.workdir / "harm_pairs.jsonl"
        if not data.exists():
            write_harm_pairs(data, 32)

        def argv(out: Path) -> list[str]:
            return ["direg", "train", "--data", str(data), "--out", str(out), "--model", model,
                    "--steps", str(steps), "--save-every", str(max(1, steps // 10)),
                    "--batch-size", "2", "--max-length", "48", "--no-progress"]

        artifact, checkpoint, step_key = "harm_vector.safetensors", "checkpoint.pt", "step"
    else:
        data = s.workdir / "pairs.jsonl"
        if not data.exists():
            write_preference_pairs(data, 6)

        def argv(out: Path) -> list[str]:
            return ["arm", "train", "--data", str(data), "--out", str(out), "--model", model,
                    "--steps", str(steps), "--layers", str(s.arm_layers), "--no-grid",
                    "--heldout-limit", "2", "--pairs-per-attribute", "1",
                    "--max-pairs-per-attribute", "6", "--max-prompt-tokens", "16",
                    "--max-response-tokens", "12"]

        artifact, checkpoint, step_key = "pcgrad/pvarm.safetensors", "pcgrad/checkpoint.pt", "step"
    reference = s.workdir / f"{kind}_reference"
    report.reference_seconds = run_reference(s.launch, argv(reference), s.workdir / "log.txt",
                                             s.workdir / f"{kind}_reference.seconds")
    out = round_dir / "train"
    steps_at_kills: list[int | None] = []
    attempts = run_until_done(
        s.launch, argv(out), round_dir / "log.txt", Progress(replaced=out / checkpoint), rng,
        kills_wanted=s.kills - report.kills, reference_seconds=report.reference_seconds,
        after_kill=lambda: steps_at_kills.append(_checkpoint_step(out / checkpoint, step_key)))
    _tally(report, attempts)
    report.add("checkpoints_unreadable_at_kills", sum(v is None for v in steps_at_kills))
    report.add("checkpoints_written_before_kills", sum(1 for v in steps_at_kills if v))
    report.add("artifact_differs_from_reference", int(not _same_tensors(reference / artifact,
                                                                         out / artifact)))
    if kind == "direg-train":
        log_steps = len(json.loads((out / "train.json").read_text())["losses"])
    else:
        log_steps = len(json.loads((out / "pcgrad" / "train_log.json").read_text())["loss"])
        json.loads((out / "report.json").read_text())
    report.add("steps", steps)
    report.add("steps_lost_or_duplicated_in_log", abs(log_steps - steps))
    report.add("leftover_temporary_files", len(leftover_temporaries(round_dir)))


def run_scenario(name: str, settings: Settings) -> Report:
    """Run one scenario in rounds until at least ``settings.kills`` kills were done."""
    report = Report(name)
    rng = random.Random(f"{settings.seed}:{name}")
    settings.workdir.mkdir(parents=True, exist_ok=True)
    while report.kills < settings.kills or report.rounds == 0:
        round_dir = settings.workdir / f"{name}_round{report.rounds}"
        shutil.rmtree(round_dir, ignore_errors=True)
        round_dir.mkdir(parents=True)
        if name == "generate":
            scenario_generate(settings, report, round_dir, rng)
        elif name == "eval":
            scenario_eval(settings, report, round_dir, rng)
        else:
            scenario_train(name, settings, report, round_dir, rng)
        if report.rounds >= 5 * max(1, settings.kills):
            report.problems.append("too few kills landed before the command finished")
            break
    return report


def failures(report: Report) -> list[str]:
    """What went wrong: every figure that must be zero and is not, plus the problems."""
    must_be_zero = ("lost", "duplicated", "unparsable_lines", "whole_lines_lost_or_changed",
                    "replies_differing_from_reference", "judged_rows_differing_from_reference",
                    "cache_duplicated_keys",
                    "cache_corrupted_lines_not_from_a_torn_tail", "cache_records_lost_or_changed",
                    "checkpoints_unreadable_at_kills", "artifact_differs_from_reference",
                    "steps_lost_or_duplicated_in_log", "leftover_temporary_files")
    bad = [f"{report.scenario}: {k} = {report.figures[k]}" for k in must_be_zero
           if report.figures.get(k)]
    if report.scenario == "eval" and report.figures.get("cache_corrupted_lines", 0) > \
            report.figures.get("cache_torn_tails_at_kills", 0):
        bad.append("eval: more corrupted cache lines than torn tails")
    return bad + [f"{report.scenario}: {p}" for p in report.problems]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--kills", type=int, default=10, help="at least this many kills each")
    parser.add_argument("--model", default="default", help="'default' or a model folder")
    parser.add_argument("--train-model", default=None,
                        help="model of the training scenarios (default: --model)")
    parser.add_argument("--items", type=int, default=48, help="prompts (generate; eval: half)")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--arm-layers", type=int, default=1)
    parser.add_argument("--policy", default=None, help="generate with this policy's checks")
    parser.add_argument("--data", default=None, help="safety-data folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("crash-safety-work"))
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    settings = Settings(model=args.model, workdir=args.workdir, launch=exec_launcher,
                        kills=args.kills, seed=args.seed,
                        data=args.data, items=args.items, max_new_tokens=args.max_new_tokens,
                        batch_size=args.batch_size, train_steps=args.train_steps,
                        train_model=args.train_model, arm_layers=args.arm_layers,
                        policy=args.policy)
    reports = []
    for name in args.scenario:
        started = time.monotonic()
        report = run_scenario(name, settings)
        report.figures["seconds"] = round(time.monotonic() - started, 1)
        reports.append(report)
        print(json.dumps(asdict(report)), flush=True)
    problems = [p for r in reports for p in failures(r)]
    if args.json:
        from psa_guard.core.atomic import write_atomic

        write_atomic(args.json, json.dumps({
            "command": " ".join(["python", "scripts/crash_safety.py", *(argv or sys.argv[1:])]),
            "reports": [asdict(r) for r in reports], "problems": problems}, indent=1) + "\n")
    for problem in problems:
        print(f"FAIL {problem}")
    print("all checks passed" if not problems else f"{len(problems)} checks failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
