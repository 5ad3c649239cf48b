"""The five prosocial attributes of a preference vector, in their one fixed order.

Everything that stores a preference as a tuple (policies, the Pv-Arm reward model, its training data,
evaluation) uses this order, so ``alpha[i]`` always means ``ATTRIBUTES[i]``.
"""

from __future__ import annotations

__all__ = ["ATTRIBUTES"]

#: The five prosocial attributes, in the fixed order used by preference tuples everywhere.
ATTRIBUTES: tuple[str, ...] = (
    "empathy",
    "sensitivity",
    "non_judgmental",
    "truthfulness",
    "helpfulness",
)
