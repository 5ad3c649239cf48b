"""PBLoRA: a LoRA whose second block is mixed per batch row by a preference vector (PARM).

On an adapted linear layer ``W0`` (``d_out x d_in``)::

    DeltaW(alpha) = s * (B1 @ W1 @ A1 + B2 @ W2(alpha) @ A2),   W2(alpha) = sum_i alpha_i * Z_i

with ``A = [A1; A2]`` (``(r1 + r2) x d_in``), ``B = [B1, B2]`` (``d_out x (r1 + r2)``), ``W1``
(``r1 x r1``), one ``r2 x r2`` core ``Z_i`` per attribute and ``s = lora_alpha / r2``
(docs/method.md section 3). ``alpha`` is an *input* of shape ``(batch, k)``: every row of a batch may
carry its own preference, and changing it never reloads anything.

:func:`pblora_delta` is the equation (pure, low-rank, never builds ``DeltaW``);
:func:`dense_delta_weight` builds ``DeltaW(alpha)`` for one preference (tests compare the two);
:class:`PBLoRALinear` wires the equation around a frozen, shared ``nn.Linear``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["PBLoRALinear", "dense_delta_weight", "mix_cores", "pblora_delta"]


def mix_cores(alpha: torch.Tensor, cores: torch.Tensor) -> torch.Tensor:
    """``W2(alpha) = sum_i alpha_i Z_i`` for each row.

    Args:
        alpha: ``(batch, k)`` preference weights.
        cores: ``(k, r2, r2)`` the cores ``Z_i``.

    Returns:
        ``(batch, r2, r2)``.
    """
    return torch.einsum("bk,kij->bij", alpha.to(cores.dtype), cores)


def pblora_delta(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, w1: torch.Tensor,
                 cores: torch.Tensor, alpha: torch.Tensor, scale: float) -> torch.Tensor:
    """``x @ DeltaW(alpha_row)^T`` for every row, computed through the rank-(r1+r2) bottleneck.

    Args:
        x: ``(batch, tokens, d_in)`` inputs.
        a: ``(r1 + r2, d_in)`` the stacked ``[A1; A2]``.
        b: ``(d_out, r1 + r2)`` the stacked ``[B1, B2]``.
        w1: ``(r1, r1)`` the shared core.
        cores: ``(k, r2, r2)`` the preference cores ``Z_i``.
        alpha: ``(batch, k)`` one preference per row.
        scale: ``s = lora_alpha / r2``.

    Returns:
        ``(batch, tokens, d_out)``.
    """
    r1 = w1.shape[0]
    h = x @ a.t()                                       # (batch, tokens, r1 + r2)
    h1 = h[..., :r1] @ w1.t()
    h2 = torch.einsum("btj,bij->bti", h[..., r1:], mix_cores(alpha, cores))
    return scale * (torch.cat((h1, h2), dim=-1) @ b.t())


def dense_delta_weight(a: torch.Tensor, b: torch.Tensor, w1: torch.Tensor, cores: torch.Tensor,
                       alpha: torch.Tensor, scale: float) -> torch.Tensor:
    """The dense ``DeltaW(alpha)`` (``d_out x d_in``) for one preference ``alpha`` of shape ``(k,)``."""
    r1 = w1.shape[0]
    w2 = torch.einsum("k,kij->ij", alpha.to(cores.dtype), cores)
    return scale * (b[:, :r1] @ w1 @ a[:r1] + b[:, r1:] @ w2 @ a[r1:])


class PBLoRALinear(nn.Module):
    """A frozen linear layer plus a PBLoRA update driven by a per-row preference.

    The wrapped layer is *shared*, not copied: its weight stays the tensor of the model it came
    from. Set :attr:`alpha` (``(batch, k)``) before calling; :class:`~psa_guard.arm.model.PvArm`
    does that for all of its adapted layers at once.

    Args:
        base: the frozen ``nn.Linear``.
        k: number of attributes (cores).
        r1: rank of the shared block.
        r2: rank of the preference block.
        lora_alpha: numerator of the scale ``s = lora_alpha / r2``.
        generator: seeds the initialisation (``A`` uniform in ``+-1/sqrt(d_in)``, ``B`` zero,
            ``W1`` identity, ``Z_i`` identity plus Gaussian noise of ``core_init_std``).
        core_init_std: how far the cores start apart (with ``B = 0`` the initial update is zero
            whatever the cores are; distinct cores let ``alpha`` matter from the first step).
    """

    def __init__(self, base: nn.Linear, k: int, r1: int = 4, r2: int = 4, lora_alpha: float = 8.0,
                 generator: torch.Generator | None = None, core_init_std: float = 0.5) -> None:
        super().__init__()
        if r1 < 1 or r2 < 1 or k < 1:
            raise ValueError(f"PBLoRA ranks and attribute count must be >= 1 (r1={r1}, r2={r2}, k={k})")
        self.base = base
        self.k, self.r1, self.r2 = k, r1, r2
        self.scale = float(lora_alpha) / r2
        d_out, d_in = base.weight.shape
        dtype = base.weight.dtype
        a = torch.empty(r1 + r2, d_in, dtype=dtype)
        bound = 1.0 / math.sqrt(d_in)
        a.uniform_(-bound, bound, generator=generator)
        noise = torch.randn(k, r2, r2, generator=generator, dtype=dtype) * core_init_std
        self.lora_a = nn.Parameter(a)
        self.lora_b = nn.Parameter(torch.zeros(d_out, r1 + r2, dtype=dtype))
        self.lora_w1 = nn.Parameter(torch.eye(r1, dtype=dtype))
        self.lora_cores = nn.Parameter(torch.eye(r2, dtype=dtype).expand(k, r2, r2) + noise)
        self.alpha: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.alpha is None:
            raise RuntimeError("PBLoRALinear called without a preference; PvArm sets alpha per call")
        alpha = self.alpha
        if alpha.shape[0] != x.shape[0]:
            raise ValueError(f"alpha has {alpha.shape[0]} rows but the input batch has {x.shape[0]}")
        delta = pblora_delta(x, self.lora_a, self.lora_b, self.lora_w1, self.lora_cores, alpha,
                             self.scale)
        return self.base(x) + delta.to(x.dtype)
