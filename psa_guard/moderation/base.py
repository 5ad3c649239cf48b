"""The moderation-scorer protocol: texts in, one harm probability per text out.

A scorer is anything with a ``name`` and ``score(texts) -> list[float]``. The contract:

* the result has one float in ``[0, 1]`` per input text, in input order (an empty input gives
  an empty list);
* when the scorer cannot answer it raises :class:`~psa_guard.errors.ModerationUnavailableError`
  whose ``reason`` says why. It never returns a made-up score (0 would mean "safe"): failing
  closed is the caller's policy decision, taken with the reason in hand.

Implementations: :class:`~psa_guard.moderation.local.LocalModerationScorer` (offline default) and
:class:`~psa_guard.moderation.http.HTTPModerationScorer` (OpenAI moderation request/response shape).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from psa_guard.errors import ConfigurationError, ModerationUnavailableError

__all__ = [
    "ModerationScorer", "Scores", "check_scores", "check_texts", "score_detailed", "score_texts",
]


@runtime_checkable
class ModerationScorer(Protocol):
    """Scores texts for harm.

    Attributes:
        name: a short name for logs and reports (e.g. ``"local"``, ``"http"``).
    """

    name: str

    def score(self, texts: Sequence[str]) -> list[float]:
        """One harm probability in ``[0, 1]`` per text, in order.

        Raises:
            ModerationUnavailableError: the scorer could not answer (``reason`` says why).
        """
        ...


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list, each checked to be a ``str``.

    Raises:
        ConfigurationError: ``texts`` is a bare string or holds a non-string.
    """
    if isinstance(texts, str):
        raise ConfigurationError("score() takes a sequence of texts, not one string; wrap it: [text]")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise ConfigurationError(f"texts[{i}] is {type(text).__name__}, expected str")
    return out


def check_scores(scores: Sequence[float], expected: int, source: str) -> list[float]:
    """Validate scores from a scorer: right count, finite, inside ``[0, 1]``.

    Raises:
        ModerationUnavailableError: a score is missing, not a number, or outside ``[0, 1]``.
    """
    if len(scores) != expected:
        raise ModerationUnavailableError(
            f"{source} returned {len(scores)} scores for {expected} texts"
        )
    out = []
    for value in scores:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ModerationUnavailableError(f"{source} returned a non-numeric score {value!r}")
        if not 0.0 <= float(value) <= 1.0:
            raise ModerationUnavailableError(f"{source} returned a score outside [0, 1]: {value!r}")
        out.append(float(value))
    return out


def score_texts(scorer: ModerationScorer, texts: Sequence[str]
                ) -> tuple[list[float | None], str | None]:
    """Score ``texts`` and fail closed: every caller's one way of asking a scorer.

    Any scorer is called through here, so a broken one (it raises
    :class:`~psa_guard.errors.ModerationUnavailableError`, or returns the wrong count, NaN,
    infinity, a non-number or a value outside ``[0, 1]``) never passes as a score.

    Returns:
        One score per text (all None when the scorer could not answer), and the reason it could
        not (None when it answered).
    """
    if not texts:
        return [], None
    name = getattr(scorer, "name", type(scorer).__name__)
    try:
        return list(check_scores(scorer.score(list(texts)), len(texts), f"scorer {name!r}")), None
    except ModerationUnavailableError as exc:
        return [None] * len(texts), exc.reason


@dataclass(frozen=True)
class Scores:
    """A text's overall harm score and, from a scorer that has them, its category scores.

    Attributes:
        overall: the harm probability in [0, 1].
        categories: ``{category: score in [0, 1]}`` (None: the scorer scores no categories).
    """

    overall: float
    categories: Mapping[str, float] | None = None


def score_detailed(scorer: ModerationScorer, texts: Sequence[str]
                   ) -> tuple[list[Scores | None], str | None]:
    """Score ``texts`` with their categories where the scorer has them; fails closed.

    A scorer with ``score_detailed(texts) -> [(overall, {category: score})]`` is asked that (one
    call); any other through :func:`score_texts`, with no categories. A category score that is
    not a finite number in [0, 1] makes the whole call count as unanswered, like a bad overall
    score.

    Returns:
        One :class:`Scores` per text (all None when the scorer could not answer), and the reason.
    """
    detailed = getattr(scorer, "score_detailed", None)
    if detailed is None:
        overall, reason = score_texts(scorer, texts)
        return [None if value is None else Scores(value) for value in overall], reason
    if not texts:
        return [], None
    name = getattr(scorer, "name", type(scorer).__name__)
    try:
        results = list(detailed(list(texts)))
        values = check_scores([r[0] for r in results], len(texts), f"scorer {name!r}")
        out: list[Scores | None] = []
        for value, (_, categories) in zip(values, results, strict=True):
            if not isinstance(categories, Mapping):
                raise ModerationUnavailableError(f"scorer {name!r} returned no category mapping")
            checked = check_scores(list(categories.values()), len(categories),
                                   f"scorer {name!r} (categories)")
            out.append(Scores(value, dict(zip(categories, checked, strict=True))))
        return out, None
    except ModerationUnavailableError as exc:
        return [None] * len(texts), exc.reason
