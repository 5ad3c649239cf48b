"""psa-guard: test-time safety and prosocial alignment for local Hugging Face chat models."""

from __future__ import annotations

from psa_guard.configs import (
    GuardConfig,
    build_generator,
    config_names,
    get_config,
    register_config,
)
from psa_guard.embedded import DEFAULT_MODEL_NAME, ensure_default_model
from psa_guard.errors import (
    ChecksumError,
    ConfigurationError,
    DataError,
    HarmVectorError,
    InputLineError,
    InvalidMessagesError,
    ModelError,
    ModelLoadError,
    ModelNotFoundError,
    ModerationUnavailableError,
    PolicyError,
    PromptTooLongError,
    PSAGuardError,
    SetupError,
    UnknownConfigError,
)
from psa_guard.generation import ChatGenerator, Completion, GenerationSettings, StreamChunk
from psa_guard.loading import LoadedModel, ModelSource, load_model
from psa_guard.messages import normalize_messages

__version__ = "0.1.0"

__all__ = [
    "ChatGenerator",
    "ChecksumError",
    "Completion",
    "ConfigurationError",
    "DEFAULT_MODEL_NAME",
    "DataError",
    "GenerationSettings",
    "GuardConfig",
    "HarmVectorError",
    "InputLineError",
    "InvalidMessagesError",
    "LoadedModel",
    "ModelError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelSource",
    "ModerationUnavailableError",
    "PSAGuardError",
    "PolicyError",
    "PromptTooLongError",
    "SetupError",
    "StreamChunk",
    "UnknownConfigError",
    "__version__",
    "build_generator",
    "config_names",
    "ensure_default_model",
    "get_config",
    "load_model",
    "normalize_messages",
    "register_config",
]
