"""Multi-output logistic heads: K one-vs-rest classifiers sharing one feature standardisation.

A :class:`MatrixHead` is ``p(y_k = 1 | x) = sigmoid(W[k] . (x - mean) / std + b[k])`` for
``k < K``; it is the multi-label sibling of :class:`psa_guard.core.heads.LinearHead` (one output).
:func:`fit_multilabel` trains all K columns at once (class-balanced per column, an L2 strength per
column, full-batch L-BFGS in float64, deterministic). Since the loss is a sum over columns, this
gives the same optimum as K separate fits.

On disk a head named ``NAME`` is the same three files as a single head (see
:mod:`psa_guard.core.checksums`): ``NAME.safetensors`` (``weight [K, D]``, ``bias [K]``,
``mean [D]``, ``std [D]``, float32), ``NAME.json`` (provenance, with ``outputs``: the names of the K
columns in order) and ``NAME.sha256``. :func:`load_matrix_head` verifies them with
:func:`~psa_guard.core.checksums.verify_head` before reading a tensor, and checks the column names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from psa_guard.core.atomic import atomic_path, write_atomic
from psa_guard.core.checksums import file_sha256, verify_head
from psa_guard.errors import ModelLoadError

__all__ = ["MatrixHead", "fit_multilabel", "load_matrix_head", "save_matrix_head"]


@dataclass(frozen=True)
class MatrixHead:
    """K logistic-regression heads on the same standardised features.

    Attributes:
        weight: float32 ``(K, D)``.
        bias: float32 ``(K,)``.
        mean: float32 ``(D,)``, feature mean of the training set.
        std: float32 ``(D,)``, feature standard deviation of the training set (floored).
    """

    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        shape = self.weight.shape
        if not (len(shape) == 2 and shape[0] >= 1 and self.bias.shape == shape[:1]
                and self.mean.shape == self.std.shape == shape[1:]):
            raise ValueError(
                "a matrix head needs weight (K, D), bias (K,), mean (D,) and std (D,); got "
                f"{self.weight.shape}, {self.bias.shape}, {self.mean.shape}, {self.std.shape}")

    @property
    def dim(self) -> int:
        """D, the feature width."""
        return int(self.weight.shape[1])

    @property
    def outputs(self) -> int:
        """K, the number of heads."""
        return int(self.weight.shape[0])

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Logits ``(n, K)`` float32 for features ``(n, D)``."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features must have shape (n, {self.dim}), got {features.shape}")
        return ((features - self.mean) / self.std) @ self.weight.T + self.bias

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, K)`` float32 in [0, 1]."""
        z = self.logits(features).astype(np.float64)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def tensors(self) -> dict[str, np.ndarray]:
        """The arrays to store (safetensors names)."""
        return {"weight": self.weight, "bias": self.bias, "mean": self.mean, "std": self.std}

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> MatrixHead:
        """Inverse of :meth:`tensors`.

        Raises:
            KeyError: a tensor is missing.
            ValueError: the shapes do not agree.
        """
        return cls(*(np.asarray(tensors[k], dtype=np.float32)
                     for k in ("weight", "bias", "mean", "std")))


