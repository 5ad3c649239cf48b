from __future__ import annotations

import random

import pytest

from psa_guard.stopping import StopTrimmer, trim_at_stop


@pytest.mark.parametrize(
    ("text", "stops", "expected"),
    [
        ("hello world", ["o"], ("hell", True)),
        ("hello world", ["world", "lo"], ("hel", True)),
        ("hello world", ["xyz"], ("hello world", False)),
        ("hello", [], ("hello", False)),
        ("hello", [""], ("hello", False)),
    ],
)
def test_trim_at_stop(text: str, stops: list[str], expected: tuple[str, bool]) -> None:
    assert trim_at_stop(text, stops) == expected


def _stream(text: str, stops: list[str], cuts: list[int]) -> tuple[list[str], StopTrimmer]:
    trimmer = StopTrimmer(stops)
    pieces, start = [], 0
    for cut in [*cuts, len(text)]:
        pieces.append(trimmer.feed(text[start:cut]))
        start = cut
    pieces.append(trimmer.flush())
    return pieces, trimmer


def test_stop_split_across_chunks_is_never_emitted() -> None:
    pieces, trimmer = _stream("abc<|END|>def", ["<|END|>"], [4, 6, 8])
    assert "".join(pieces) == "abc"
    assert trimmer.stopped
    assert all("<" not in p for p in pieces)


def test_prefix_of_stop_is_released_when_it_does_not_complete() -> None:
    pieces, trimmer = _stream("a <| b", ["<|END|>"], [3])
    assert "".join(pieces) == "a <| b"
    assert not trimmer.stopped


@pytest.mark.parametrize("seed", range(20))
def test_streaming_matches_batch_trim_for_random_chunkings(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "ab\nXY"
    text = "".join(rng.choice(alphabet) for _ in range(40))
    stops = ["XY", "\n\n", "bab"]
    cuts = sorted(rng.sample(range(1, len(text)), 6))
    pieces, _ = _stream(text, stops, cuts)
    assert "".join(pieces) == trim_at_stop(text, stops)[0]
