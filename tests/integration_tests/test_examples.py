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


def test_serve_client_against_a_running_server() -> None:
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from psa_guard.serve.app import create_app
    from psa_guard.serve.config import ServeConfig

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(ServeConfig(policies=("mental_health_support", "customer_service"),
                                 port=port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        result = _load("serve_client").main(f"http://127.0.0.1:{port}/v1", max_tokens=16)
    finally:
        server.should_exit = True
        thread.join(10)
    assert "mental_health_support/youth" in result["models"]
    assert result["reply"] and result["langchain"]
