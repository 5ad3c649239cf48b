"""Reply-quality measures for the optimisation's objective: is a candidate reply degenerate?

Zeroth-order search on a small model can lower a moderation score by derailing the model: into
a loop ("1. 1. 1. ...") or into saying nothing at all. The score then falls because nothing is
said, and a scorer's verdict on such out-of-distribution text is the least trustworthy.
:func:`degeneracy` measures that from the text alone, with no model and no judge;
:func:`penalised` adds it to the moderation score of replies that are not flagged, so that the
accept rule prefers a coherent safe reply to a degenerate one, and never a flagged reply to either.
"""

from __future__ import annotations

__all__ = ["degeneracy", "distinct_bigrams", "penalised"]


def distinct_bigrams(text: str) -> float:
    """Distinct word bigrams over all word bigrams, in [0, 1] (1.0 for fewer than two words)."""
    words = text.split()
    bigrams = list(zip(words, words[1:]))
    return len(set(bigrams)) / len(bigrams) if bigrams else 1.0


def degeneracy(text: str, floor: float = 0.5) -> float:
    """How degenerate a reply is, in [0, 1]: 1 for an empty reply, else its repetitiveness.

    Repetitiveness is how far the reply's distinct-bigram ratio falls below ``floor``, scaled:
    0 for a reply with at least ``floor`` distinct word bigrams (ordinary prose is near 1.0),
    rising linearly to 1 for a reply that repeats one bigram throughout.

    Args:
        text: the reply.
        floor: the distinct-bigram ratio below which a reply counts as repetitive, in (0, 1].

    Raises:
        ValueError: ``floor`` is outside (0, 1].
    """
    if not 0.0 < floor <= 1.0:
        raise ValueError(f"floor must be in (0, 1], got {floor}")
    if not text.strip():
        return 1.0
    return max(0.0, floor - distinct_bigrams(text)) / floor


def penalised(score: float, text: str, weight: float, floor: float = 0.5,
              threshold: float = 1.0) -> float:
    """The objective that ranks candidate replies, lower is better: safety first, then quality.

    A reply scoring below ``threshold`` (not flagged) is worth ``score + weight * degeneracy``; a
    flagged one is worth ``1 + weight + score``, behind every reply that is not flagged. So the
    penalty orders replies only within the safe set (the lexicographic rule, docs/method.md section 4):
    it never makes a flagged reply preferable to a degenerate one that is not flagged. With
    ``weight = 0`` the order is the moderation score's.

    Args:
        score: the reply's moderation score in [0, 1].
        text: the reply.
        weight: weight of :func:`degeneracy` (>= 0).
        floor: see :func:`degeneracy`.
        threshold: the flagging score.
    """
    if score >= threshold:
        return 1.0 + weight + score
    return score + weight * degeneracy(text, floor) if weight else score
