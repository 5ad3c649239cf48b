"""Held-out evaluation of a Pv-Arm reward model: pairwise accuracy and preference control.

* :func:`heldout_accuracy`: for each attribute, the fraction of its held-out pairs where the reward
  model, conditioned on ``alpha = e_i`` (that attribute alone), gives the preferred response the
  higher summed log-probability.
* :func:`control_grid`: for each attribute ``i`` and weight ``w`` on an 11-point grid,
  ``alpha = w e_i + (1 - w) * uniform(other attributes)``; the score is the mean held-out reward
  margin ``log pi_r(y_w) - log pi_r(y_l)`` on attribute ``i``'s pairs, and the Spearman correlation
  between ``w`` and the score says whether turning the attribute up turns its reward up.

Held-out pairs are never trained on (see :mod:`psa_guard.arm.data`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from psa_guard.arm.model import PvArm
from psa_guard.arm.pairs import PreferencePair
from psa_guard.arm.train import LowerStates, encode_pair, pair_logprobs

__all__ = ["GRID", "bootstrap_spearman", "control_grid", "encode_pairs", "grid_preference",
           "heldout_accuracy", "pair_margins", "spearman"]

GRID: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(11))


def grid_preference(k: int, attribute: int, weight: float) -> torch.Tensor:
    """``w e_i + (1 - w)`` spread evenly over the other ``k - 1`` attributes, shape ``(k,)``."""
    alpha = torch.full((k,), (1.0 - weight) / max(1, k - 1))
    alpha[attribute] = weight
    return alpha


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    def ranks(values: Sequence[float]) -> np.ndarray:
        array = np.asarray(values, dtype=float)
        order = array.argsort(kind="stable")
        out = np.empty(len(array))
        out[order] = np.arange(len(array), dtype=float)
        for value in np.unique(array):
            tie = array == value
            out[tie] = out[tie].mean()
        return out

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def bootstrap_spearman(x: Sequence[float], per_item: Any, resamples: int = 2000, seed: int = 0,
                       threshold: float = 0.8) -> dict[str, float]:
    """How sure is a grid's Spearman rho? A paired bootstrap over the items (prompts).

    Each resample draws ``n`` items with replacement, the same items at every grid point (each
    item was scored at every point), averages them per point and takes the rho of ``x`` against
    those means.

    Args:
        x: the grid (length ``m``).
        per_item: scores, shape ``(n_items, m)``: row ``j`` is item ``j`` at every grid point.
        resamples: bootstrap resamples.
        seed: seed of the resampling.
        threshold: the rho the share ``at_least`` counts.

    Returns:
        ``{"rho", "low", "high", "at_least"}``: the rho of the full sample, the 2.5 and 97.5
        percentiles of the resampled rhos, and the share of resamples with rho >= ``threshold``.

    Raises:
        ValueError: ``per_item`` is not ``(n_items >= 1, len(x))`` or ``resamples < 1``.
    """
    scores = np.asarray(per_item, dtype=float)
    if scores.ndim != 2 or scores.shape[0] < 1 or scores.shape[1] != len(x):
        raise ValueError(f"per_item must have shape (n_items, {len(x)}), got {scores.shape}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    n = scores.shape[0]
    rhos = np.array([spearman(x, scores[rng.integers(0, n, n)].mean(axis=0))
                     for _ in range(resamples)])
    low, high = np.nanpercentile(rhos, [2.5, 97.5])
    return {"rho": spearman(x, scores.mean(axis=0)), "low": float(low), "high": float(high),
            "at_least": float(np.mean(rhos >= threshold))}


def pair_margins(arm: PvArm, lower: LowerStates, encoded: Sequence[Any], alpha: torch.Tensor,
                 batch: int = 16) -> torch.Tensor:
    """``log pi_r(y_w) - log pi_r(y_l)`` of each encoded pair under ``alpha`` (``(k,)``)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(encoded), batch):
            chosen, rejected = pair_logprobs(arm, lower, encoded[start:start + batch], alpha)
            out.append(chosen - rejected)
    return torch.cat(out)


def encode_pairs(arm: PvArm, tokenizer: Any, pairs: Mapping[str, Sequence[PreferencePair]],
                 max_prompt: int, max_response: int) -> dict[str, list[Any]]:
    """Tokenised pairs by attribute (:func:`~psa_guard.arm.train.encode_pair`)."""
    return {a: [encode_pair(tokenizer, p, max_prompt, max_response) for p in pairs[a]]
            for a in arm.config.attributes}


def heldout_accuracy(arm: PvArm, tokenizer: Any, heldout: Mapping[str, Sequence[PreferencePair]],
                     lower: LowerStates, *, max_prompt: int = 64, max_response: int = 48
                     ) -> dict[str, dict[str, float]]:
    """Per attribute: ``accuracy`` at ``alpha = e_i``, the mean ``margin`` and ``pairs``."""
    k = len(arm.config.attributes)
    encoded = encode_pairs(arm, tokenizer, heldout, max_prompt, max_response)
    results = {}
    for index, attribute in enumerate(arm.config.attributes):
        margins = pair_margins(arm, lower, encoded[attribute], grid_preference(k, index, 1.0))
        results[attribute] = {"accuracy": round(float((margins > 0).float().mean()), 4),
                              "margin": round(float(margins.mean()), 3),
                              "pairs": len(encoded[attribute])}
    return results


def control_grid(arm: PvArm, tokenizer: Any, heldout: Mapping[str, Sequence[PreferencePair]],
                 lower: LowerStates, *, grid: Sequence[float] = GRID, max_prompt: int = 64,
                 max_response: int = 48) -> dict[str, dict[str, Any]]:
    """Per attribute: the grid, mean margin and accuracy at each point, and Spearman rho."""
    k = len(arm.config.attributes)
    encoded = encode_pairs(arm, tokenizer, heldout, max_prompt, max_response)
    results: dict[str, dict[str, Any]] = {}
    total = len(grid) * k
    with tqdm(total=total, desc="control grid", unit="point") as bar:
        for index, attribute in enumerate(arm.config.attributes):
            margins, accuracies = [], []
            for weight in grid:
                values = pair_margins(arm, lower, encoded[attribute],
                                  grid_preference(k, index, weight))
                margins.append(round(float(values.mean()), 3))
                accuracies.append(round(float((values > 0).float().mean()), 4))
                bar.update(1)
            results[attribute] = {"grid": list(grid), "margin": margins, "accuracy": accuracies,
                                  "spearman": round(spearman(grid, margins), 3)}
    return results
