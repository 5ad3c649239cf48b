"""Test-time input-embedding optimisation against a moderation score (docs/method.md section 5)."""

from __future__ import annotations

from psa_guard.zo.config import ZOSettings
from psa_guard.zo.math import (
    descent_step,
    normalize_per_token,
    project_cosine,
    sample_directions,
    zo_gradient,
)
from psa_guard.zo.optimizer import EmbeddingOptimizer, RepairResult, make_repairer, model_responder
from psa_guard.zo.quality import degeneracy, distinct_bigrams, penalised
from psa_guard.zo.trace import Candidate, Outcome, by_score, replay

__all__ = [
    "Candidate",
    "EmbeddingOptimizer",
    "Outcome",
    "RepairResult",
    "ZOSettings",
    "by_score",
    "descent_step",
    "distinct_bigrams",
    "make_repairer",
    "model_responder",
    "normalize_per_token",
    "penalised",
    "project_cosine",
    "degeneracy",
    "replay",
    "sample_directions",
    "zo_gradient",
]
