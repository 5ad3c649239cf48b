"""Per-request steering of guided generation (Pv-Arm), and the one home of its defaults.

Torch-free on purpose: the policy layer builds a :class:`Steering` from a context without importing
the generation stack, and the request pipeline merges a request's overrides into it once.
"""

from __future__ import annotations

from dataclasses import dataclass

from psa_guard.attributes import ATTRIBUTES
from psa_guard.errors import ConfigurationError

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_RISK_THRESHOLD",
    "DEFAULT_SAFE_TOP_P",
    "UNIFORM_PREFERENCE",
    "Steering",
]

#: Guidance temperature when neither the request nor the policy sets one (weight 1/beta = 1).
DEFAULT_BETA = 1.0
#: The risk gate's default: the local moderation scorer's own decision threshold (chosen with its
#: training-side data, see ``docs/moderation.md``), not tuned on any evaluation suite.
DEFAULT_RISK_THRESHOLD = 0.5
#: Nucleus mass of the safety stage's candidate set (the hard constraint's ``top_p``).
DEFAULT_SAFE_TOP_P = 0.9
#: Equal weight on every attribute.
UNIFORM_PREFERENCE: tuple[float, ...] = tuple(1.0 / len(ATTRIBUTES) for _ in ATTRIBUTES)


@dataclass(frozen=True)
class Steering:
    """Per-request guidance for a guided generator (Pv-Arm); plain generators ignore it.

    Unlike :class:`GenerationSettings`, steering is not part of the batching key: requests with
    different preferences share one batch, each row carrying its own.

    Attributes:
        preference: weights over :data:`psa_guard.attributes.ATTRIBUTES`, normalised to sum to 1
            (None: the generator's default).
        beta: guidance temperature; the reward model's weight is ``1 / beta`` (None: default).
        safe_top_p: nucleus mass of the safety stage's candidate set (None: default).
        blocked_terms: strings the reply must never contain (the hard constraint), added to the
            generator's own.
        risk_threshold: the risk gate of the safety stage: when the prompt's harm score exceeds it,
            the reward model gets no weight and the safety model alone decides (1 disables the
            gate; None: default).
        risk: the prompt's harm score in [0, 1], if the caller already has it (None: a guided
            generator with a risk scorer scores the last user turn itself).
    """

    preference: tuple[float, ...] | None = None
    beta: float | None = None
    safe_top_p: float | None = None
    blocked_terms: tuple[str, ...] = ()
    risk_threshold: float | None = None
    risk: float | None = None

    def __post_init__(self) -> None:
        if self.preference is not None:
            weights = tuple(float(w) for w in self.preference)
            if any(w < 0 or w != w for w in weights) or sum(weights) <= 0:
                raise ConfigurationError(
                    f"steering preference must be non-negative weights with a positive sum; "
                    f"got {weights}"
                )
            total = sum(weights)
            object.__setattr__(self, "preference", tuple(w / total for w in weights))
        if self.beta is not None and not (self.beta > 0 and self.beta != float("inf")):
            raise ConfigurationError(f"steering beta must be a finite number > 0; got {self.beta}")
        if self.safe_top_p is not None and not 0 < self.safe_top_p <= 1:
            raise ConfigurationError(f"steering safe_top_p must be in (0, 1]; got {self.safe_top_p}")
        for name in ("risk_threshold", "risk"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ConfigurationError(f"steering {name} must be in [0, 1]; got {value}")
        object.__setattr__(self, "blocked_terms", tuple(str(t) for t in self.blocked_terms if t))

    def merged(self, override: Steering | None) -> Steering:
        """This steering with every field that ``override`` sets taken from ``override``."""
        if override is None:
            return self
        return Steering(
            override.preference if override.preference is not None else self.preference,
            override.beta if override.beta is not None else self.beta,
            override.safe_top_p if override.safe_top_p is not None else self.safe_top_p,
            tuple(dict.fromkeys((*self.blocked_terms, *override.blocked_terms))),
            override.risk_threshold if override.risk_threshold is not None else self.risk_threshold,
            override.risk if override.risk is not None else self.risk,
        )
