"""The training equations of Pv-Arm, as pure functions (docs/method.md section 3).

* :func:`bradley_terry_loss`: ``L_i = -log sigmoid(beta_i * (log pi_r(y_w|x) - log pi_r(y_l|x)))``.
* :func:`pcgrad`: gradient-conflict projection across attributes (PCGrad, Yu et al. 2020): when
  ``g_i . g_j < 0``, remove from ``g_i`` its component along ``g_j``, over the other attributes in a
  random order, then sum.
* :func:`combine`: the update direction, with or without the projection.
* :func:`without_attribute`: the preference a contrast term compares against (ours, beyond
  PARM): the same vector with one attribute's weight removed and the rest renormalised. The
  contrast term is :func:`bradley_terry_loss` between an attribute's pair margins scored under the
  step's preference and under that vector: more weight on attribute ``i`` should rank ``i``'s
  pairs more strongly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["bradley_terry_loss", "combine", "conflicts", "pcgrad", "without_attribute"]


def bradley_terry_loss(chosen_logprobs: torch.Tensor, rejected_logprobs: torch.Tensor,
                       beta: float) -> torch.Tensor:
    """Mean Bradley-Terry loss of summed response log-probs.

    Args:
        chosen_logprobs: ``(pairs,)`` ``log pi_r(y_w | x)``.
        rejected_logprobs: ``(pairs,)`` ``log pi_r(y_l | x)``.
        beta: the reward scale ``beta_i`` (> 0).

    Returns:
        A scalar.
    """
    return -torch.nn.functional.logsigmoid(beta * (chosen_logprobs - rejected_logprobs)).mean()


def pcgrad(gradients: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Project conflicting gradients (PCGrad) and sum them.

    Args:
        gradients: ``(k, parameters)`` one flattened gradient per attribute.
        rng: orders the projections (seeded by the caller).

    Returns:
        ``(parameters,)`` the sum of the projected gradients.
    """
    projected = gradients.clone()
    k = gradients.shape[0]
    norms = (gradients * gradients).sum(dim=1)
    for i in range(k):
        for j in rng.permutation(k).tolist():
            if j == i or norms[j] <= 0:
                continue
            dot = projected[i] @ gradients[j]
            if dot < 0:
                projected[i] = projected[i] - dot / norms[j] * gradients[j]
    return projected.sum(dim=0)


def conflicts(gradients: torch.Tensor) -> int:
    """How many attribute pairs ``(i < j)`` have conflicting gradients (``g_i . g_j < 0``)."""
    dots = gradients @ gradients.t()
    return int((torch.triu(dots, diagonal=1) < 0).sum())


def combine(gradients: Sequence[torch.Tensor], project: bool, rng: np.random.Generator
            ) -> torch.Tensor:
    """The update direction from per-attribute gradients: PCGrad-projected sum, or the plain sum."""
    stacked = torch.stack(list(gradients))
    return pcgrad(stacked, rng) if project else stacked.sum(dim=0)


def without_attribute(alpha: np.ndarray, index: int) -> np.ndarray:
    """``alpha`` with attribute ``index`` set to 0 and the others renormalised to sum to 1.

    When the others carry no weight (``alpha = e_index``) the result is uniform over them.

    Raises:
        ValueError: fewer than two attributes, or ``index`` out of range.
    """
    alpha = np.asarray(alpha, dtype=float)
    if alpha.ndim != 1 or alpha.shape[0] < 2 or not 0 <= index < alpha.shape[0]:
        raise ValueError(f"need a preference over >= 2 attributes and an index into it; got "
                         f"shape {alpha.shape} and index {index}")
    rest = alpha.copy()
    rest[index] = 0.0
    total = rest.sum()
    if total <= 1e-12:
        rest = np.full_like(alpha, 1.0 / (alpha.shape[0] - 1))
        rest[index] = 0.0
        return rest
    return rest / total
