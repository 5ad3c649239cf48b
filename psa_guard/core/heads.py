"""Logistic-regression heads on frozen embeddings: the math, as pure functions.

A head is ``p(y=1 | x) = sigmoid(w . (x - mean) / std + b)``. :func:`fit_logistic` trains one with
class-balanced weights and an L2 penalty (full-batch L-BFGS in float64, deterministic), so a 0.5
threshold is meaningful even when one class is rare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["LinearHead", "balanced_weights", "fit_logistic"]


@dataclass(frozen=True)
class LinearHead:
    """A trained logistic-regression head.

    Attributes:
        weight: float32 ``(dim,)``.
        bias: float32 scalar (shape ``()`` array).
        mean: float32 ``(dim,)``, feature mean of the training set.
        std: float32 ``(dim,)``, feature standard deviation of the training set (floored).
    """

    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.weight.shape[0])

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Logits ``(n,)`` for features ``(n, dim)``."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features must have shape (n, {self.dim}), got {features.shape}")
        return ((features - self.mean) / self.std) @ self.weight + float(self.bias)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probability of the positive class, ``(n,)`` float32 in [0, 1]."""
        z = self.logits(features).astype(np.float64)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def tensors(self) -> dict[str, np.ndarray]:
        """The arrays to store (safetensors names)."""
        return {"weight": self.weight, "bias": self.bias.reshape(1), "mean": self.mean,
                "std": self.std}

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> LinearHead:
        """Inverse of :meth:`tensors`; checks the shapes agree."""
        weight = np.asarray(tensors["weight"], dtype=np.float32)
        mean = np.asarray(tensors["mean"], dtype=np.float32)
        std = np.asarray(tensors["std"], dtype=np.float32)
        bias = np.asarray(tensors["bias"], dtype=np.float32).reshape(())
        if weight.ndim != 1 or mean.shape != weight.shape or std.shape != weight.shape:
            raise ValueError("head tensors weight, mean and std must be 1-D of equal length")
        return cls(weight, bias, mean, std)


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-example weights ``n / (2 * n_class)`` so both classes weigh the same in total."""
    labels = np.asarray(labels).astype(int)
    n = len(labels)
    positives = int(labels.sum())
    negatives = n - positives
    if positives == 0 or negatives == 0:
        raise ValueError("training labels must contain both classes")
    return np.where(labels == 1, n / (2.0 * positives), n / (2.0 * negatives))


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1e-2,
                 max_iter: int = 200) -> LinearHead:
    """Fit a class-balanced, L2-penalised logistic regression (deterministic).

    Args:
        features: float ``(n, dim)``.
        labels: 0/1 ``(n,)``.
        l2: penalty ``l2 / 2 * ||w||^2`` added to the mean weighted log-loss (bias not penalised).
        max_iter: L-BFGS iterations.

    Returns:
        the trained :class:`LinearHead` (standardisation statistics included).
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).astype(np.float64)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"features {x.shape} and labels {y.shape} do not match")
    mean = x.mean(axis=0)
    std = np.maximum(x.std(axis=0), 1e-6)
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y)
    wt = torch.from_numpy(balanced_weights(y))
    weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = xt @ weight + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt, weight=wt)
        loss = loss + 0.5 * l2 * (weight * weight).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return LinearHead(
        weight.detach().numpy().astype(np.float32),
        np.asarray(bias.detach().numpy(), dtype=np.float32).reshape(()),
        mean.astype(np.float32),
        std.astype(np.float32),
    )
