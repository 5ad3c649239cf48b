"""Named guard configurations: what ``--config NAME`` means in ``generate`` and ``eval``.

A configuration turns a loaded model into a :class:`~psa_guard.generation.ChatGenerator`. Only
``base`` (the unguided model) exists in the foundation; DiReg (``direg``), Pv-Arm (``arm``, ``full``)
and embedding optimisation (``zo``) register theirs with :func:`register_config` from their own
modules, and :func:`build_generator` is the one place that wires them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psa_guard.attributes import format_preference
from psa_guard.errors import ConfigurationError, UnknownConfigError
from psa_guard.generation import ChatGenerator, Steering
from psa_guard.loading import LoadedModel

__all__ = ["GuardConfig", "register_config", "config_names", "get_config", "build_generator",
           "check_steering", "config_label"]


@dataclass(frozen=True)
class GuardConfig:
    """A named way of generating.

    Attributes:
        name: the ``--config`` name.
        description: one line for ``psa-guard info`` and error messages.
        build: makes a generator from a loaded model (guided configurations also accept
            ``steering=``, their default preference and beta).
        guided: whether the configuration takes a preference (``--alpha``) and ``--beta``.
        artifacts: the files the configuration's behaviour depends on (harm vector, adapter);
            their checksums are part of the evaluation cache key, so retraining one never reuses
            stale replies.
        settings: built-in settings the behaviour depends on besides the files (for example the
            risk gate's threshold); part of the fingerprint too.
    """

    name: str
    description: str
    build: Callable[..., ChatGenerator]
    guided: bool = False
    artifacts: Callable[[], tuple[Path, ...]] = field(default=lambda: ())
    settings: Callable[[], str] = field(default=lambda: "")

    def fingerprint(self) -> str:
        """A short checksum of :attr:`artifacts` and :attr:`settings` ('' when there are none;
        'missing' per absent file)."""
        digests = []
        for path in self.artifacts():
            try:
                digests.append(hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12])
            except OSError:
                digests.append("missing")
        settings = self.settings()
        if settings:
            digests.append(hashlib.sha256(settings.encode("utf-8")).hexdigest()[:12])
        return "+".join(digests)


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


def build_generator(name: str, loaded: LoadedModel, steering: Steering | None = None
                    ) -> ChatGenerator:
    """Build the generator of configuration ``name`` on ``loaded``.

    Args:
        name: a registered configuration.
        loaded: the model.
        steering: default preference and beta of a guided configuration.

    Raises:
        UnknownConfigError: unknown name.
        ConfigurationError: ``steering`` given to a configuration that is not guided.
    """
    config = get_config(name)
    check_steering(name, steering)
    if steering is None or steering == Steering():
        return config.build(loaded)
    return config.build(loaded, steering=steering)


def check_steering(name: str, steering: Steering | None) -> None:
    """Refuse ``steering`` for a configuration that is not guided (before anything is loaded).

    Raises:
        UnknownConfigError: unknown name.
        ConfigurationError: ``steering`` given to an unguided configuration.
    """
    config = get_config(name)
    if steering is None or steering == Steering() or config.guided:
        return
    guided = ", ".join(n for n in config_names() if _REGISTRY[n].guided)
    raise ConfigurationError(
        f"--alpha/--beta/--risk-threshold steer Pv-Arm guidance, which configuration {name!r} "
        f"does not use; choose a guided configuration ({guided})"
    )


def config_label(name: str, steering: Steering | None = None) -> str:
    """The name under which results of ``name`` with ``steering`` are cached and reported."""
    if steering is None or steering == Steering():
        return name
    parts: list[Any] = []
    if steering.preference is not None:
        parts.append(format_preference(steering.preference))
    if steering.beta is not None:
        parts.append(f"beta={steering.beta:g}")
    if steering.risk_threshold is not None:
        parts.append(f"gate={steering.risk_threshold:g}")
    return f"{name}[{';'.join(parts)}]"


register_config(GuardConfig("base", "the unguided model", lambda loaded: ChatGenerator(loaded)))


def _build_direg(loaded: LoadedModel) -> ChatGenerator:
    from psa_guard.direg.config import build_direg  # lazy: torch-heavy patching only when used

    return build_direg(loaded)


def _vector() -> tuple[Path, ...]:
    from psa_guard.direg.vector import SHIPPED_VECTOR

    return (SHIPPED_VECTOR,)


def _moderation_head() -> tuple[Path, ...]:
    """The local moderation head: what ``zo`` optimises against and the Pv-Arm risk gate reads."""
    from psa_guard.moderation.local import ARTIFACTS_DIR, HEAD_NAME

    return (ARTIFACTS_DIR / f"{HEAD_NAME}.safetensors",)


def _adapter() -> tuple[Path, ...]:
    """The Pv-Arm adapter and the moderation head its risk gate scores prompts with."""
    from psa_guard.arm.artifacts import SHIPPED_ADAPTER

    return (SHIPPED_ADAPTER, *_moderation_head())


def _gate() -> str:
    from psa_guard.arm.generator import DEFAULT_RISK_THRESHOLD

    return f"risk_threshold={DEFAULT_RISK_THRESHOLD}"


register_config(GuardConfig("direg", "DiReg: the model minus the shipped harm vector (patched copy)",
                            _build_direg, artifacts=_vector))


def _build_zo(loaded: LoadedModel) -> ChatGenerator:
    from psa_guard.zo.config import build_zo  # lazy: loads the moderation scorer when used

    return build_zo(loaded)


def _zo_settings() -> str:
    """The ``zo`` configuration's optimiser settings (its defaults), for the fingerprint."""
    from psa_guard.zo.optimizer import ZOSettings

    return repr(ZOSettings())


register_config(GuardConfig("zo", "base, with flagged replies repaired by embedding optimisation",
                            _build_zo, artifacts=_moderation_head, settings=_zo_settings))


def _build_arm(loaded: LoadedModel, steering: Steering | None = None) -> ChatGenerator:
    from psa_guard.arm.config import build_arm  # lazy: loads the adapter when used

    return build_arm(loaded, steering)


def _build_full(loaded: LoadedModel, steering: Steering | None = None) -> ChatGenerator:
    from psa_guard.arm.config import build_full  # lazy: patching and the adapter when used

    return build_full(loaded, steering)


register_config(GuardConfig("arm", "Pv-Arm guidance on the unpatched model (shipped adapter)",
                            _build_arm, guided=True, artifacts=_adapter, settings=_gate))
register_config(GuardConfig("full", "DiReg patch, then Pv-Arm guidance inside its safe set",
                            _build_full, guided=True, artifacts=lambda: (*_vector(), *_adapter()),
                            settings=_gate))
