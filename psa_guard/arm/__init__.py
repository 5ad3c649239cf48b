"""Pv-Arm: a preference-conditioned autoregressive reward model that steers decoding.

* :mod:`~psa_guard.arm.pblora`: the PBLoRA layer (per-row preference ``alpha``).
* :mod:`~psa_guard.arm.model`: :class:`PvArm`, the host model's top layers with PBLoRA on q/k/v,
  sharing every frozen weight and the host's lower computation.
* :mod:`~psa_guard.arm.data`: attribute preference pairs.
* :mod:`~psa_guard.arm.objectives`, :mod:`~psa_guard.arm.train`: Bradley-Terry training with
  ``alpha ~ Dirichlet`` and PCGrad.
* :mod:`~psa_guard.arm.guidance`, :mod:`~psa_guard.arm.generator`: the lexicographic decoding rule
  as a logits processor, and the guided generator.
* :mod:`~psa_guard.arm.config`: the ``arm`` and ``full`` configurations.
"""

from __future__ import annotations

from psa_guard.arm.checkpoint import SHIPPED_ADAPTER, load_arm, save_arm
from psa_guard.arm.generator import ArmGenerator
from psa_guard.arm.guidance import ArmGuidance, TermVeto, lexicographic_scores, safe_candidates
from psa_guard.arm.model import ArmConfig, PvArm
from psa_guard.arm.pblora import PBLoRALinear, dense_delta_weight, pblora_delta

__all__ = [
    "SHIPPED_ADAPTER",
    "ArmConfig",
    "ArmGenerator",
    "ArmGuidance",
    "PBLoRALinear",
    "PvArm",
    "TermVeto",
    "dense_delta_weight",
    "lexicographic_scores",
    "load_arm",
    "pblora_delta",
    "safe_candidates",
    "save_arm",
]
