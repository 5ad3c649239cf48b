from __future__ import annotations

import langchain_psa_guard
import psa_guard


def test_psa_guard_public_api() -> None:
    assert sorted(psa_guard.__all__) == sorted([
        "ChatGenerator", "ChecksumError", "Completion", "ConfigurationError", "DEFAULT_MODEL_NAME",
        "DataError", "GenerationSettings", "GuardConfig", "HarmVectorError", "InputLineError",
        "InvalidMessagesError", "LoadedModel", "ModelError", "ModelLoadError", "ModelNotFoundError",
        "ModelSource", "ModerationUnavailableError", "PSAGuardError", "PolicyError",
        "PromptTooLongError", "SetupError", "StreamChunk", "UnknownConfigError",
        "__version__", "build_generator", "config_names", "ensure_default_model", "get_config",
        "load_model", "normalize_messages", "register_config",
    ])
    for name in psa_guard.__all__:
        assert hasattr(psa_guard, name), name


def test_langchain_package_public_api() -> None:
    assert sorted(langchain_psa_guard.__all__) == ["ChatPSAGuard", "PSAGuardMiddleware",
                                                  "guard_chat_model"]
