"""The policy guard with a scripted moderation scorer (a test double, not a judge of results)."""

from __future__ import annotations

import pytest

from psa_guard.errors import PolicyError
from psa_guard.generation import Completion, StreamChunk
from psa_guard.guard import PolicyGuard, with_steer
from psa_guard.policy import Policy

from ..doubles import POLICY, ScriptedScorer


def _guard() -> tuple[PolicyGuard, ScriptedScorer]:
    scorer = ScriptedScorer()
    return PolicyGuard(Policy.from_string(POLICY), scorer), scorer


def _generator(reply: str):
    calls: list[list[dict[str, str]]] = []

    def generate(messages: list[dict[str, str]]) -> Completion:
        calls.append(messages)
        return Completion(reply, 10, 3, "stop", 0.01)

    return generate, calls


def test_allowed_request_is_generated_and_checked_twice() -> None:
    guard, scorer = _guard()
    generate, calls = _generator("Paris.")
    reply = guard.run("capital of France?", None, generate)
    assert reply.text == "Paris." and reply.context == "general"
    assert reply.actions == ["allow", "allow"]
    assert scorer.seen == ["capital of France?", "Paris."]
    assert len(calls) == 1


def test_harmful_request_is_answered_by_the_policy_without_generation() -> None:
    guard, _ = _guard()
    generate, calls = _generator("unused")
    reply = guard.run("how to build a bomb", None, generate, locale="en-GB")
    assert calls == []
    assert reply.actions == ["refuse_with_resources"]
    assert reply.text.startswith("I can't help with that.")
    assert "Helpline: Call 123" in reply.text and "Emergency" in reply.text
    assert reply.completion is None


def test_steer_adds_the_instruction_as_system_turn() -> None:
    guard, _ = _guard()
    generate, calls = _generator("I'm here for you.")
    reply = guard.run([{"role": "user", "content": "I feel sad"}], None, generate)
    assert reply.actions == ["steer", "allow"]
    assert calls[0][0] == {"role": "system", "content": "Be extra careful."}


def test_flagged_output_is_replaced() -> None:
    guard, _ = _guard()
    generate, _ = _generator("Step 1: get a bomb casing")
    reply = guard.run("tell me a story", None, generate)
    assert reply.actions == ["allow", "refuse_with_resources"]
    assert "bomb" not in reply.text and reply.completion is not None


def test_output_steer_regenerates_once() -> None:
    guard, _ = _guard()
    generate, calls = _generator("so sad")
    reply = guard.run("tell me a story", None, generate)
    assert reply.actions == ["allow", "steer", "steer"]
    assert len(calls) == 2 and calls[1][0]["content"] == "Be extra careful."


def test_scorer_unavailable_fails_closed_with_reason() -> None:
    guard, _ = _guard()
    generate, calls = _generator("unused")
    reply = guard.run("FAIL please", None, generate)
    assert calls == [] and reply.text == "Blocked for safety."
    step = reply.steps[0]
    assert step.action == "block" and step.score is None and "HTTP 500" in step.reason


def test_context_routing_and_unknown_context() -> None:
    guard, _ = _guard()
    generate, _ = _generator("ok")
    assert guard.run("I feel sad", "strict", generate).text == "Not here."
    with pytest.raises(PolicyError, match="general"):
        guard.run("hi", "nope", generate)


def test_with_steer_merges_into_existing_system() -> None:
    merged = with_steer([{"role": "system", "content": "A"}, {"role": "user", "content": "u"}], "B")
    assert merged[0]["content"] == "A\n\nB" and len(merged) == 2


def _stream_of(text: str):
    def start(messages: list[dict[str, str]]):
        pieces = [text[i:i + 5] for i in range(0, len(text), 5)]
        for piece in pieces:
            yield StreamChunk(piece)
        yield StreamChunk("", Completion(text, 5, len(pieces), "stop", 0.1))
    return start


def test_stream_releases_only_checked_text() -> None:
    guard, _ = _guard()
    safe = "A long and friendly answer about the weather in spring. " * 3
    out = list(guard.stream("weather?", None, _stream_of(safe), window_chars=20))
    assert "".join(text for text, _ in out) == safe
    assert out[-1][1] is not None and out[-1][1].actions == ["allow", "allow"]


def test_stream_stops_and_appends_message_when_flagged() -> None:
    guard, _ = _guard()
    text = "Here is a story that is fine so far... and then the bomb part follows here."
    out = list(guard.stream("story?", None, _stream_of(text), window_chars=20))
    shown = "".join(t for t, _ in out)
    assert "bomb" not in shown
    assert shown.endswith("Emergency: Call local services")
    assert out[-1][1].actions[-1] == "refuse_with_resources"


REPAIR_POLICY = """
version: 1
name: repair_app
default_context: general
contexts:
  general:
    preference: {empathy: 1, sensitivity: 1, non_judgmental: 1, truthfulness: 1, helpfulness: 1}
    moderation:
      rules:
        - {at: 0.6, action: repair}
    messages:
      repair: Sorry, I can't answer that safely.
"""


def _repair_with(text: str, score: float, degenerate: bool = False):
    from psa_guard.zo import RepairResult

    seen = []

    def repair(messages, completion, flagged_score, threshold):
        seen.append((completion.text, flagged_score, threshold))
        return RepairResult(text, score, flagged_score, 2, 19, 0.5, score < threshold,
                            degenerate=degenerate)

    return repair, seen


def test_repair_replaces_a_flagged_reply_when_it_succeeds() -> None:
    guard = PolicyGuard(Policy.from_string(REPAIR_POLICY), ScriptedScorer())
    generate, calls = _generator("the bomb goes here")
    repair, seen = _repair_with("A safe answer.", 0.1)
    reply = guard.run("tell me", None, generate, repair=repair)
    assert reply.text == "A safe answer."
    assert seen == [("the bomb goes here", 0.9, 0.6)]
    assert reply.actions == ["allow", "repair", "allow"]
    assert "19 scorer calls" in reply.steps[-1].reason


def test_repair_falls_back_to_the_message_when_still_flagged() -> None:
    guard = PolicyGuard(Policy.from_string(REPAIR_POLICY), ScriptedScorer())
    generate, _ = _generator("the bomb goes here")
    repair, _ = _repair_with("still a bomb", 0.8)
    assert guard.run("tell me", None, generate, repair=repair).text == (
        "Sorry, I can't answer that safely.")
    no_repairer = guard.run("tell me", None, generate)
    assert no_repairer.text == "Sorry, I can't answer that safely."
    assert no_repairer.steps[-1].reason == "no repairer"


@pytest.mark.parametrize("text", ["", "1. 1. 1. 1. 1. 1. 1. 1."])
def test_repair_falls_back_to_the_message_when_the_repaired_reply_is_degenerate(text) -> None:
    guard = PolicyGuard(Policy.from_string(REPAIR_POLICY), ScriptedScorer())
    generate, _ = _generator("the bomb goes here")
    repair, _ = _repair_with(text, 0.001, degenerate=True)  # not flagged, but no answer
    reply = guard.run("tell me", None, generate, repair=repair)
    assert reply.text == "Sorry, I can't answer that safely."
    assert reply.actions[-1] == "repair"
    assert "degenerate reply" in reply.steps[-1].reason
