"""Reply-quality measures for the optimisation's objective: is a candidate reply degenerate?

Zeroth-order search on a small model can lower a moderation score by derailing the model into a
loop ("1. 1. 1. ..."): the score falls because nothing is said. :func:`repetition` measures that
from the text alone, with no model and no judge; :func:`penalised` adds it to the moderation score
of replies that are not flagged, so that the accept rule prefers a coherent safe reply to a
degenerate one, and never a flagged reply to either.
"""

from __future__ import annotations

__all__ = ["distinct_bigrams", "penalised", "repetition"]


def distinct_bigrams(text: str) -> float:
    """Distinct word bigrams over all word bigrams, in [0, 1] (1.0 for fewer than two words)."""
    words = text.split()
    bigrams = list(zip(words, words[1:]))
    return len(set(bigrams)) / len(bigrams) if bigrams else 1.0


def repetition(text: str, floor: float = 0.5) -> float:
    """How far below ``floor`` the reply's distinct-bigram ratio falls, scaled to [0, 1].

    0 for a reply with at least ``floor`` distinct word bigrams (ordinary prose is near 1.0),
    rising linearly to 1 for a reply that repeats one bigram throughout.

    Args:
        text: the reply.
        floor: the distinct-bigram ratio below which a reply counts as repetitive, in (0, 1].
    """
    if not 0.0 < floor <= 1.0:
        raise ValueError(f"floor must be in (0, 1], got {floor}")
    return max(0.0, floor - distinct_bigrams(text)) / floor


def penalised(score: float, text: str, weight: float, floor: float = 0.5,
              threshold: float = 1.0) -> float:
    """The objective that ranks candidate replies, lower is better: safety first, then quality.

    A reply scoring below ``threshold`` (not flagged) is worth ``score + weight * repetition``; a
    flagged one is worth ``1 + weight + score``, behind every reply that is not flagged. So the
    penalty orders replies only within the safe set (the lexicographic rule of method.md): it
    never makes a flagged reply preferable to a repetitive one that is not flagged. With
    ``weight = 0`` the order is the moderation score's.

    Args:
        score: the reply's moderation score in [0, 1].
        text: the reply.
        weight: weight of :func:`repetition` (>= 0).
        floor: see :func:`repetition`.
        threshold: the flagging score.
    """
    if score >= threshold:
        return 1.0 + weight + score
    return score + weight * repetition(text, floor) if weight else score
