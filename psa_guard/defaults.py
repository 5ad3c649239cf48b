"""What a user gets without choosing: the default guarded application.

``ChatPSAGuard()``, ``psa-guard chat``, ``generate`` and ``demo`` apply the shipped general policy
(:data:`DEFAULT_POLICY`) with the default guarded configuration (:data:`DEFAULT_CONFIG`). The raw
model is one argument away: ``ChatPSAGuard(raw=True)`` or ``--raw`` (configuration
:data:`RAW_CONFIG`, no policy). Torch-free; the front ends read these names, the request pipeline
resolves ``config=None`` to :data:`DEFAULT_CONFIG` (falling back to :data:`RAW_CONFIG` on a model
that no shipped harm vector fits, with a warning).
"""

from __future__ import annotations

__all__ = ["DEFAULT_CONFIG", "DEFAULT_POLICY", "RAW_CONFIG", "raw_conflict"]

#: The shipped policy applied when none is chosen.
DEFAULT_POLICY = "general_assistant"
#: The configuration of the default guarded application: DiReg costs nothing per token, so the
#: default app stays within the cost goal (docs/results.md, "The guarded app").
DEFAULT_CONFIG = "direg"
#: The raw model: no patch, no guidance.
RAW_CONFIG = "base"


def raw_conflict(config: str | None, policy: object, *, policy_given: bool) -> str | None:
    """Why ``raw`` cannot be combined with the other arguments (None: it can).

    Args:
        config: the configuration the caller chose (None: not chosen).
        policy: the policy the caller chose.
        policy_given: whether the caller set the policy at all (None is a choice too).
    """
    if config is not None and config != RAW_CONFIG:
        return f"raw=True means config={RAW_CONFIG!r}; drop config={config!r} or raw"
    if policy_given and policy is not None:
        return f"raw=True means no policy; drop policy={policy!r} or raw"
    return None
