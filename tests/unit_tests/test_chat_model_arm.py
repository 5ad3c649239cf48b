"""ChatPSAGuard with a guided configuration: policy contexts and alpha/beta steer each request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from langchain_core.messages import HumanMessage
from pydantic import ValidationError

from langchain_psa_guard import ChatPSAGuard
from psa_guard.arm import ArmConfig, ArmGenerator, PvArm
from psa_guard.errors import ConfigurationError
from psa_guard.loading import load_model
from psa_guard.policy import Policy
from psa_guard.steering import Steering
from tests.doubles import POLICY, ScriptedScorer

POLICY_WITH_HARD = POLICY.replace(
    "  strict:\n    extends: general\n",
    "  strict:\n    extends: general\n    beta: 0.25\n"
    "    preference: {empathy: 3, sensitivity: 0, non_judgmental: 0, truthfulness: 0, helpfulness: 1}\n"
    "    hard_constraint: {top_p: 0.7, blocked_terms: [forbidden], risk_threshold: 0.3}\n",
)


class _Recorder:
    def __init__(self) -> None:
        self.steering: list[Steering | None] = []


@pytest.fixture()
def guided(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ChatPSAGuard, _Recorder]:
    loaded = load_model(str(tiny_model_dir))
    arm = PvArm(loaded.model, ArmConfig(layers=1))
    with torch.no_grad():
        for param in arm.adapter_parameters():
            param.normal_(0, 0.5)
    generator = ArmGenerator(loaded, arm=arm)
    recorder = _Recorder()
    submit, stream = generator.submit, generator.stream

    def record_submit(conversation: Any, settings: Any, steering: Steering | None = None) -> Any:
        recorder.steering.append(steering)
        return submit(conversation, settings, steering)

    def record_stream(conversation: Any, settings: Any, steering: Steering | None = None,
                      cancel: Any = None) -> Any:
        recorder.steering.append(steering)
        return stream(conversation, settings, steering, cancel)

    monkeypatch.setattr(generator, "submit", record_submit)
    monkeypatch.setattr(generator, "stream", record_stream)
    llm = ChatPSAGuard(model=str(tiny_model_dir), config="arm", max_tokens=6,
                       policy=Policy.from_string(POLICY_WITH_HARD), scorer=ScriptedScorer())
    monkeypatch.setattr(llm.pipeline(), "generator", lambda model=None: generator)
    return llm, recorder


def test_alpha_and_beta_need_a_guided_configuration() -> None:
    with pytest.raises((ValidationError, ConfigurationError), match="config='arm'"):
        ChatPSAGuard(alpha={"empathy": 1.0})
    with pytest.raises((ValidationError, ConfigurationError), match="kindness"):
        ChatPSAGuard(config="arm", alpha="kindness=1")
    with pytest.raises((ValidationError, ConfigurationError), match="dict"):
        ChatPSAGuard(config="arm", alpha=3)  # type: ignore[arg-type]
    ChatPSAGuard(config="full", alpha={"empathy": 1.0}, beta=0.5)  # no I/O at construction


def test_each_request_is_steered_by_its_policy_context(guided: tuple[ChatPSAGuard, _Recorder]) -> None:
    llm, recorder = guided
    llm.invoke("hello")
    llm.invoke("hello", context="strict")
    default, strict = recorder.steering
    assert default is not None and default.preference == pytest.approx((0.2,) * 5)
    assert default.beta == 1.0 and default.blocked_terms == ()
    assert strict is not None and strict.preference == pytest.approx((0.75, 0, 0, 0, 0.25))
    assert strict.beta == 0.25 and strict.safe_top_p == 0.7
    assert strict.blocked_terms == ("forbidden",)
    assert default.risk_threshold == 0.5 and strict.risk_threshold == 0.3  # the risk gate


def test_response_metadata_reports_the_risk_gate(guided: tuple[ChatPSAGuard, _Recorder]) -> None:
    llm, recorder = guided
    message = llm.invoke("hello", context="strict")
    # the risk gate reads the input check's score: one scorer call, the policy's scorer
    input_score = message.response_metadata["psa_guard"]["actions"][0]["score"]
    assert message.response_metadata["arm"] == {"risk": input_score, "guided": True}
    llm.invoke("hello", context="strict", risk_threshold=0.9)
    assert recorder.steering[-1] is not None and recorder.steering[-1].risk_threshold == 0.9
    with pytest.raises(ConfigurationError, match="risk_threshold"):
        llm.invoke("hello", risk_threshold=2.0)
    chunks = list(llm.stream("hello"))
    final = chunks[-1]
    for chunk in chunks[1:]:
        final = final + chunk
    assert final.response_metadata["arm"]["guided"] is True
    assert final.response_metadata["arm"]["risk"] == (
        final.response_metadata["psa_guard"]["actions"][0]["score"])


def test_explicit_alpha_overrides_the_policy_but_keeps_its_hard_constraint(
    guided: tuple[ChatPSAGuard, _Recorder],
) -> None:
    llm, recorder = guided
    llm.invoke("hello", context="strict", alpha={"truthfulness": 1.0}, beta=2.0)
    list(llm.stream([HumanMessage("hello")], context="strict", alpha="helpfulness=1"))
    llm.invoke("hello", config={"configurable": {"context": "strict", "alpha": "empathy=1"}})
    called, streamed, configured = recorder.steering
    assert called is not None and called.preference == (0, 0, 0, 1.0, 0) and called.beta == 2.0
    assert called.blocked_terms == ("forbidden",) and called.safe_top_p == 0.7
    assert streamed is not None and streamed.preference == (0, 0, 0, 0, 1.0)
    assert configured is not None and configured.preference == (1.0, 0, 0, 0, 0)


def test_unguided_configurations_pass_no_steering(tiny_model_dir: Path) -> None:
    llm = ChatPSAGuard(model=str(tiny_model_dir), max_tokens=3)
    with pytest.raises(ConfigurationError, match="config='arm'"):
        llm.invoke("hi", alpha={"empathy": 1})
