"""The hold-back window: release points, and streaming/non-streaming conformance for every action.

The conformance tests run the same scripted replies through :meth:`PolicyGuard.complete` (the
whole reply, checked on its prefixes afterwards) and :meth:`PolicyGuard.stream_screened` (pieces
of several sizes, checked as they arrive) and require the same text and the same steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from psa_guard.generation import Completion, StreamChunk
from psa_guard.guard import GuardedReply, PolicyGuard
from psa_guard.holdback import checkpoints, next_checkpoint, rolled_back
from psa_guard.messages import Message
from psa_guard.policy import Policy
from psa_guard.zo import RepairResult

ACTIONS = ("allow", "steer", "refuse", "refuse_with_resources", "block", "escalate", "support",
           "repair")

def _context(action: str) -> str:
    messages = {action: f"The {action} message.", "block": "Blocked."}
    messages.pop("allow", None)
    lines = "".join(f"      {key}: {text}\n" for key, text in messages.items())
    return f"""  {action}:
    preference: {{empathy: 1, sensitivity: 1, non_judgmental: 1, truthfulness: 1, helpfulness: 1}}
    moderation:
      rules:
        - {{at: 0.5, action: {action}}}
      on_unavailable: block
    messages:
{lines}    resources:
      - {{name: Helpline, contact: call 116 123, locales: ["*"]}}
