"""Schemathesis against the server's own OpenAPI document (issue 19, item 2), in process.

Every operation of ``/openapi.json`` gets generated requests, schema-conforming (positive) and, for
the one operation with a body, schema-violating (negative). Whatever comes in: no 5xx, and every
error answers in the OpenAI error shape (``{"error": {"message", "type", "param", "code"}}``).
The app is ``create_app`` on the tiny model with the scripted scorer (``conftest.py``); the
examples are derandomised, so every run checks the same cases.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

#: Generated requests per (operation, mode); the doc's figures come from these.
EXAMPLES = {GenerationMode.POSITIVE: 60, GenerationMode.NEGATIVE: 60}
#: The probes answer in their own documented shapes, not the OpenAI error shape.
PROBES = {"/healthz", "/readyz", "/metrics"}


#: The served model ids (a generated ``model`` is replaced by one of these half of the time, so
#: valid requests reach the pipeline instead of all ending in 404).
SERVED = ["test_app", "test_app/strict"]


@pytest.fixture(scope="module")
def api(make_client: Any) -> Any:
    """The schema, loaded from a running in-process app of its own (schemathesis keeps the app's
    lifespan for the rest of the process, so no other test shares it)."""
    return schemathesis.openapi.from_asgi("/openapi.json", make_client().app)


def _operations(api: Any) -> list[Any]:
    return [result.ok() for result in api.get_all_operations()]


def _check(operation: Any, response: Any) -> None:
    assert response.status_code < 500, (operation.label, response.status_code, response.text)
    if response.status_code >= 400 and operation.path not in PROBES:
        body = response.json()
        assert set(body) == {"error"}, body
        error = body["error"]
        assert isinstance(error["message"], str) and error["message"], body
        assert isinstance(error["type"], str) and error["type"], body
        assert {"param", "code"} <= set(error), body
        assert "Traceback" not in response.text


def _run(operation: Any, mode: GenerationMode, statuses: Counter[int]) -> None:
    @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode),
           model=st.sampled_from(SERVED) | st.none())
    def check(case: Any, model: str | None) -> None:
        if model is not None and isinstance(case.body, dict) and "model" in case.body:
            case.body["model"] = model
        response = case.call()
        statuses[response.status_code] += 1
        _check(operation, response)

    check()


def test_every_operation_is_covered(api: Any) -> None:
    labels = sorted(op.label for op in _operations(api))
    assert labels == ["GET /healthz", "GET /metrics", "GET /readyz", "GET /v1/models",
                      "POST /v1/chat/completions"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
def test_chat_completions(api: Any, mode: GenerationMode, forward_passes: list[int]) -> None:
    statuses: Counter[int] = Counter()
    _run(api["/v1/chat/completions"]["POST"], mode, statuses)
    print(f"POST /v1/chat/completions [{mode.value}]: {sum(statuses.values())} cases, "
          f"statuses {dict(sorted(statuses.items()))}, {len(forward_passes)} forward passes")
    assert sum(statuses.values()) >= EXAMPLES[mode] // 2
    if mode is GenerationMode.NEGATIVE:
        assert statuses[400] > 0 and set(statuses) <= {200, 400, 404, 413}
    else:  # valid requests do reach the model (and are not all refused)
        assert statuses[200] > 0 and forward_passes


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/v1/models"])
def test_probes_and_models(api: Any, path: str) -> None:
    statuses: Counter[int] = Counter()
    _run(api[path]["GET"], GenerationMode.POSITIVE, statuses)
    print(f"GET {path}: {sum(statuses.values())} cases, statuses {dict(statuses)}")
    assert set(statuses) == {200}


def test_the_app_serves_after_its_lifespan_restarts(make_client: Any) -> None:
    """Schemathesis starts the app's lifespan again; the first run found every request after that
    answered 500 (the worker pool shut down by the previous lifespan). A restart gets a new one."""
    from fastapi.testclient import TestClient

    app = make_client().app
    body = {"model": "test_app", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    for _ in range(2):  # a second lifespan after the first one ended
        with TestClient(app) as again:
            assert again.post("/v1/chat/completions", json=body).status_code == 200
