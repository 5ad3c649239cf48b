"""Every example runs offline on the embedded default model (short replies to stay fast)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.real_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the example look their module up here
    spec.loader.exec_module(module)
    return module


def test_agent_with_guard() -> None:
    answers = _load("agent_with_guard").main(max_tokens=16)
    assert len(answers) == 2 and all(answers)
    assert "pipe bomb" not in answers[1].lower() or "can't" in answers[1].lower()


def test_two_apps_differ() -> None:
    replies = _load("two_apps").main(max_tokens=16)
    assert set(replies) == {"mental_health_support", "customer_service"}
    assert replies["mental_health_support"] != replies["customer_service"]


def test_chain() -> None:
    answers = _load("chain").main(max_tokens=16)
    assert len(answers) == 2 and all(isinstance(a, str) and a for a in answers)


def test_streaming() -> None:
    pieces = _load("streaming").main(max_tokens=16)
    assert len(pieces) >= 2 and "".join(pieces)
