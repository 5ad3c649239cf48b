"""Settings of Pv-Arm guided decoding: what the ``arm`` and ``full`` configurations decode with.

A request's :class:`~psa_guard.steering.Steering` (its policy context's preference, beta and hard
constraint, then the caller's overrides) is merged over :meth:`ArmSettings.steering` per row; the
fields here that no request can change (``max_candidates``, the adapter file) are part of the
configuration's fingerprint, so changing one never reuses cached replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from psa_guard.errors import ConfigurationError
from psa_guard.steering import (
    DEFAULT_BETA,
    DEFAULT_RISK_THRESHOLD,
    DEFAULT_SAFE_TOP_P,
    UNIFORM_PREFERENCE,
    Steering,
)

__all__ = ["DEFAULT_MAX_CANDIDATES", "ArmSettings"]

#: The most candidates Pv-Arm re-ranks per decoding step.
DEFAULT_MAX_CANDIDATES = 20


@dataclass(frozen=True)
class ArmSettings:
    """Defaults of guided decoding (each request may override the steering fields).

    Attributes:
        preference: default weights in ``ATTRIBUTES`` order (normalised).
        beta: default guidance temperature (> 0; the reward model's weight is ``1 / beta``).
        top_p: nucleus mass of the safe set.
        max_candidates: the most candidates Pv-Arm re-ranks per step.
        risk_threshold: the risk gate: guidance is off for a prompt scored above it (1: never).
        adapter: the Pv-Arm adapter file (None: the shipped one).
    """

    preference: tuple[float, ...] = UNIFORM_PREFERENCE
    beta: float = DEFAULT_BETA
    top_p: float = DEFAULT_SAFE_TOP_P
    max_candidates: int = DEFAULT_MAX_CANDIDATES
    risk_threshold: float = DEFAULT_RISK_THRESHOLD
    adapter: Path | None = None

    def __post_init__(self) -> None:
        if self.max_candidates < 1:
            raise ConfigurationError(f"max_candidates must be >= 1; got {self.max_candidates}")
        object.__setattr__(self, "preference", self.steering().preference)

    def steering(self) -> Steering:
        """The complete default steering (validates the preference, beta, top_p and gate)."""
        return Steering(self.preference, self.beta, self.top_p, (), self.risk_threshold)
