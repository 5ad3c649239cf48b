from __future__ import annotations

import subprocess
import sys

import pytest

import langchain_psa_guard
import psa_guard


def test_psa_guard_public_api() -> None:
    assert sorted(psa_guard.__all__) == sorted([
        "ChatGenerator", "ChecksumError", "Completion", "ConfigurationError", "DEFAULT_MODEL_NAME",
        "DataError", "GenerationSettings", "GuardConfig", "GuardedReply", "HarmVectorError",
        "InputLineError", "InvalidMessagesError", "LoadedModel", "MethodSettings", "ModelError",
        "ModelLoadError", "ModelNotFoundError", "ModerationScorer", "ModerationUnavailableError",
        "PSAGuardError", "Policy", "PolicyError", "PolicyGuard", "PromptTooLongError",
        "RequestOptions", "RequestPipeline", "SetupError", "Steering", "StreamChunk",
        "UnknownConfigError", "__version__", "build_generator", "config_names",
        "ensure_default_model", "get_config", "load_model", "load_policy", "normalize_messages",
        "register_config", "shipped_policy_names",
    ])
    for name in psa_guard.__all__:
        assert hasattr(psa_guard, name), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        psa_guard.nope  # noqa: B018


def test_torch_free_layers_import_no_torch() -> None:
    # psa_guard.policy (and the steering it builds) must not pull the generation stack in:
    # the top-level package is lazy, so importing them loads no torch.
    code = ("import sys, psa_guard.policy, psa_guard.steering, psa_guard.policy.shipped; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_langchain_package_public_api() -> None:
    assert sorted(langchain_psa_guard.__all__) == ["ChatPSAGuard", "PSAGuardMiddleware",
                                                  "guard_chat_model"]


def test_no_module_is_shadowed_by_a_folder_beside_it() -> None:
    # ``evaluation/artifacts.py`` beside ``evaluation/artifacts/`` (and ``arm/artifacts.py``) made
    # one name mean two things; modules are named for what they hold.
    from pathlib import Path

    roots = [Path(psa_guard.__file__).parent, Path(langchain_psa_guard.__file__).parent]
    clashes = [str(module) for root in roots for module in root.rglob("*.py")
               if (module.parent / module.stem).is_dir()]
    assert clashes == []
