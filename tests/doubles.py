"""Test doubles shared by the tests: a small policy, a scripted moderation scorer, and a loader for
the scripts under ``benchmarks/`` (which are not a package).

The scorer is scripted by keyword so that tests control which action a policy takes; it checks
the guard's routing, never the quality of any model's output.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from psa_guard.errors import ModerationUnavailableError

POLICY = """
version: 1
name: test_app
default_context: general
contexts:
  general:
    preference: {empathy: 1, sensitivity: 1, non_judgmental: 1, truthfulness: 1, helpfulness: 1}
    moderation:
      rules:
        - {at: 0.3, action: steer}
        - {at: 0.6, action: refuse_with_resources}
      on_unavailable: block
    messages:
      steer: Be extra careful.
      refuse_with_resources: I can't help with that. Please reach out to
      block: Blocked for safety.
    resources:
      - {name: Helpline, contact: Call 123, locales: [en-GB]}
      - {name: Emergency, contact: Call local services}
  strict:
    extends: general
    moderation:
      rules:
        - {at: 0.1, action: refuse}
    messages:
      refuse: Not here.
"""


class ScriptedScorer:
    """Scores by keyword: 'bomb' 0.9, 'sad' 0.4, 'FAIL' raises; everything else 0.05."""

    name = "scripted"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def score(self, texts: Sequence[str]) -> list[float]:
        self.seen.extend(texts)
        out = []
        for text in texts:
            if "FAIL" in text:
                raise ModerationUnavailableError("HTTP 500 after 3 attempts")
            out.append(0.9 if "bomb" in text else 0.4 if "sad" in text else 0.05)
        return out


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` as a module (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
