"""Stop sequences: pure text helpers, and a per-row ``transformers`` stopping criterion.

* :func:`trim_at_stop` cuts a finished text at the earliest stop sequence.
* :class:`StopTrimmer` does the same for a stream: it holds back any tail that could still become a
  stop sequence, so no part of a stop sequence is ever emitted.
* :class:`StopOnStrings` ends each batch row as soon as its decoded tail contains a stop sequence.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import torch
from transformers import StoppingCriteria

__all__ = ["trim_at_stop", "StopTrimmer", "StopOnStrings", "CancelCriteria"]


def trim_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest occurrence of any stop sequence.

    Returns:
        The text up to (excluding) the first stop sequence, and whether one was found.
    """
    positions = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True


def _held_suffix(buffer: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of ``buffer`` that is a proper prefix of a stop sequence."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(buffer)), best, -1):
            if buffer.endswith(stop[:k]):
                best = k
                break
    return best


class StopTrimmer:
    """Streaming counterpart of :func:`trim_at_stop`.

    Feed text deltas with :meth:`feed`; it returns what is safe to emit. After a stop sequence is
    seen, :attr:`stopped` is True and everything else is dropped. Call :meth:`flush` at the end.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buffer = ""
        self.stopped = False

    def feed(self, delta: str) -> str:
        if self.stopped:
            return ""
        if not self.stops:
            return delta
        self.buffer += delta
        head, hit = trim_at_stop(self.buffer, self.stops)
        if hit:
            self.stopped = True
            self.buffer = ""
            return head
        hold = _held_suffix(self.buffer, self.stops)
        out = self.buffer[: len(self.buffer) - hold]
        self.buffer = self.buffer[len(self.buffer) - hold :]
        return out

    def flush(self) -> str:
        """Release the held tail once generation ended without completing a stop sequence."""
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out


class StopOnStrings(StoppingCriteria):
    """Stop each row whose generated tail contains one of ``stops``.

    Args:
        tokenizer: decodes the tail of each row.
        stops: stop sequences (non-empty strings).
        prompt_length: number of (padded) prompt positions; only generated tokens are searched.
    """

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.prompt_length = prompt_length
        self.window = max((len(s) for s in self.stops), default=0) + 2

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> Any:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if not self.stops:
            return done
        start = max(self.prompt_length, input_ids.shape[1] - self.window)
        tails = self.tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
        for row, tail in enumerate(tails):
            done[row] = any(stop in tail for stop in self.stops)
        return done


class CancelCriteria(StoppingCriteria):
    """Stop every row once any of ``events`` is set (a stream's consumer went away, or its
    caller cancelled the request), checked before each next token."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> Any:
        value = any(event.is_set() for event in self.events)
        return torch.full((input_ids.shape[0],), value, dtype=torch.bool, device=input_ids.device)
