"""Named guard configurations: what ``--config NAME`` means in ``generate`` and ``eval``.

A configuration turns a loaded model into a :class:`~psa_guard.generation.ChatGenerator`. Only
``base`` (the unguided model) exists in the foundation; DiReg (``direg``), Pv-Arm (``arm``, ``full``)
and embedding optimisation (``zo``) register theirs with :func:`register_config` from their own
modules, and :func:`build_generator` is the one place that wires them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psa_guard.errors import UnknownConfigError
from psa_guard.generation import ChatGenerator
from psa_guard.loading import LoadedModel

__all__ = ["GuardConfig", "register_config", "config_names", "get_config", "build_generator"]


@dataclass(frozen=True)
class GuardConfig:
    """A named way of generating.

    Attributes:
        name: the ``--config`` name.
        description: one line for ``psa-guard info`` and error messages.
        build: makes a generator from a loaded model.
    """

    name: str
    description: str
    build: Callable[[LoadedModel], ChatGenerator]


_REGISTRY: dict[str, GuardConfig] = {}


def register_config(config: GuardConfig) -> None:
    """Add (or replace) a configuration."""
    _REGISTRY[config.name] = config


def config_names() -> list[str]:
    """Registered configuration names, sorted."""
    return sorted(_REGISTRY)


def get_config(name: str) -> GuardConfig:
    """Look a configuration up by name.

    Raises:
        UnknownConfigError: the name is not registered; the message lists the valid names.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownConfigError(
            f"unknown configuration {name!r}; valid configurations: {', '.join(config_names())}"
        ) from None


def build_generator(name: str, loaded: LoadedModel) -> ChatGenerator:
    """Build the generator of configuration ``name`` on ``loaded``."""
    return get_config(name).build(loaded)


register_config(GuardConfig("base", "the unguided model", lambda loaded: ChatGenerator(loaded)))


def _build_direg(loaded: LoadedModel) -> ChatGenerator:
    from psa_guard.direg.config import build_direg  # lazy: torch-heavy patching only when used

    return build_direg(loaded)


register_config(GuardConfig("direg", "DiReg: the model minus the shipped harm vector (patched copy)",
                            _build_direg))


def _build_zo(loaded: LoadedModel) -> ChatGenerator:
    from psa_guard.zo.config import build_zo  # lazy: loads the moderation scorer when used

    return build_zo(loaded)


register_config(GuardConfig("zo", "base, with flagged replies repaired by embedding optimisation",
                            _build_zo))
