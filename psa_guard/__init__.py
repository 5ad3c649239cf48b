"""psa-guard: test-time safety and prosocial alignment for local Hugging Face chat models.

The names users need, in one place. They are imported on first use (PEP 562), so importing a
torch-free part (``psa_guard.policy``, ``psa_guard.steering``) never loads torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_HOMES: dict[str, str] = {
    # the request pipeline and what a request carries
    "RequestPipeline": "psa_guard.pipeline",
    "RequestOptions": "psa_guard.pipeline",
    "GenerationSettings": "psa_guard.generation",
    "Steering": "psa_guard.steering",
    "GuardedReply": "psa_guard.guard",
    # policies
    "Policy": "psa_guard.policy",
    "PolicyGuard": "psa_guard.guard",
    "load_policy": "psa_guard.policy",
    "shipped_policy_names": "psa_guard.policy",
    # configurations and models
    "GuardConfig": "psa_guard.registry",
    "MethodSettings": "psa_guard.registry",
    "config_names": "psa_guard.registry",
    "get_config": "psa_guard.registry",
    "register_config": "psa_guard.registry",
    "build_generator": "psa_guard.registry",
    "ChatGenerator": "psa_guard.generation",
    "Completion": "psa_guard.generation",
    "StreamChunk": "psa_guard.generation",
    "LoadedModel": "psa_guard.loading",
    "load_model": "psa_guard.loading",
    "DEFAULT_MODEL_NAME": "psa_guard.embedded",
    "ensure_default_model": "psa_guard.embedded",
    "ModerationScorer": "psa_guard.moderation.base",
    "normalize_messages": "psa_guard.messages",
    # errors
    "PSAGuardError": "psa_guard.errors",
    "ChecksumError": "psa_guard.errors",
    "ConfigurationError": "psa_guard.errors",
    "DataError": "psa_guard.errors",
    "HarmVectorError": "psa_guard.errors",
    "InputLineError": "psa_guard.errors",
    "InvalidMessagesError": "psa_guard.errors",
    "ModelError": "psa_guard.errors",
    "ModelLoadError": "psa_guard.errors",
    "ModelNotFoundError": "psa_guard.errors",
    "ModerationUnavailableError": "psa_guard.errors",
    "PolicyError": "psa_guard.errors",
    "PromptTooLongError": "psa_guard.errors",
    "SetupError": "psa_guard.errors",
    "UnknownConfigError": "psa_guard.errors",
}

__all__ = sorted([*_HOMES, "__version__"])


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'psa_guard' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__

