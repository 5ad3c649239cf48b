"""Test-time input-embedding optimisation against a moderation score (method.md section 5)."""

from __future__ import annotations

from psa_guard.zo.math import normalize_per_token, project_cosine, sample_directions, zo_gradient
from psa_guard.zo.optimizer import (
    EmbeddingOptimizer,
    RepairResult,
    ZOSettings,
    make_repairer,
    model_responder,
)

__all__ = [
    "EmbeddingOptimizer",
    "RepairResult",
    "ZOSettings",
    "make_repairer",
    "model_responder",
    "normalize_per_token",
    "project_cosine",
    "sample_directions",
    "zo_gradient",
]
