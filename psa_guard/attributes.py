"""The five prosocial attributes of a preference vector, in their one fixed order.

Everything that stores a preference as a tuple (policies, the Pv-Arm reward model, its training data,
evaluation) uses this order, so ``alpha[i]`` always means ``ATTRIBUTES[i]``.
"""

from __future__ import annotations

__all__ = ["ATTRIBUTES", "format_preference", "parse_preference"]

#: The five prosocial attributes, in the fixed order used by preference tuples everywhere.
ATTRIBUTES: tuple[str, ...] = (
    "empathy",
    "sensitivity",
    "non_judgmental",
    "truthfulness",
    "helpfulness",
)


def parse_preference(text: str, label: str = "--alpha") -> tuple[float, ...]:
    """Parse ``"empathy=0.4,helpfulness=0.6"`` into normalised weights in :data:`ATTRIBUTES` order.

    Unnamed attributes get 0; the weights are divided by their sum. ``label`` is what messages call
    the value (the option or field it came from).

    Raises:
        ConfigurationError: unknown attribute, repeated attribute, a weight that is not a
            non-negative number, or all weights zero (the message names the problem and the fix).
    """
    from psa_guard.errors import ConfigurationError

    weights = dict.fromkeys(ATTRIBUTES, 0.0)
    seen: set[str] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in weights:
            raise ConfigurationError(
                f"{label} item {item!r}: expected ATTRIBUTE=WEIGHT with ATTRIBUTE one of "
                f"{', '.join(ATTRIBUTES)} (for example 'empathy=0.4,helpfulness=0.6')"
            )
        if name in seen:
            raise ConfigurationError(f"{label} names {name!r} twice; give each attribute once")
        seen.add(name)
        try:
            weight = float(value)
        except ValueError:
            raise ConfigurationError(f"{label} weight of {name!r} is not a number: {value!r}") from None
        if not weight >= 0 or weight == float("inf"):
            raise ConfigurationError(f"{label} weight of {name!r} must be a finite number >= 0; "
                                     f"got {value!r}")
        weights[name] = weight
    total = sum(weights.values())
    if total <= 0:
        raise ConfigurationError(f"{label} {text!r} has no positive weight; name at least one "
                                 "attribute with a weight > 0")
    return tuple(weights[a] / total for a in ATTRIBUTES)


def format_preference(weights: tuple[float, ...]) -> str:
    """The inverse of :func:`parse_preference` for non-zero weights (``"empathy=0.4,..."``)."""
    return ",".join(f"{a}={w:g}" for a, w in zip(ATTRIBUTES, weights) if w > 0)