def fit_multilabel(features: np.ndarray, labels: np.ndarray,
                   l2: float | Sequence[float] | np.ndarray = 1e-2,
                   balance: float = 1.0, max_iter: int = 300) -> MatrixHead:
    """Fit K L2-penalised logistic regressions at once (deterministic).

    Column ``k`` minimises its mean weighted log-loss plus ``l2[k] / 2 * ||W[k]||^2`` (bias not
    penalised), with weights ``(n / (2 * n_pos)) ** balance`` on its positives and
    ``(n / (2 * n_neg)) ** balance`` on its negatives. ``balance=1`` weighs both classes the same
    (0.5 is then the balanced operating point, as in :func:`psa_guard.core.heads.fit_logistic`);
    ``balance=0`` is the plain likelihood (probabilities follow the training prevalence).

    Args:
        features: float ``(n, D)``.
        labels: 0/1 ``(n, K)``; every column needs both classes.
        l2: one strength for all columns, or one per column.
        balance: class-weight exponent in [0, 1].
        max_iter: L-BFGS iterations.

    Raises:
        ValueError: shapes disagree, a column has only one class, or ``balance`` is outside
            [0, 1].
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"features {x.shape} and labels {y.shape} do not match")
    n, k = y.shape
    positives = y.sum(axis=0)
    if np.any(positives == 0) or np.any(positives == n):
        raise ValueError(f"every label column needs both classes; positives per column: "
                         f"{positives.astype(int).tolist()} of {n}")
    strengths = np.broadcast_to(np.asarray(l2, dtype=np.float64), (k,))
    mean = x.mean(axis=0)
    std = np.maximum(x.std(axis=0), 1e-6)
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y)
    if not 0.0 <= balance <= 1.0:
        raise ValueError(f"balance must lie in [0, 1], got {balance}")
    wt = torch.from_numpy(np.where(y == 1, n / (2.0 * positives), n / (2.0 * (n - positives)))
                          ** balance)
    lt = torch.from_numpy(strengths.copy())
    weight = torch.zeros(k, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = xt @ weight.T + bias
        losses = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, yt, weight=wt, reduction="none").mean(dim=0)
        loss = (losses + 0.5 * lt * (weight * weight).sum(dim=1)).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return MatrixHead(weight.detach().numpy().astype(np.float32),
                      bias.detach().numpy().astype(np.float32),
                      mean.astype(np.float32), std.astype(np.float32))


def save_matrix_head(head: MatrixHead, name: str, outputs: Sequence[str],
                     provenance: dict[str, Any], folder: str | Path) -> Path:
    """Write ``NAME.safetensors``, ``NAME.json`` and ``NAME.sha256``, each atomically.

    Args:
        head: the trained head.
        name: the file stem.
        outputs: the names of the K columns, in order (recorded as ``outputs``).
        provenance: what to record; ``outputs``, ``weights_file`` and ``weights_sha256`` are added.
        folder: where to write (created if needed).

    Returns:
        The weights path.

    Raises:
        ValueError: ``outputs`` does not name every column exactly once.
    """
    from safetensors.numpy import save_file

    if len(outputs) != head.outputs or len(set(outputs)) != len(outputs):
        raise ValueError(f"{len(outputs)} output names for a head with {head.outputs} columns")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights, meta, sums = (folder / f"{name}.{ext}" for ext in ("safetensors", "json", "sha256"))
    with atomic_path(weights) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in head.tensors().items()}, str(tmp),
                  metadata={"head": name, "outputs": ",".join(outputs)})
    record = dict(provenance, outputs=list(outputs), weights_file=weights.name,
                  weights_sha256=file_sha256(weights))
    write_atomic(meta, json.dumps(record, indent=2, sort_keys=True) + "\n")
    write_atomic(sums, "".join(f"{file_sha256(p)}  {p.name}\n" for p in (weights, meta)))
    return weights


def load_matrix_head(name: str, folder: str | Path, *, fix: str, kind: str = "head",
                     outputs: Sequence[str] | None = None,
                     dim: int | None = None) -> tuple[MatrixHead, dict[str, Any]]:
    """Load a verified matrix head and its provenance.

    Args:
        name: the file stem.
        folder: the folder holding the three files.
        fix: how to repair, appended to every message.
        kind: what the head is, for messages.
        outputs: the column names the caller expects, in order (None: not checked).
        dim: the feature width the caller will feed it (None: not checked).

    Raises:
        ModelNotFoundError: a file is missing.
        ChecksumError: a file does not match its recorded checksum.
        ModelLoadError: the tensors are not a matrix head, or its columns or width are not the
            expected ones.
    """
    from safetensors.numpy import load_file

    provenance = verify_head(name, folder, fix=fix, kind=kind)
    weights = Path(folder) / f"{name}.safetensors"
    try:
        head = MatrixHead.from_tensors(load_file(str(weights)))
    except Exception as exc:  # safetensors raises its own types; from_tensors KeyError/ValueError
        raise ModelLoadError(f"{kind} file {weights} is not a valid matrix head ({exc}); "
                             f"{fix}") from exc
    recorded = provenance.get("outputs")
    if not isinstance(recorded, list) or len(recorded) != head.outputs:
        raise ModelLoadError(f"{kind} {name!r} in {folder} does not record one output name per "
                             f"column ({head.outputs} columns); {fix}")
    if outputs is not None and list(outputs) != recorded:
        raise ModelLoadError(f"{kind} {name!r} in {folder} has the outputs {recorded} but this "
                             f"version of psa-guard expects {list(outputs)}; {fix}")
    if dim is not None and head.dim != dim:
        raise ModelLoadError(f"{kind} {name!r} in {folder} expects {head.dim} features but this "
                             f"version of psa-guard builds {dim}; {fix}")
    return head, provenance
