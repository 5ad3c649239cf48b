"""The ``arm`` and ``full`` configurations (registered in :mod:`psa_guard.configs`).

* ``arm``: the unpatched model generates; Pv-Arm re-ranks inside its nucleus.
* ``full``: the DiReg-patched copy generates (the safety stage); Pv-Arm re-ranks inside the patched
  model's nucleus. The reward model's own layers keep the *unpatched* weights it was trained on; the
  shared lower hidden state comes from the generating (patched) model.

The reward model is loaded once per host model and adapter file, and shared by both configurations.
"""

from __future__ import annotations

import threading
from pathlib import Path

from psa_guard.arm.artifacts import SHIPPED_ADAPTER, load_arm
from psa_guard.arm.generator import DEFAULT_BETA, UNIFORM_PREFERENCE, ArmGenerator
from psa_guard.arm.model import PvArm
from psa_guard.generation import Steering
from psa_guard.loading import LoadedModel

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
                  top_p: float = 0.9, blocked_terms: tuple[str, ...] = ()) -> ArmGenerator:
    """A Pv-Arm-guided generator on ``loaded``.

    Args:
        loaded: the (unpatched) model; the reward model is built on it.
        steering: default preference and beta (requests may override them per row).
        direg_lambda: generate with the DiReg-patched copy at this lambda (None or 0: unpatched).
        adapter: the Pv-Arm adapter (default: shipped).
        top_p: nucleus mass of the safe set.
        blocked_terms: the hard constraint's blocked strings.
    """
    arm = shared_arm(loaded, adapter)
    generating = loaded
    if direg_lambda:
        from psa_guard.direg.config import load_patched

        generating, _ = load_patched(loaded, lam=direg_lambda)
    steering = steering or Steering()
    return ArmGenerator(generating, arm=arm,
                        preference=steering.preference or UNIFORM_PREFERENCE,
                        beta=steering.beta or DEFAULT_BETA, top_p=top_p,
                        blocked_terms=blocked_terms)


def build_arm(loaded: LoadedModel, steering: Steering | None = None) -> ArmGenerator:
    """The ``arm`` configuration."""
    return arm_generator(loaded, steering)


def build_full(loaded: LoadedModel, steering: Steering | None = None) -> ArmGenerator:
    """The ``full`` configuration: DiReg at its default lambda and K, then Pv-Arm."""
    from psa_guard.direg.config import DEFAULT_LAMBDA

    return arm_generator(loaded, steering, direg_lambda=DEFAULT_LAMBDA)
