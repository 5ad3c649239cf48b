"""The ``arm`` and ``full`` configurations (registered in :mod:`psa_guard.configs`).

* ``arm``: the unpatched model generates; Pv-Arm re-ranks inside its nucleus.
* ``full``: the DiReg-patched copy generates (the safety stage); Pv-Arm re-ranks inside the patched
  model's nucleus. The reward model's own layers keep the *unpatched* weights it was trained on; the
  shared lower hidden state comes from the generating (patched) model.

Both gate guidance by the prompt's risk: the local moderation scorer (loaded on first use) scores
each last user turn, and above :data:`~psa_guard.arm.generator.DEFAULT_RISK_THRESHOLD` the safety
model alone decides. The reward model is loaded once per host model and adapter file, and shared by
both configurations.
"""

from __future__ import annotations

import threading
from pathlib import Path

from psa_guard.arm.artifacts import SHIPPED_ADAPTER, load_arm
from psa_guard.arm.generator import (
    DEFAULT_BETA,
    DEFAULT_RISK_THRESHOLD,
    UNIFORM_PREFERENCE,
    ArmGenerator,
)
from psa_guard.arm.model import PvArm
from psa_guard.generation import Steering
from psa_guard.loading import LoadedModel
from psa_guard.moderation.base import ModerationScorer
from psa_guard.moderation.local import LazyDefaultScorer

__all__ = ["arm_generator", "build_arm", "build_full", "shared_arm"]

_cache: dict[tuple[int, str], tuple[LoadedModel, PvArm]] = {}
_lock = threading.Lock()


def shared_arm(loaded: LoadedModel, adapter: Path | None = None) -> PvArm:
    """The reward model on ``loaded`` with ``adapter`` (default: shipped), loaded once and cached."""
    from psa_guard.direg.vector import base_checksum

    path = Path(adapter) if adapter is not None else SHIPPED_ADAPTER
    key = (id(loaded.model), str(path.resolve()))
    with _lock:
        if key not in _cache:
            _cache[key] = (loaded, load_arm(loaded.model, path, checksum=base_checksum(loaded)))
        return _cache[key][1]


def arm_generator(loaded: LoadedModel, steering: Steering | None = None, *,
                  direg_lambda: float | None = None, adapter: Path | None = None,
                  top_p: float = 0.9, blocked_terms: tuple[str, ...] = (),
                  risk_scorer: ModerationScorer | None = None,
                  risk_threshold: float | None = None) -> ArmGenerator:
    """A Pv-Arm-guided generator on ``loaded``.

    Args:
        loaded: the (unpatched) model; the reward model is built on it.
        steering: default preference and beta (requests may override them per row).
        direg_lambda: generate with the DiReg-patched copy at this lambda (None or 0: unpatched).
        adapter: the Pv-Arm adapter (default: shipped).
        top_p: nucleus mass of the safe set.
        blocked_terms: the hard constraint's blocked strings.
        risk_scorer: the risk gate's scorer (default: the local moderation scorer, lazily).
        risk_threshold: the gate (default: ``steering.risk_threshold``, else
            :data:`DEFAULT_RISK_THRESHOLD`; 1 switches it off).
    """
    arm = shared_arm(loaded, adapter)
    generating = loaded
    if direg_lambda:
        from psa_guard.direg.config import load_patched

        generating, _ = load_patched(loaded, lam=direg_lambda)
    steering = steering or Steering()
    if risk_threshold is None:
        risk_threshold = steering.risk_threshold
    return ArmGenerator(generating, arm=arm,
                        preference=steering.preference or UNIFORM_PREFERENCE,
                        beta=steering.beta or DEFAULT_BETA, top_p=top_p,
                        blocked_terms=blocked_terms,
                        risk_scorer=risk_scorer if risk_scorer is not None else LazyDefaultScorer(),
                        risk_threshold=DEFAULT_RISK_THRESHOLD if risk_threshold is None
                        else risk_threshold)


def build_arm(loaded: LoadedModel, steering: Steering | None = None) -> ArmGenerator:
    """The ``arm`` configuration."""
    return arm_generator(loaded, steering)


def build_full(loaded: LoadedModel, steering: Steering | None = None) -> ArmGenerator:
    """The ``full`` configuration: DiReg at its default lambda and K, then Pv-Arm."""
    from psa_guard.direg.config import DEFAULT_LAMBDA

    return arm_generator(loaded, steering, direg_lambda=DEFAULT_LAMBDA)
