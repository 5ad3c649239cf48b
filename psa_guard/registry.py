"""The registry of guard configurations: the one place that assembles generators.

A configuration (``--config NAME``, ``ChatPSAGuard(config=...)``) turns a loaded model and the
methods' settings (:class:`MethodSettings`) into a :class:`~psa_guard.generation.ChatGenerator`.
The methods are imported here, below the registry, and never import it back: ``base`` (the
unguided model), ``direg`` (DiReg), ``zo`` (embedding optimisation), ``arm`` and ``full`` (Pv-Arm
guidance, ``full`` on the DiReg-patched model). :func:`register_config` adds more (a sweep point,
a user's own method).

Steering is not part of a generator: every request brings its own
(:class:`~psa_guard.steering.Steering`, resolved by the request pipeline).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from psa_guard.arm.checkpoint import SHIPPED_ADAPTER
from psa_guard.arm.config import ArmSettings
from psa_guard.arm.generator import arm_generator
from psa_guard.direg.config import DiRegSettings
from psa_guard.direg.patched import direg_generator, load_patched
from psa_guard.direg.vector import SHIPPED_VECTOR
from psa_guard.errors import UnknownConfigError
from psa_guard.generation import ChatGenerator
from psa_guard.loading import LoadedModel
from psa_guard.moderation.base import ModerationScorer
from psa_guard.moderation.local import ARTIFACTS_DIR, HEAD_NAME, LazyDefaultScorer
from psa_guard.zo.config import ZOSettings
from psa_guard.zo.generator import ZOGenerator

__all__ = [
    "GuardConfig",
    "MethodSettings",
    "build_generator",
    "config_names",
    "get_config",
    "register_config",
]


@dataclass(frozen=True)
class MethodSettings:
    """The settings every method's generator is built with (defaults: the shipped ones).

    Attributes:
        direg: DiReg's vector, lambda and K (``direg``, ``full``).
        arm: Pv-Arm's decoding defaults and adapter (``arm``, ``full``).
        zo: embedding optimisation (``zo``, and the ``repair`` action).
        scorer: the moderation scorer of the risk gate and of ``zo`` (None: the local default,
            loaded on first use). Not part of the fingerprint: a different scorer is a different
            run, named by the caller.
    """

    direg: DiRegSettings = field(default_factory=DiRegSettings)
    arm: ArmSettings = field(default_factory=ArmSettings)
    zo: ZOSettings = field(default_factory=ZOSettings)
    scorer: ModerationScorer | None = field(default=None, compare=False)

    def risk_scorer(self) -> ModerationScorer:
        return self.scorer if self.scorer is not None else LazyDefaultScorer()


@dataclass(frozen=True)
class GuardConfig:
    """A named way of generating.

    Attributes:
        name: the ``--config`` name.
        description: one line for ``psa-guard info`` and error messages.
        build: makes a generator from a loaded model and the settings.
        guided: whether requests are steered by a preference (Pv-Arm).
        uses: which parts of :class:`MethodSettings` change its outputs (``"direg"``, ``"arm"``,
            ``"zo"``); they and their files make up the :meth:`fingerprint`.
    """

    name: str
    description: str
    build: Callable[[LoadedModel, MethodSettings], ChatGenerator]
    guided: bool = False
    uses: tuple[str, ...] = ()

    def artifacts(self, settings: MethodSettings) -> tuple[Path, ...]:
        """The files the configuration's outputs depend on."""
        files: list[Path] = []
        if "direg" in self.uses:
            files.append(settings.direg.vector or SHIPPED_VECTOR)
        if "arm" in self.uses:
            files.append(settings.arm.adapter or SHIPPED_ADAPTER)
        if "arm" in self.uses or "zo" in self.uses:  # the risk gate and zo read the local scorer
            files.append(ARTIFACTS_DIR / f"{HEAD_NAME}.safetensors")
        return tuple(files)

    def fingerprint(self, settings: MethodSettings | None = None) -> str:
        """A short checksum of every file and setting its outputs depend on ('' for none).

        Each file gives 12 hex digits of its sha256 ('missing' when absent); the settings of
        the methods it uses give one more, so changing a default (top_p, max_candidates, beta,
        the risk gate, lambda, K, a ZO hyper-parameter) never reuses cached replies.
        """
        settings = settings or MethodSettings()
        digests = []
        for path in self.artifacts(settings):
            try:
                digests.append(hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12])
            except OSError:
                digests.append("missing")
        text = ";".join(repr(getattr(settings, part)) for part in self.uses)
        if text:
            digests.append(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12])
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


def build_generator(name: str, loaded: LoadedModel, settings: MethodSettings | None = None
                    ) -> ChatGenerator:
    """Build the generator of configuration ``name`` on ``loaded``.

    Raises:
        UnknownConfigError: unknown name.
    """
    return get_config(name).build(loaded, settings or MethodSettings())


def _build_full(loaded: LoadedModel, settings: MethodSettings) -> ChatGenerator:
    direg = settings.direg
    patched, _ = load_patched(loaded, vector_path=direg.vector, lam=direg.lam,
                              k_percent=direg.k_percent)
    return arm_generator(patched, loaded, settings.arm, settings.risk_scorer())


register_config(GuardConfig("base", "the unguided model", lambda loaded, _: ChatGenerator(loaded)))
register_config(GuardConfig(
    "direg", "DiReg: the model minus the shipped harm vector (patched copy)",
    lambda loaded, settings: direg_generator(loaded, settings.direg), uses=("direg",)))
register_config(GuardConfig(
    "zo", "base, with flagged replies repaired by embedding optimisation",
    lambda loaded, settings: ZOGenerator(loaded, scorer=settings.scorer, zo_settings=settings.zo),
    uses=("zo",)))
register_config(GuardConfig(
    "arm", "Pv-Arm guidance on the unpatched model (shipped adapter)",
    lambda loaded, settings: arm_generator(loaded, None, settings.arm, settings.risk_scorer()),
    guided=True, uses=("arm",)))
register_config(GuardConfig(
    "full", "DiReg patch, then Pv-Arm guidance inside its safe set", _build_full, guided=True,
    uses=("direg", "arm")))
