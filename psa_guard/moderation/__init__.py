"""Moderation scorers: texts in, one harm probability in [0, 1] per text out.

* :class:`ModerationScorer`: the protocol (``name``, ``score(texts) -> list[float]``; raises
  :class:`~psa_guard.errors.ModerationUnavailableError` when it cannot answer, never guesses).
* :class:`LocalModerationScorer`: offline default; all-MiniLM-L6-v2 embeddings and the moderation
  scorer's own logistic head (``artifacts/``, built by ``scripts/train_moderation.py``).
  :func:`default_scorer` loads it lazily, once per process.
* :class:`HTTPModerationScorer`: a client for servers with the OpenAI moderation shape (timeouts,
  retries with exponential backoff and jitter, ``Retry-After``, an overall time budget).
* :class:`ModerationServer`: serves any scorer in that shape on loopback, with injectable
  :class:`Fault` s for tests (``psa-guard moderation serve``).

See ``docs/moderation.md``.
"""

from __future__ import annotations

from psa_guard.moderation.base import ModerationScorer
from psa_guard.moderation.http import HTTPModerationScorer
from psa_guard.moderation.local import LazyDefaultScorer, LocalModerationScorer, default_scorer
from psa_guard.moderation.server import Fault, ModerationServer

__all__ = [
    "Fault",
    "HTTPModerationScorer",
    "LocalModerationScorer",
    "ModerationScorer",
    "ModerationServer",
    "default_scorer",
    "LazyDefaultScorer",
]
