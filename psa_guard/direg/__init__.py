"""DiReg: directional regulation by harm-vector subtraction (docs/method.md section 2).

Data flows one way: harm data (:mod:`~psa_guard.direg.data`, :mod:`~psa_guard.direg.pipeline`) ->
LoRA harm model (:mod:`~psa_guard.direg.train`) -> :class:`HarmVector` (low-rank factors in
safetensors) -> pure patch math (:mod:`~psa_guard.direg.math`) -> reversible patch
(:class:`PatchHandle`) -> the ``direg`` configuration on a patched *copy* of the model
(:mod:`~psa_guard.direg.patched`, settings in :mod:`~psa_guard.direg.config`). See ``docs/direg.md``.
"""

from __future__ import annotations

from psa_guard.direg.config import DEFAULT_K_PERCENT, DEFAULT_LAMBDA, DiRegSettings
from psa_guard.direg.math import dense_delta, patched_weight, trim_top_k
from psa_guard.direg.patch import PatchHandle, apply_harm_vector
from psa_guard.direg.patched import clear_patched_cache, direg_generator, load_patched
from psa_guard.direg.vector import SHIPPED_VECTOR, HarmVector, base_checksum

__all__ = [
    "DEFAULT_K_PERCENT",
    "DEFAULT_LAMBDA",
    "DiRegSettings",
    "SHIPPED_VECTOR",
    "HarmVector",
    "PatchHandle",
    "apply_harm_vector",
    "base_checksum",
    "clear_patched_cache",
    "dense_delta",
    "direg_generator",
    "load_patched",
    "patched_weight",
    "trim_top_k",
]
