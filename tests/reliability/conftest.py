"""Shared pieces of the reliability suite: an in-process server (FastAPI TestClient on the tiny
model and the scripted scorer), a counter of forward passes, and the OpenAI error-shape check.

Nothing here loads the real model: the tiny random Llama of ``tests/conftest.py`` and
``tests/doubles.ScriptedScorer`` stand in for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from psa_guard.generation import ChatGenerator
from tests.doubles import POLICY, ScriptedScorer

#: A key for every served model, and one for the strict context only (item 6: scopes).
ADMIN_KEY = "sk-reliability-admin-key-0001"
STRICT_KEY = "sk-reliability-strict-only-0002"
#: The token cap of the served general context (``serving.max_tokens``).
SERVED_MAX_TOKENS = 8
#: The served policy: the test policy with a small token cap on both contexts; requests may
#: override the preference of the general context only.
SERVED_POLICY = POLICY.replace(
    "  strict:\n",
    f"    serving: {{max_tokens: {SERVED_MAX_TOKENS}, client_preference: true}}\n  strict:\n",
) + f"    serving: {{max_tokens: {SERVED_MAX_TOKENS}}}\n"
#: The request size cap of the in-process server.
MAX_BODY_BYTES = 20_000


@pytest.fixture(scope="session")
def served_policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reliability-policy") / "test_app.yaml"
    path.write_text(SERVED_POLICY)
    return path


@pytest.fixture(scope="session")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reliability-keys") / "keys.yaml"
    path.write_text(f"keys:\n  - {{key: {ADMIN_KEY}, apps: ['*']}}\n"
                    f"  - {{key: {STRICT_KEY}, apps: [test_app/strict]}}\n")
    return path


def wait_ready(client: Any, timeout: float = 60.0) -> None:
    """Wait until ``/readyz`` says the tiny model and the scorer are loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.02)
    raise RuntimeError(f"the server did not become ready: {client.get('/readyz').json()}")


@pytest.fixture(scope="session")
def make_client(tiny_model_dir: Path, served_policy_file: Path
                ) -> Iterator[Callable[..., Any]]:
    """``make_client(api_keys=None, **limits)``: a started, ready TestClient of ``create_app``
    (closed at the end of the session)."""
    from fastapi.testclient import TestClient

    from psa_guard.serve.app import create_app
    from psa_guard.serve.config import ServeConfig

    opened: list[Any] = []

    def make(api_keys: Path | None = None, scorer: Any = None, **limits: Any) -> Any:
        limits.setdefault("max_body_bytes", MAX_BODY_BYTES)
        config = ServeConfig(policies=(str(served_policy_file),), model=str(tiny_model_dir),
                             api_keys=api_keys, **limits)
        client = TestClient(create_app(config, scorer=scorer or ScriptedScorer()),
                            raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        wait_ready(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def client(make_client: Callable[..., Any]) -> Any:
    """The in-process server without API keys."""
    return make_client()


@pytest.fixture()
def forward_passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts model forward calls (``ChatGenerator._generate_call``) during a test: a bad input
    must be refused before any generation starts."""
    calls: list[int] = []
    original = ChatGenerator._generate_call

    def counted(self: ChatGenerator, input_ids: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(int(input_ids.shape[0]))
        return original(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(ChatGenerator, "_generate_call", counted)
    return calls


def assert_openai_error(response: Any, status: int) -> dict[str, Any]:
    """The response has ``status`` and an OpenAI error body (``{"error": {"message", "type",
    "param", "code"}}``), no stack trace and no completion; returns the ``error`` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body  # no "choices": nothing of a reply was written
    error = body["error"]
    assert isinstance(error.get("message"), str) and error["message"], body
    assert isinstance(error.get("type"), str) and error["type"], body
    assert {"param", "code"} <= set(error), body
    assert "Traceback" not in response.text and 'File "' not in response.text
    return dict(error)


__all__ = ["ADMIN_KEY", "MAX_BODY_BYTES", "SERVED_MAX_TOKENS", "SERVED_POLICY", "STRICT_KEY",
           "ScriptedScorer", "assert_openai_error", "wait_ready"]
