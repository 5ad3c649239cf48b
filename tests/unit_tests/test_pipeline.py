"""The request pipeline, and the defects its wiring fixed (issue: one request pipeline, a-i).

Each defect test names its letter; each would fail on the wiring that existed before the pipeline
(front ends that loaded the policy, the scorer and the steering themselves).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from psa_guard.arm import ArmConfig, ArmGenerator, PvArm
from psa_guard.errors import ConfigurationError, PolicyError
from psa_guard.generation import ChatGenerator, Completion, GenerationSettings
from psa_guard.guard import PolicyGuard
from psa_guard.jobs import read_prompts, run_generate_job
from psa_guard.loading import LoadedModel
from psa_guard.moderation.base import score_texts
from psa_guard.pipeline import RequestOptions, RequestPipeline
from psa_guard.policy import Policy
from psa_guard.registry import MethodSettings
from psa_guard.steering import Steering
from psa_guard.zo.config import ZOSettings
from tests.doubles import POLICY, ScriptedScorer

SHORT = GenerationSettings(max_new_tokens=4)

GUIDED_POLICY = POLICY.replace(
    "  strict:\n    extends: general\n",
    "  strict:\n    extends: general\n    beta: 0.25\n"
    "    preference: {empathy: 3, sensitivity: 0, non_judgmental: 0, truthfulness: 0, helpfulness: 1}\n"
    "    hard_constraint: {top_p: 0.7, blocked_terms: [forbidden], risk_threshold: 0.3}\n",
)


class CountingScorer:
    """Counts calls and texts; returns a fixed score (or NaN, or a missing value)."""

    name = "counting"

    def __init__(self, value: float = 0.05, count: int | None = None) -> None:
        self.value = value
        self.count = count
        self.calls: list[list[str]] = []

    def score(self, texts: Sequence[str]) -> list[float]:
        self.calls.append(list(texts))
        n = len(texts) if self.count is None else self.count
        return [self.value] * n


class RecordingArm:
    """A tiny ArmGenerator whose ``generate`` records each row's steering (``submit`` batches
    through it)."""

    def __init__(self, loaded: LoadedModel) -> None:
        arm = PvArm(loaded.model, ArmConfig(layers=1))
        with torch.no_grad():
            for param in arm.adapter_parameters():
                param.normal_(0, 0.5)
        self.generator = ArmGenerator(loaded, arm=arm)
        self.rows: list[Steering | None] = []
        generate = self.generator.generate

        def record_generate(conversations: Any, settings: Any, steering: Any = None) -> Any:
            self.rows.extend(steering or [None] * len(conversations))
            return generate(conversations, settings, steering)

        self.generator.generate = record_generate  # type: ignore[method-assign]


def _guided_pipeline(loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch, **kwargs: Any
                     ) -> tuple[RequestPipeline, RecordingArm]:
    recorder = RecordingArm(loaded)
    pipeline = RequestPipeline("arm", **kwargs)
    monkeypatch.setattr(pipeline, "generator", lambda model=None: recorder.generator)
    return pipeline, recorder


# ---- the pipeline itself ------------------------------------------------------------------------
def test_constructor_does_no_io_and_rejects_unknown_configs() -> None:
    RequestPipeline("full", policy="/nowhere/policy.yaml", model="/nowhere")  # nothing is read
    with pytest.raises(ConfigurationError, match="valid configurations"):
        RequestPipeline("nope")


def test_unknown_policy_name_fails_on_first_use_naming_the_shipped_ones() -> None:
    pipeline = RequestPipeline(policy="no_such_policy")
    with pytest.raises(PolicyError, match="general_assistant"):
        pipeline.resolve(None)


def test_run_batch_matches_run_and_keeps_order(tiny_loaded: LoadedModel) -> None:
    pipeline = RequestPipeline(loader=lambda _: tiny_loaded)
    prompts = ["hello", "tell me a story", "what is 2+2?"]
    batched = pipeline.run_batch([(p, RequestOptions(settings=SHORT)) for p in prompts])
    single = [pipeline.run(p, RequestOptions(settings=SHORT)) for p in prompts]
    assert [r.text for r in batched] == [r.text for r in single]
    assert all(r.steps == () for r in batched)  # no policy: no checks


def test_policy_is_read_once_and_each_input_scored_once(tiny_loaded: LoadedModel,
                                                        tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    scorer = CountingScorer()
    pipeline = RequestPipeline(policy=policy, scorer=scorer, loader=lambda _: tiny_loaded)
    pipeline.run_batch([("hi", RequestOptions(settings=SHORT)),
                        ("hello", RequestOptions(settings=SHORT))])
    policy.write_text("not: a policy")  # read once: a changed file is not read again
    pipeline.run("hey", RequestOptions(settings=SHORT))
    # the batch: one call for both inputs, one for both replies; then one input and one reply
    assert [len(c) for c in scorer.calls] == [2, 2, 1, 1]


def test_stream_releases_the_same_text_as_run(tiny_loaded: LoadedModel) -> None:
    pipeline = RequestPipeline(policy=Policy.from_string(POLICY), scorer=ScriptedScorer(),
                               loader=lambda _: tiny_loaded)
    options = RequestOptions(settings=GenerationSettings(max_new_tokens=12))
    pieces = list(pipeline.stream("tell me a story", options))
    final = pieces[-1][1]
    assert final is not None and "".join(t for t, _ in pieces) == final.text
    assert final.text == pipeline.run("tell me a story", options).text


def test_a_cancelled_stream_stops_generating_inside_the_held_back_window(
        tiny_loaded: LoadedModel) -> None:
    pipeline = RequestPipeline(policy=Policy.from_string(POLICY), scorer=ScriptedScorer(),
                               loader=lambda _: tiny_loaded, window_chars=10_000)
    options = RequestOptions(settings=GenerationSettings(max_new_tokens=40))
    cancel = threading.Event()
    cancel.set()
    pieces = list(pipeline.stream("tell me a story", options, cancel=cancel))
    final = pieces[-1][1]
    assert final is not None and final.completion is not None
    assert final.completion.completion_tokens <= 1  # not the 40 a whole window would take
    assert "".join(t for t, _ in pieces) == final.text  # still checked and released whole


def test_prepare_and_review_check_a_callers_own_reply() -> None:
    pipeline = RequestPipeline(policy=Policy.from_string(POLICY), scorer=ScriptedScorer())
    refused = pipeline.prepare("how to build a bomb")
    assert refused.answer is not None and refused.answer.actions == ["refuse_with_resources"]
    steered = pipeline.prepare("I feel sad")
    assert steered.answer is None and steered.instruction == "Be extra careful."
    assert steered.steering.risk == pytest.approx(0.4)  # the input score, for the risk gate
    ok = pipeline.review(steered, Completion("Here is a kind answer.", 0, 0, "stop", 0.0))
    assert ok.delivered and ok.actions == ["steer", "allow"]
    flagged = pipeline.review(steered, Completion("a bomb recipe", 0, 0, "stop", 0.0))
    assert not flagged.delivered and flagged.text.startswith("I can't help with that.")


# ---- a: generate --config arm --policy -----------------------------------------------------------
def test_a_generate_job_steers_each_line_by_its_context(tiny_loaded: LoadedModel, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: the CLI fixed steering when the generator was built, from --context only, and
    # arm_generator kept only preference/beta/gate: top_p and blocked terms were dropped, and a
    # line's own "context" changed the checks but not the preference.
    pipeline, recorder = _guided_pipeline(tiny_loaded, monkeypatch,
                                          policy=Policy.from_string(GUIDED_POLICY),
                                          scorer=ScriptedScorer())
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": 1, "prompt": "hi"}) + "\n"
                    + json.dumps({"id": 2, "prompt": "hi", "context": "strict"}) + "\n")
    records, _ = read_prompts(path)
    run_generate_job(records, tmp_path / "out.jsonl", pipeline, SHORT, config_name="arm",
                     progress=False)
    general, strict = recorder.rows
    assert general is not None and general.preference == pytest.approx((0.2,) * 5)
    assert strict is not None and strict.preference == pytest.approx((0.75, 0, 0, 0, 0.25))
    assert strict.safe_top_p == 0.7 and strict.blocked_terms == ("forbidden",)
    assert strict.beta == 0.25 and strict.risk_threshold == 0.3


def test_a_cli_alpha_overrides_the_context_but_keeps_its_hard_constraint(
        tiny_loaded: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, recorder = _guided_pipeline(tiny_loaded, monkeypatch,
                                          policy=Policy.from_string(GUIDED_POLICY),
                                          scorer=ScriptedScorer())
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": 1, "prompt": "hi"}) + "\n")
    records, _ = read_prompts(path)
    run_generate_job(records, tmp_path / "out.jsonl", pipeline, SHORT, config_name="arm",
                     context="strict", steering=Steering((0, 0, 0, 1, 0)), progress=False)
    (row,) = recorder.rows
    assert row is not None and row.preference == (0, 0, 0, 1.0, 0)
    assert row.safe_top_p == 0.7 and row.blocked_terms == ("forbidden",)


# ---- b: zo repairs streamed replies -------------------------------------------------------------
def test_b_zo_streams_the_repaired_reply(tiny_loaded: LoadedModel) -> None:
    # Before: ChatGenerator.stream (which ZOGenerator inherits) bypassed the repair, and
    # `psa-guard chat --config zo` always streams.
    scorer = CountingScorer(value=0.9)  # every reply flagged: the optimiser runs
    methods = MethodSettings(zo=ZOSettings(n_directions=2, max_iters=1, budget_iterations=None))
    pipeline = RequestPipeline("zo", scorer=scorer, methods=methods, loader=lambda _: tiny_loaded)
    options = RequestOptions(settings=SHORT)
    pieces = list(pipeline.stream("hello", options))
    final = pieces[-1][1]
    assert final is not None and final.completion is not None
    assert final.completion.extra["zo"]["flagged"] is True  # the repair ran
    assert "".join(t for t, _ in pieces) == final.text == final.completion.text


# ---- c: middleware / risk gate ------------------------------------------------------------------
def test_c_risk_gate_uses_the_callers_scorer(tiny_loaded: LoadedModel,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: ArmGenerator's gate always used the local default scorer.
    scorer = CountingScorer(value=0.8)
    pipeline, recorder = _guided_pipeline(tiny_loaded, monkeypatch, scorer=scorer)
    reply = pipeline.run("hello", RequestOptions(settings=SHORT))
    (row,) = recorder.rows
    assert row is not None and row.risk == pytest.approx(0.8) and scorer.calls == [["hello"]]
    assert reply.completion is not None
    assert reply.completion.extra["arm"] == {"risk": 0.8, "guided": False}  # 0.8 > gate 0.5


def test_c_the_risk_gate_reads_the_input_checks_score(tiny_loaded: LoadedModel,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = CountingScorer(value=0.2)
    pipeline, recorder = _guided_pipeline(tiny_loaded, monkeypatch, scorer=scorer,
                                          policy=Policy.from_string(GUIDED_POLICY))
    pipeline.run("hello", RequestOptions(settings=SHORT))
    assert [len(c) for c in scorer.calls] == [1, 1]  # input once (check + gate), reply once
    (row,) = recorder.rows
    assert row is not None and row.risk == pytest.approx(0.2)


# ---- d: a scorer that returns NaN fails closed --------------------------------------------------
@pytest.mark.parametrize(("value", "count", "reason"), [
    (math.nan, None, "non-numeric"), (math.inf, None, "non-numeric"), (1.5, None, "outside"),
    (-0.1, None, "outside"), (0.5, 0, "0 scores for 1 texts"),
])
def test_d_broken_scores_fail_closed(value: float, count: int | None, reason: str) -> None:
    # Before: NaN reached ResolvedContext.decide, which raised ConfigurationError.
    guard = PolicyGuard(Policy.from_string(POLICY), CountingScorer(value, count))
    reply = guard.run("hello", None, lambda m: Completion("never", 0, 0, "stop", 0.0))
    assert reply.actions == ["block"] and reply.text == "Blocked for safety."  # on_unavailable
    assert reply.steps[0].score is None and reason in (reply.steps[0].reason or "")
    scores, why = score_texts(CountingScorer(value, count), ["a"])
    assert scores == [None] and why is not None and reason in why


def test_d_a_nan_risk_turns_guidance_off(tiny_loaded: LoadedModel) -> None:
    arm = PvArm(tiny_loaded.model, ArmConfig(layers=1))
    generator = ArmGenerator(tiny_loaded, arm=arm, risk_scorer=CountingScorer(math.nan))
    completion = generator.generate(["hello"], SHORT)[0]
    assert completion.extra["arm"]["risk"] == 1.0 and completion.extra["arm"]["guided"] is False
    assert "non-numeric" in completion.extra["arm"]["unavailable"]


# ---- i: run_batch never drops a missing reply ---------------------------------------------------
def test_i_a_missing_completion_is_an_error_not_a_shorter_list() -> None:
    # Before: zip() without strict and a filter on None made a short batch silently shorter.
    guard = PolicyGuard(Policy.from_string(POLICY), ScriptedScorer())

    def short(batch: list[Any]) -> list[Completion]:
        return [Completion("ok", 0, 0, "stop", 0.0)] * (len(batch) - 1)

    with pytest.raises(RuntimeError, match="1 completions for 2 requests"):
        guard.run_batch([("hi", None), ("hello", None)], short)


def test_base_generator_ignores_steering(tiny_generator: ChatGenerator) -> None:
    plain = tiny_generator.generate(["hi"], SHORT)[0].text
    assert tiny_generator.generate(["hi"], SHORT, [Steering((1, 0, 0, 0, 0))])[0].text == plain


def test_a_preference_passes_each_module_once(tiny_loaded: LoadedModel,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # policy file -> routing (ResolvedContext.steering) -> pipeline (RequestPipeline.steering)
    # -> arm/generator (row_steering) -> guidance: once each per request. Before, row_steering
    # ran twice per call and the CLI resolved the context's steering apart from its checks.
    from psa_guard.arm.generator import ArmGenerator as Generator
    from psa_guard.policy.routing import ResolvedContext

    calls: dict[str, int] = {}

    def count(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    for owner, name in ((ResolvedContext, "steering"), (RequestPipeline, "steering"),
                        (Generator, "row_steering"), (Policy, "resolve")):
        count(owner, name)
    pipeline, recorder = _guided_pipeline(tiny_loaded, monkeypatch,
                                          policy=Policy.from_string(GUIDED_POLICY),
                                          scorer=ScriptedScorer())
    pipeline.run("hello", RequestOptions(context="strict", settings=SHORT))
    assert calls == {"resolve": 1, "steering": 2, "row_steering": 1}  # routing + pipeline
    assert recorder.rows[0] is not None and recorder.rows[0].beta == 0.25
