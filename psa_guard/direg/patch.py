"""Apply a harm vector to a model, reversibly: ``W <- W - lambda * trim_K(s * B @ A)``.

:func:`apply_harm_vector` computes every patched weight first (refusing NaN/inf in safe mode), and
only then swaps them in, so a refused patch leaves the model untouched. The returned
:class:`PatchHandle` keeps the *original tensors* (not a copy, and never ``W + lambda * delta``),
so :meth:`PatchHandle.restore` gives bit-identical weights.

This module patches the model it is given, in place. Callers that share a model (the ``base``
configuration and the process-wide cache of :func:`psa_guard.loading.load_model`) must patch a
copy: see :mod:`psa_guard.direg.config`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from psa_guard.direg.math import dense_delta, is_finite, patched_weight, trim_top_k
from psa_guard.direg.vector import HarmVector
from psa_guard.errors import HarmVectorError

__all__ = ["PatchHandle", "apply_harm_vector"]

logger = logging.getLogger(__name__)


@dataclass
class PatchHandle:
    """What a patch changed, and how to undo it.

    Attributes:
        originals: parameter name -> (the parameter, its original tensor).
        lam: lambda used.
        k_percent: K used.
        seconds: wall time of the patch.
    """

    originals: dict[str, tuple[torch.nn.Parameter, torch.Tensor]]
    lam: float
    k_percent: float
    seconds: float = 0.0
    restored: bool = field(default=False, init=False)

    @property
    def names(self) -> list[str]:
        return list(self.originals)

    def restore(self) -> None:
        """Put the original tensors back (bit-identical); a second call does nothing."""
        if self.restored:
            return
        with torch.no_grad():
            for param, original in self.originals.values():
                param.data = original
        self.restored = True


def apply_harm_vector(model: Any, vector: HarmVector, lam: float, k_percent: float = 100.0, *,
                      checksum: str | None = None, safe: bool = True) -> PatchHandle:
    """Patch ``model`` in place with ``W - lam * trim_K(tau)`` on every module of ``vector``.

    Args:
        model: a ``torch.nn.Module`` whose parameters include ``<module>.weight`` for each module of
            the vector.
        vector: the harm vector.
        lam: strength lambda >= 0.
        k_percent: top-K% of each dense delta kept, in (0, 100].
        checksum: the model's base checksum; a mismatch with the vector's is refused (None skips).
        safe: refuse to produce NaN/inf weights (checked before anything is changed).

    Returns:
        A :class:`PatchHandle` whose ``restore()`` undoes the patch exactly.

    Raises:
        HarmVectorError: checksum or shape mismatch, bad lambda/K, or NaN/inf in safe mode.
    """
    start = time.perf_counter()
    weights = vector.check_compatible(model, checksum)
    new: dict[str, torch.Tensor] = {}
    try:
        with torch.no_grad():
            for name, weight in weights.items():
                a, b = vector.factors[name]
                delta = trim_top_k(dense_delta(a, b, vector.scale), k_percent)
                patched = patched_weight(weight.data, delta, lam)
                if safe and not is_finite(patched):
                    raise HarmVectorError(
                        f"patching {name}.weight with lambda={lam}, K={k_percent}% gives NaN or "
                        "inf values; the harm vector or the model weights are corrupted (or "
                        "lambda is far too large)")
                new[name] = patched
    except ValueError as exc:
        if isinstance(exc, HarmVectorError):
            raise
        raise HarmVectorError(f"cannot patch with lambda={lam}, K={k_percent}: {exc}") from exc
    originals: dict[str, tuple[torch.nn.Parameter, torch.Tensor]] = {}
    with torch.no_grad():
        for name, tensor in new.items():
            param = weights[name]
            originals[f"{name}.weight"] = (param, param.data)
            param.data = tensor
    handle = PatchHandle(originals, float(lam), float(k_percent), time.perf_counter() - start)
    logger.info("patched %d weights (lambda=%s, K=%s%%) in %.3f s", len(new), lam, k_percent,
                handle.seconds)
    return handle
