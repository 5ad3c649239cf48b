"""The names under which evaluation results of a configuration are cached and reported."""

from __future__ import annotations

from psa_guard.attributes import format_preference
from psa_guard.steering import Steering

__all__ = ["app_label", "config_label"]


def config_label(name: str, steering: Steering | None = None) -> str:
    """The name under which results of ``name`` with ``steering`` are cached and reported.

    Example: ``arm[empathy=1;beta=0.5]`` for ``--alpha empathy=1 --beta 0.5``.
    """
    if steering is None or steering == Steering():
        return name
    parts: list[str] = []
    if steering.preference is not None:
        parts.append(format_preference(steering.preference))
    if steering.beta is not None:
        parts.append(f"beta={steering.beta:g}")
    if steering.risk_threshold is not None:
        parts.append(f"gate={steering.risk_threshold:g}")
    return f"{name}[{';'.join(parts)}]"


def app_label(config: str, policy: str, context: str | None = None) -> str:
    """The name of a guarded application: ``direg+general_assistant`` (``+policy/context`` when
    a context other than the policy's default is evaluated)."""
    return f"{config}+{policy}" + (f"/{context}" if context else "")
