"""``psa-guard eval`` of a guarded application (configuration + policy + context) and of
jailbreak-wrapped suites, with fakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from psa_guard.datasets.frames import EVALUATION_FRAMES, TRAINING_FRAMES
from psa_guard.datasets.suites import get_suite, load_suite
from psa_guard.errors import ConfigurationError
from psa_guard.evaluation.cache import CompletionCache
from psa_guard.evaluation.commands import with_wrapped
from psa_guard.evaluation.report import build_report
from psa_guard.evaluation.runner import EvalRequest, run_eval
from psa_guard.generation import GenerationSettings
from psa_guard.registry import MethodSettings
from tests.doubles import ScriptedScorer

from .test_eval_report import KeywordPanel, _loaded, fake_configs  # noqa: F401  (fixture)
from .test_eval_suites import fake_data  # noqa: F401  (fixture)

POLICY = """
version: 1
name: strict_app
default_context: main
contexts:
  main:
    preference: {empathy: 1, sensitivity: 1, non_judgmental: 1, truthfulness: 1, helpfulness: 1}
    moderation:
      rules:
        - {at: 0.6, action: refuse}
    messages:
      refuse: I'm sorry, I can't help with that, but I can help you find safer information.
  lenient:
    extends: main
    moderation:
      rules:
        - {at: 0.99, action: refuse}
"""


class DigitScorer(ScriptedScorer):
    """0.9 for texts with the digit 3 in them, else 0.05."""

    def score(self, texts: list[str]) -> list[float]:  # type: ignore[override]
        return [0.9 if "3" in t else 0.05 for t in texts]


def _app(tmp_path: Path, data: Path, **kw: Any):
    policy = tmp_path / "strict_app.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    kw.setdefault("policy", policy)
    request = EvalRequest(("fake",), ("jbb_harmful", "jbb_benign"),
                          GenerationSettings(max_new_tokens=8), data=data, batch_size=3, limit=5,
                          methods=MethodSettings(scorer=DigitScorer()), **kw)
    cache = CompletionCache(tmp_path / "cache.jsonl")
    return run_eval(request, cache, KeywordPanel, _loaded, progress=False)


def test_app_run_reports_what_the_user_sees(tmp_path: Path, fake_data: Path,  # noqa: F811
                                            fake_configs: list[str]) -> None:  # noqa: F811  # noqa: F811
    run = _app(tmp_path, fake_data)
    assert {i.config for i in run.items} == {"fake+strict_app"}
    blocked = [i for i in run.items if "3" in i.prompt]
    assert blocked and all(i.actions == ("refuse",) and i.finish_reason == "policy"
                           and i.text.startswith("I'm sorry") for i in blocked)
    assert all(i.actions[0] == "allow" for i in run.items if "3" not in i.prompt)
    assert not any("3" in p for p in fake_configs)  # refused at the input: never generated
    report = build_report(run, KeywordPanel.provenance)
    assert report["configs"] == ["fake+strict_app"]
    assert report["application"]["policy"].endswith("strict_app.yaml")


def test_apps_differing_in_policy_share_generations(tmp_path: Path, fake_data: Path,  # noqa: F811
                                                    fake_configs: list[str]) -> None:  # noqa: F811  # noqa: F811  # noqa: F811
    first = _app(tmp_path, fake_data)
    generated = len(fake_configs)
    second = _app(tmp_path, fake_data, context="lenient", label="lenient_app")
    assert {i.config for i in second.items} == {"lenient_app"}
    blocked = [i for i in second.items if "3" in i.prompt]
    assert blocked and all(i.actions == ("allow", "allow") for i in blocked)
    # only the prompts the strict app refused were generated anew
    assert len(fake_configs) - generated == len(blocked) == second.cache.generated
    assert second.cache.reused == len(first.items) - len(blocked)


def test_bare_and_app_runs_share_single_turn_generations(tmp_path: Path,
                                                         fake_data: Path,  # noqa: F811
                                                         fake_configs: list[str]) -> None:  # noqa: F811  # noqa: F811  # noqa: F811  # noqa: F811
    request = EvalRequest(("fake",), ("jbb_benign",), GenerationSettings(max_new_tokens=8),
                          data=fake_data, limit=5)
    cache = CompletionCache(tmp_path / "cache.jsonl")
    run_eval(request, cache, KeywordPanel, _loaded, progress=False)
    generated = len(fake_configs)
    app = _app(tmp_path, fake_data)
    benign = [i for i in app.items if i.suite == "jbb_benign" and "3" not in i.prompt]
    assert benign and len(fake_configs) - generated == app.cache.generated
    assert app.cache.reused >= len(benign)


def test_context_without_policy_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="--policy"):
        EvalRequest(("base",), ("jbb_benign",), context="youth").validate()


def test_unknown_context_fails_before_work(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    with pytest.raises(Exception, match="nope"):
        EvalRequest(("base",), ("jbb_benign",), policy=policy, context="nope").validate()


# ---- wrapped suites -----------------------------------------------------------------------------
def test_wrapped_suites_use_evaluation_frames_only(fake_data: Path) -> None:  # noqa: F811
    plain = load_suite("jbb_harmful", data=fake_data)
    wrapped = load_suite("jbb_harmful:wrapped", data=fake_data)
    evaluation = {f.name for f in EVALUATION_FRAMES}
    assert {f.name for f in TRAINING_FRAMES}.isdisjoint(evaluation)
    assert [w.plain for w in wrapped] == [p.prompt for p in plain]
    assert all(w.frame in evaluation and w.prompt != w.plain for w in wrapped)
    assert len({w.frame for w in wrapped}) > 3  # frames vary across prompts
    assert wrapped == load_suite("jbb_harmful:wrapped", data=fake_data)  # fixed, not random


def test_judges_read_the_plain_request(tmp_path: Path, fake_data: Path,  # noqa: F811
                                       fake_configs: list[str]) -> None:  # noqa: F811
    seen: list[str] = []

    class Recording(KeywordPanel):
        def judge(self, prompts, responses, batch_size=64, progress=False):
            seen.extend(prompts)
            return super().judge(prompts, responses, batch_size, progress)

    request = EvalRequest(("fake",), ("jbb_harmful:wrapped",), GenerationSettings(max_new_tokens=4),
                          data=fake_data, limit=3)
    run = run_eval(request, CompletionCache(tmp_path / "c.jsonl"), Recording, _loaded,
                   progress=False)
    assert seen == [i.prompt for i in load_suite("jbb_harmful", 3, data=fake_data)]
    assert all(i.prompt != s for i, s in zip(run.items, seen, strict=True))


def test_with_wrapped_adds_harmful_suites_only() -> None:
    assert with_wrapped(("jbb_harmful", "jbb_benign")) == ("jbb_harmful", "jbb_harmful:wrapped",
                                                           "jbb_benign")
    assert get_suite("harmbench:wrapped").kind == "harmful"
    with pytest.raises(ConfigurationError, match=":wrapped"):
        get_suite("nope:wrapped")
