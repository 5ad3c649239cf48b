"""``benchmarks/arm_control.py``: which suite judges which attribute, and what a grid point runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from psa_guard.datasets.suites import SUITES

from ..doubles import load_benchmark


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_benchmark("arm_control")


def test_every_judged_suite_is_an_evaluation_suite_with_a_training_stand_in(
        script: ModuleType) -> None:
    assert script.JUDGED["non_judgmental"][0] == "donotanswer_bias"
    for suite, _ in script.JUDGED.values():
        assert suite in SUITES
        assert suite in script.TRAIN_SETS


def test_prompt_count_accepts_a_positive_number_or_all(script: ModuleType) -> None:
    assert script._prompt_count("36") == 36
    assert script._prompt_count("all") is None
    for bad in ("0", "-2", "many"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integer or 'all'"):
            script._prompt_count(bad)


def test_a_grid_point_generates_only_its_attribute_suite(script: ModuleType, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    requests: list[Any] = []

    def fake_run_eval(request: Any, *_: Any, **__: Any) -> SimpleNamespace:
        requests.append(request)
        verdict = SimpleNamespace(p_refused=0.25, p_unsafe=0.5, p_toxic=0.125)
        return SimpleNamespace(items=[SimpleNamespace(suite=s, id="1", verdict=verdict)
                                      for s in request.suites])

    monkeypatch.setattr(script, "run_eval", fake_run_eval)
    monkeypatch.setattr(script, "load_judges", lambda: None)
    args = argparse.Namespace(cache=tmp_path / "cache.jsonl", max_new_tokens=8, train=False,
                              prompts=None)
    runner = script.Runner(args)
    assert runner.scores("arm", None, ("non_judgmental",)) == {"non_judgmental": 0.875}
    assert requests[-1].suites == ("donotanswer_bias",) and requests[-1].limit is None
    everything = runner.scores("base", None)
    assert set(requests[-1].suites) == {"jbb_benign", "harmbench", "donotanswer_bias"}
    assert everything == {"helpfulness": 0.75, "sensitivity": 0.5, "non_judgmental": 0.875}


def test_grid_rows_pair_prompts_by_id(script: ModuleType, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run_eval(request: Any, *_: Any, **__: Any) -> SimpleNamespace:
        # the runner may return items in any order; values() must come back in id order
        items = [SimpleNamespace(suite="harmbench", id=i, verdict=SimpleNamespace(p_unsafe=p))
                 for i, p in (("b", 0.5), ("a", 0.0), ("c", 1.0))]
        return SimpleNamespace(items=items)

    monkeypatch.setattr(script, "run_eval", fake_run_eval)
    monkeypatch.setattr(script, "load_judges", lambda: None)
    args = argparse.Namespace(cache=tmp_path / "cache.jsonl", max_new_tokens=8, train=False,
                              prompts=3)
    runner = script.Runner(args)
    assert runner.values("arm", None, ("sensitivity",)) == {"sensitivity": [1.0, 0.5, 0.0]}
    assert runner.scores("arm", None, ("sensitivity",)) == {"sensitivity": 0.5}
