"""Settings of DiReg at inference: which harm vector is subtracted, and how strongly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from psa_guard.errors import ConfigurationError

__all__ = ["DEFAULT_K_PERCENT", "DEFAULT_LAMBDA", "DiRegSettings"]

#: Defaults picked from the measured sweep in docs/direg.md: the point with the smallest utility
#: cost (over-refusal +1.2 points, benign perplexity +28 %) for an 11 % relative fall in unsafe
#: compliance. No point of the sweep met every goal; see docs/direg.md.
DEFAULT_LAMBDA = 1.0
DEFAULT_K_PERCENT = 10.0


@dataclass(frozen=True)
class DiRegSettings:
    """How the ``direg`` and ``full`` configurations patch the model.

    Attributes:
        lam: lambda, the scale of the subtracted harm vector (>= 0).
        k_percent: K, the percentage of the harm vector's largest entries kept, in (0, 100].
        vector: the harm vector file (None: the shipped one).
    """

    lam: float = DEFAULT_LAMBDA
    k_percent: float = DEFAULT_K_PERCENT
    vector: Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.lam, bool) or not self.lam >= 0:
            raise ConfigurationError(f"direg_lambda must be >= 0, got {self.lam}")
        if isinstance(self.k_percent, bool) or not 0 < self.k_percent <= 100:
            raise ConfigurationError(
                f"direg_k must be a percentage in (0, 100], got {self.k_percent}")
        object.__setattr__(self, "lam", float(self.lam))
        object.__setattr__(self, "k_percent", float(self.k_percent))
