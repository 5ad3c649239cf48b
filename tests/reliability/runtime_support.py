"""Helpers of the runtime reliability tests (crash safety, load, faults).

* :func:`load_script` imports ``scripts/<name>.py`` or ``benchmarks/<name>.py`` (not packages).
* :class:`ForkLauncher` starts ``psa-guard`` commands as separate processes forked from a
  preloaded fork server, so a restart costs a fork and a tiny model load instead of a Python
  start (seconds); the processes are real and SIGKILL kills them as it kills ``psa-guard``.

This module is imported by the fork server too (``run_cli`` is the forked target): keep its
top-level imports light.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: What the fork server imports once, so that a forked command starts in milliseconds.
PRELOAD = ["psa_guard.cli", "psa_guard.commands", "psa_guard.jobs", "psa_guard.loading",
           "psa_guard.pipeline", "psa_guard.evaluation.commands", "psa_guard.evaluation.runner",
           "psa_guard.evaluation.judges", "psa_guard.evaluation.report",
           "psa_guard.evaluation.plots", "psa_guard.direg.commands", "psa_guard.direg.train",
           "psa_guard.arm.commands", "psa_guard.arm.pipeline", "peft", "transformers", "torch",
           "tests.reliability.runtime_support"]


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (or ``benchmarks/<name>.py``) as a module, ``main`` not run."""
    path = ROOT / "scripts" / f"{name}.py"
    if not path.exists():
        path = ROOT / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def run_cli(argv: Sequence[str], log: str) -> None:
    """The forked process: ``psa-guard ARGV`` with its output appended to ``log``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import torch

    from psa_guard.cli import main

    torch.set_num_threads(1)
    sys.exit(main(list(argv)))


class Forked:
    """A command forked by :class:`ForkLauncher` (the ``Running`` protocol of crash_safety)."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.pid = int(process.pid)

    def poll(self) -> int | None:
        return self.process.exitcode  # type: ignore[no-any-return]

    def kill(self) -> None:
        self.process.kill()

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise TimeoutError(f"process {self.pid} still running after {timeout} s")
        return int(self.process.exitcode)


class ForkLauncher:
    """Launches ``psa-guard`` commands forked from a single-threaded, preloaded fork server."""

    def __init__(self) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)

    def __call__(self, argv: Sequence[str], log: Path) -> Forked:
        process = self.context.Process(target=run_cli, args=(list(argv), str(log)), daemon=True)
        process.start()
        return Forked(process)
