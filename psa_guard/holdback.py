"""The hold-back window of the output check: where a reply is checked and what is released.

A reply is checked on its prefixes, at fixed release points: every ``window`` characters and at
its end (:func:`checkpoints`). Text up to a release point is shown only after the prefix ending
there passed the check; on a flag the reply rolls back to the last release point and the
context's action follows what was already shown (:func:`rolled_back`).

The release points depend only on the text, never on how a generator chunked it, so a streamed
reply and the same reply generated whole are checked on the same prefixes and reach the same
decision and the same text (``tests/unit_tests/test_holdback.py`` proves it for every action).
Pure functions; the guard wires them in.
"""

from __future__ import annotations

__all__ = ["DEFAULT_WINDOW_CHARS", "checkpoints", "next_checkpoint", "rolled_back"]

#: Characters held back between two checks of a reply (about 25-30 tokens of English).
DEFAULT_WINDOW_CHARS = 120


def _check_window(window: int) -> None:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window_chars must be a positive integer, got {window!r}")


def checkpoints(length: int, window: int = DEFAULT_WINDOW_CHARS) -> list[int]:
    """The release points of a finished reply of ``length`` characters, in order.

    Every multiple of ``window`` below ``length``, then ``length`` itself (an empty reply has
    the one point 0, so it is checked too).

    Raises:
        ValueError: ``window`` is not a positive integer or ``length`` is negative.
    """
    _check_window(window)
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    return [*range(window, length, window), length]


def next_checkpoint(released: int, available: int, finished: bool,
                    window: int = DEFAULT_WINDOW_CHARS) -> int | None:
    """The next release point a stream can check, or None while it must wait for more text.

    Args:
        released: characters already released (the last release point).
        available: characters generated so far.
        finished: whether the generation ended (then the end is a release point).
        window: the hold-back window.

    The points are those of :func:`checkpoints` for the finished text: a full window is checked
    as soon as it is complete; the rest when the generation ends.
    """
    _check_window(window)
    if released + window <= available and (released + window < available or not finished):
        return released + window
    if finished and (available > released or available == 0 == released):
        return available
    return None


def rolled_back(text: str, released: int, message: str) -> str:
    """What the user sees after a flag: the released text, then the action's message."""
    shown = text[:released]
    if not shown:
        return message
    return f"{shown}\n\n{message}" if message else shown
