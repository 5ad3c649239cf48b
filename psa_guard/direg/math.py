"""The DiReg update as pure tensor functions (docs/method.md section 2).

For one adapted weight ``W`` (``d_out x d_in``) with LoRA factors ``A`` (``r x d_in``) and ``B``
(``d_out x r``) of the harm model::

    tau        = s * B @ A                       (dense_delta)
    trim_K(tau) = tau with all but its top-K% entries by |value| set to 0   (trim_top_k)
    W_safe     = W - lambda * trim_K(tau)        (patched_weight)

Trimming is per matrix. Ties at the threshold are all kept, so slightly more than K% may survive
when magnitudes repeat. Everything is computed in float32 and cast back to ``W``'s dtype.
"""

from __future__ import annotations

import math

import torch

__all__ = ["dense_delta", "is_finite", "patched_weight", "trim_top_k"]


def dense_delta(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """The dense harm delta ``scale * B @ A``.

    Args:
        a: LoRA ``A``, float ``(r, d_in)``.
        b: LoRA ``B``, float ``(d_out, r)``.
        scale: the LoRA scale ``lora_alpha / r``.

    Returns:
        float32 ``(d_out, d_in)``.

    Raises:
        ValueError: the factors are not 2-D or their ranks differ.
    """
    if a.ndim != 2 or b.ndim != 2 or b.shape[1] != a.shape[0]:
        raise ValueError(f"LoRA factors must be A (r, d_in) and B (d_out, r); got A "
                         f"{tuple(a.shape)} and B {tuple(b.shape)}")
    return float(scale) * (b.to(torch.float32) @ a.to(torch.float32))


def trim_top_k(delta: torch.Tensor, k_percent: float) -> torch.Tensor:
    """Keep the top ``k_percent`` % entries of ``delta`` by magnitude, zero the rest.

    Args:
        delta: any float tensor.
        k_percent: in (0, 100]; 100 returns an unchanged copy.

    Returns:
        A new tensor of ``delta``'s shape and dtype.

    Raises:
        ValueError: ``k_percent`` outside (0, 100].
    """
    if isinstance(k_percent, bool) or not 0 < float(k_percent) <= 100:
        raise ValueError(f"k_percent must be in (0, 100], got {k_percent!r}")
    if k_percent >= 100 or delta.numel() == 0:
        return delta.clone()
    flat = delta.reshape(-1).abs()
    keep = max(1, math.ceil(flat.numel() * float(k_percent) / 100.0))
    # the keep-th largest magnitude (a selection, cheaper than topk or a sort)
    threshold = torch.kthvalue(flat, flat.numel() - keep + 1).values
    return torch.where(delta.abs() >= threshold, delta, torch.zeros_like(delta))


def patched_weight(weight: torch.Tensor, delta: torch.Tensor, lam: float) -> torch.Tensor:
    """``weight - lam * delta``, computed in float32, returned in ``weight``'s dtype (a new tensor).

    Args:
        weight: ``(d_out, d_in)``.
        delta: ``(d_out, d_in)``, usually ``trim_top_k(dense_delta(...), K)``.
        lam: the strength lambda (>= 0).

    Raises:
        ValueError: shapes differ or lambda is negative or not finite.
    """
    if weight.shape != delta.shape:
        raise ValueError(f"weight {tuple(weight.shape)} and delta {tuple(delta.shape)} differ")
    if isinstance(lam, bool) or not math.isfinite(float(lam)) or lam < 0:
        raise ValueError(f"lambda must be a finite number >= 0, got {lam!r}")
    out = weight.to(torch.float32) - float(lam) * delta.to(torch.float32)
    return out.to(weight.dtype)


def is_finite(tensor: torch.Tensor) -> bool:
    """True when every entry is finite (no NaN, no inf)."""
    return bool(torch.isfinite(tensor).all())