"""


POLICY = "version: 1\nname: conformance\ndefault_context: allow\ncontexts:\n" + "".join(
    _context(action) for action in ACTIONS)

WINDOW = 20
SAFE = "A calm and friendly answer about gardening in spring, with tips. " * 2


def _flag_at(position: int) -> str:
    """A reply whose text becomes flagged once it reaches ``position`` characters."""
    return SAFE[:position] + "FLAG" + SAFE[position:]


class MarkerScorer:
    """0.9 for a text holding 'FLAG' (or 'STEERED' replies saying 'FLAG' again), else 0.1;
    'DOWN' makes the scorer unavailable (NaN)."""

    name = "marker"

    def score(self, texts: Sequence[str]) -> list[float]:
        return [float("nan") if "DOWN" in t else 0.9 if "FLAG" in t else 0.1 for t in texts]


class Script:
    """The model: the first reply is ``first``; a steered request (its system turn holds the
    steer instruction) gets ``steered``."""

    def __init__(self, first: str, steered: str = SAFE) -> None:
        self.first, self.steered = first, steered

    def text_for(self, messages: list[Message]) -> str:
        return self.steered if messages[0]["role"] == "system" else self.first

    def generate(self, rows: list[tuple[int, list[Message]]]) -> list[Completion]:
        return [Completion(self.text_for(m), 3, 9, "stop", 0.0) for _, m in rows]

    def stream(self, size: int):
        def start(messages: list[Message]) -> Iterator[StreamChunk]:
            text = self.text_for(messages)
            for i in range(0, len(text), size):
                yield StreamChunk(text[i:i + size])
            yield StreamChunk("", Completion(text, 3, 9, "stop", 0.0))
        return start


def _repair(messages: list[Message], completion: Completion, score: float,
            threshold: float) -> RepairResult:
    return RepairResult(text="A repaired reply.", score=0.1, initial_score=score, iterations=2,
                        scorer_calls=4, seconds=0.0, neutralised=True)


def _both(action: str, script: Script, size: int) -> tuple[GuardedReply, GuardedReply, str]:
    guard = PolicyGuard(Policy.from_string(POLICY), MarkerScorer(), window_chars=WINDOW)
    screen = guard.screen([("hello", action)])[0]
    whole = guard.complete([screen], script.generate, repair=_repair)[0]
    pieces = list(guard.stream_screened(screen, script.stream(size), repair=_repair))
    streamed = pieces[-1][1]
    assert streamed is not None and all(reply is None for _, reply in pieces[:-1])
    return whole, streamed, "".join(text for text, _ in pieces)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("position", [0, 5, 25, 59, 60, 100, len(SAFE)])
@pytest.mark.parametrize("size", [1, 7, 20, 500])
def test_streaming_and_whole_replies_conform(action: str, position: int, size: int) -> None:
    whole, streamed, shown = _both(action, Script(_flag_at(position)), size)
    assert streamed.text == whole.text == shown
    assert [s.as_dict() for s in streamed.steps] == [s.as_dict() for s in whole.steps]


@pytest.mark.parametrize("action", ACTIONS)
def test_an_unflagged_reply_is_delivered_whole(action: str) -> None:
    whole, streamed, shown = _both(action, Script(SAFE), 7)
    assert whole.text == streamed.text == shown == SAFE
    assert whole.actions == ["allow", "allow"]


@pytest.mark.parametrize("size", [1, 9, 500])
def test_a_flag_rolls_back_to_the_last_release_point(size: int) -> None:
    text = _flag_at(45)  # released: 0-20, 20-40; the window 40-60 holds the flag
    whole, streamed, shown = _both("refuse", Script(text), size)
    assert shown == f"{text[:40]}\n\nThe refuse message."
    assert "FLAG" not in shown and streamed.actions == whole.actions == ["allow", "refuse"]


def test_a_flag_in_the_first_window_shows_only_the_action() -> None:
    whole, streamed, shown = _both("support", Script(_flag_at(3)), 4)
    assert shown == "The support message.\n- Helpline: call 116 123"
    assert whole.text == shown


def test_steer_on_the_first_window_regenerates_with_the_instruction() -> None:
    whole, streamed, _ = _both("steer", Script(_flag_at(3), steered=SAFE), 5)
    assert whole.text == streamed.text == SAFE
    assert whole.actions == ["allow", "steer", "allow"]


def test_steer_after_release_is_delivered() -> None:
    text = _flag_at(70)
    whole, streamed, _ = _both("steer", Script(text), 5)
    assert whole.text == streamed.text == text and whole.actions == ["allow", "steer"]


def test_repair_on_the_first_window_repairs_and_later_falls_back() -> None:
    first, _, _ = _both("repair", Script(_flag_at(2)), 3)
    assert first.text == "A repaired reply." and first.actions[-1] == "allow"
    late, _, shown = _both("repair", Script(_flag_at(50)), 3)
    assert shown == f"{_flag_at(50)[:40]}\n\nThe repair message."


def test_an_unavailable_scorer_fails_closed_at_the_window_it_reaches() -> None:
    text = SAFE[:30] + "DOWN" + SAFE[30:]
    whole, streamed, shown = _both("allow", Script(text), 6)
    assert shown == f"{text[:20]}\n\nBlocked."
    assert streamed.steps[-1].reason is not None and whole.steps[-1].action == "block"


# ---- the pure functions ---------------------------------------------------------------------------
def test_checkpoints() -> None:
    assert checkpoints(0, 10) == [0]
    assert checkpoints(10, 10) == [10]
    assert checkpoints(25, 10) == [10, 20, 25]
    with pytest.raises(ValueError, match="window_chars"):
        checkpoints(5, 0)


@pytest.mark.parametrize("length", [0, 1, 9, 10, 11, 30, 31])
def test_next_checkpoint_walks_the_same_points_as_checkpoints(length: int) -> None:
    for step in (1, 3, 10, 100):
        seen, released, available = [], 0, 0
        while True:
            available = min(length, available + step)
            finished = available == length
            while (point := next_checkpoint(released, available, finished, 10)) is not None:
                seen.append(point)
                released = point
                if finished and point == length:
                    break
            if finished:
                break
        assert seen == checkpoints(length, 10), (length, step)


def test_rolled_back() -> None:
    assert rolled_back("abcdef", 0, "M") == "M"
    assert rolled_back("abcdef", 3, "M") == "abc\n\nM"
