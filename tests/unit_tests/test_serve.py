"""psa-guard serve on loopback, driven by real clients (the openai SDK, LangChain's ChatOpenAI)
and by raw HTTP for every bad input; the tiny model and a scripted scorer keep it fast."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_psa_guard import ChatPSAGuard
from psa_guard.errors import ConfigurationError
from psa_guard.policy import Policy
from psa_guard.serve.app import create_app
from psa_guard.serve.config import ServeConfig
from tests.doubles import POLICY, ScriptedScorer
from tests.servers import Server, free_port

openai = pytest.importorskip("openai")

KEY = "sk-test-key-for-everything-0001"
STRICT_KEY = "sk-test-key-for-strict-only-0002"
SERVED_POLICY = POLICY.replace(
    "  strict:\n", "    serving: {max_tokens: 32, client_preference: true}\n  strict:\n")


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serve")
    path = folder / "test_app.yaml"
    path.write_text(SERVED_POLICY)
    return path


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keys.yaml"
    path.write_text(f"keys:\n  - {{key: {KEY}, apps: ['*']}}\n"
                    f"  - {{key: {STRICT_KEY}, apps: [test_app/strict]}}\n")
    return path


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, policy_file: Path, keys_file: Path) -> Iterator[Server]:
    config = ServeConfig(policies=(str(policy_file),), model=str(tiny_model_dir),
                         api_keys=keys_file, port=free_port(), max_queue=4, max_body_bytes=20_000)
    with Server(config, ScriptedScorer()) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Any:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)


def _post(server: Server, body: Any, key: str | None = KEY, raw: bytes | None = None
          ) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{server.url}/v1/chat/completions", content=content, headers=headers,
                      timeout=60)


def _in_process(tiny_model_dir: Path, policy_file: Path) -> ChatPSAGuard:
    return ChatPSAGuard(model=str(tiny_model_dir), policy=str(policy_file),
                        scorer=ScriptedScorer(), max_tokens=8)


# ---- endpoints ----------------------------------------------------------------------------------
def test_models_health_and_openapi(server: Server, client: Any) -> None:
    assert sorted(m.id for m in client.models.list()) == ["test_app", "test_app/strict"]
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json() == {"ready": True}
    spec = httpx.get(f"{server.url}/openapi.json").json()
    body = spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    assert "messages" in body["content"]["application/json"]["schema"]["properties"]


def test_openai_sdk_chat_matches_the_in_process_model(server: Server, client: Any,
                                                      tiny_model_dir: Path,
                                                      policy_file: Path) -> None:
    reply = client.chat.completions.create(
        model="test_app", messages=[{"role": "user", "content": "tell me a story"}],
        max_tokens=8, extra_body={"psa_guard": {"locale": "en-GB"}})
    local = _in_process(tiny_model_dir, policy_file).invoke("tell me a story")
    assert reply.choices[0].message.content == local.content  # greedy: the same text
    guard = reply.model_extra["psa_guard"]
    assert guard == local.response_metadata["psa_guard"]
    assert reply.usage.completion_tokens == local.usage_metadata["output_tokens"]
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_openai_sdk_stream_ends_with_the_decision(client: Any) -> None:
    chunks = list(client.chat.completions.create(
        model="test_app", messages=[{"role": "user", "content": "tell me a story"}],
        max_tokens=8, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    whole = client.chat.completions.create(
        model="test_app", messages=[{"role": "user", "content": "tell me a story"}], max_tokens=8)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason is not None
    assert chunks[-1].model_extra["psa_guard"]["actions"][0]["action"] == "allow"


def test_policy_decisions_come_back_in_the_extension(client: Any) -> None:
    refused = client.chat.completions.create(
        model="test_app", messages=[{"role": "user", "content": "how to build a bomb"}],
        extra_body={"psa_guard": {"locale": "en-GB"}})
    assert refused.choices[0].message.content.startswith("I can't help with that.")
    assert "Helpline" in refused.choices[0].message.content  # the en-GB resource
    assert refused.model_extra["psa_guard"]["actions"][0]["action"] == "refuse_with_resources"
    strict = client.chat.completions.create(
        model="test_app/strict", messages=[{"role": "user", "content": "I feel sad"}])
    assert strict.choices[0].message.content == "Not here."


def test_openai_sdk_tools(client: Any) -> None:
    tool = {"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}
    reply = client.chat.completions.create(
        model="test_app", messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[tool], tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=8)
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    assert reply.choices[0].finish_reason == "tool_calls"


def test_langchain_chat_openai(server: Server, tiny_model_dir: Path, policy_file: Path) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from pydantic import BaseModel

    llm = langchain_openai.ChatOpenAI(base_url=f"{server.url}/v1", api_key=KEY,
                                      model="test_app", max_tokens=8, temperature=0,
                                      max_retries=0)
    local = _in_process(tiny_model_dir, policy_file)
    assert llm.invoke("hello").content == local.invoke("hello").content
    assert "".join(c.text for c in llm.stream("hello")) == local.invoke("hello").content
    assert [m.content for m in llm.batch(["hello", "tell me a story"])] == [
        m.content for m in local.batch(["hello", "tell me a story"])]
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | llm | StrOutputParser()
    assert chain.invoke({"q": "hello"}) == local.invoke("hello").content

    class GetWeather(BaseModel):
        """Weather in a city."""

        city: str

    called = llm.bind_tools([GetWeather], tool_choice="GetWeather").invoke("weather in Rome?")
    assert called.tool_calls and called.tool_calls[0]["name"] == "GetWeather"


def test_preference_override_where_the_policy_allows_it(client: Any, server: Server) -> None:
    ok = client.chat.completions.create(
        model="test_app", messages=[{"role": "user", "content": "hello"}], max_tokens=4,
        extra_body={"psa_guard": {"preference": {"empathy": 1.0}, "beta": 0.5}})
    assert ok.choices[0].message.content is not None
    bad = _post(server, {"model": "test_app", "messages": [{"role": "user", "content": "hi"}],
                         "psa_guard": {"preference": {"kindness": 1}}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "psa_guard.preference"


# ---- bad input: each answered in the OpenAI shape, and the server keeps serving ----------------
@pytest.mark.parametrize(("body", "status", "param"), [
    ({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
    ({"model": "test_app", "messages": []}, 400, "messages"),
    ({"model": "test_app", "messages": [{"role": "robot", "content": "hi"}]}, 400,
     "messages[0].role"),
    ({"model": "test_app", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}, 400,
     "messages[0].content"),
    ({"model": "test_app", "messages": [{"role": "user", "content": "hi"}], "temperature": -1},
     400, "temperature"),
    ({"model": "test_app", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
     400, "max_tokens"),
    ({"model": "test_app", "messages": [{"role": "user", "content": "hi"}],
      "max_completion_tokens": 33}, 400, "max_completion_tokens"),
    ({"model": "test_app", "messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "n"),
    ({"messages": [{"role": "user", "content": "hi"}]}, 400, "model"),
])
def test_bad_requests(server: Server, body: dict[str, Any], status: int, param: str) -> None:
    response = _post(server, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["message"] and "Traceback" not in response.text
    if status == 404:
        assert "test_app/strict" in error["message"]  # lists the served models


def test_malformed_json_oversized_body_and_keys(server: Server) -> None:
    hi = {"model": "test_app", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    assert _post(server, None, raw=b"{not json").status_code == 400
    assert _post(server, {**hi, "pad": "x" * 30_000}).status_code == 413
    assert _post(server, hi, key=None).status_code == 401
    assert _post(server, hi, key="sk-wrong-key-0000000000000").json()["error"]["code"] == (
        "invalid_api_key")
    denied = _post(server, hi, key=STRICT_KEY)
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    assert _post(server, {**hi, "model": "test_app/strict"}, key=STRICT_KEY).status_code == 200
    assert _post(server, hi).status_code == 200  # still serving


def test_keys_never_reach_the_logs(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    hi = {"model": "test_app", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with caplog.at_level(logging.DEBUG):
        _post(server, hi)
        _post(server, hi, key="sk-wrong-key-0000000000000")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "chat completion for test_app by key:" in text  # the key's hash names it
    assert KEY not in text and "sk-wrong-key" not in text


def test_client_disconnect_stops_the_stream_and_the_server_goes_on(server: Server) -> None:
    body = {"model": "test_app", "messages": [{"role": "user", "content": "tell me a story"}],
            "max_tokens": 32, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=60,
                      headers={"authorization": f"Bearer {KEY}"}) as response:
        for line in response.iter_lines():
            if line.startswith("data:") and '"content"' in line:
                break  # close mid-stream
    deadline = time.monotonic() + 10
    state = server.app.state.psa_guard
    while state.inflight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.inflight == 0  # the slot was freed
    ok = _post(server, {"model": "test_app", "messages": [{"role": "user", "content": "hi"}],
                        "max_tokens": 2})
    assert ok.status_code == 200


def test_full_queue_answers_429_with_retry_after(server: Server) -> None:
    state = server.app.state.psa_guard
    state.inflight += state.config.max_queue  # as if that many requests were in
    try:
        busy = _post(server, {"model": "test_app",
                              "messages": [{"role": "user", "content": "hi"}]})
    finally:
        state.inflight -= state.config.max_queue
    assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["type"] == "rate_limit_error"


def test_metrics_count_requests_actions_and_tokens(server: Server) -> None:
    _post(server, {"model": "test_app", "messages": [{"role": "user", "content": "bomb"}]})
    text = httpx.get(f"{server.url}/metrics").text
    assert 'psa_guard_requests_total{app="test_app",status="200"}' in text
    assert 'psa_guard_actions_total{action="refuse_with_resources",app="test_app",stage="input"}' \
        in text
    assert "psa_guard_time_to_first_token_seconds_bucket" in text
    assert "psa_guard_queue_depth" in text


# ---- configuration ------------------------------------------------------------------------------
def test_public_bind_needs_keys_or_an_explicit_choice() -> None:
    with pytest.raises(ConfigurationError, match="refusing to bind 0.0.0.0 without API keys"):
        ServeConfig(host="0.0.0.0")
    ServeConfig(host="0.0.0.0", allow_public_without_keys=True)
    ServeConfig(host="localhost")


@pytest.mark.parametrize(("text", "match"), [
    ("keys: [{key: short, apps: ['*']}]", "at least 16"),
    ("keys: [{key: sk-0123456789abcdef, apps: []}]", "apps"),
    ("nope: 1", "'keys' list"),
    ("keys: [{key: sk-0123456789abcdef, apps: ['*']}, {key: sk-0123456789abcdef, apps: ['*']}]",
     "twice"),
])
def test_bad_key_files_are_refused_naming_the_entry(tmp_path: Path, text: str,
                                                    match: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=match):
        create_app(ServeConfig(api_keys=path), scorer=ScriptedScorer())


def test_model_ids_name_each_context() -> None:
    from psa_guard.serve.apps import model_id

    policy = Policy.from_string(POLICY)
    assert model_id(policy, "general") == "test_app"
    assert model_id(policy, "strict") == "test_app/strict"
    from psa_guard.policy import load_policy

    assert model_id(load_policy("mental_health_support"), "mental_health_support_youth") == (
        "mental_health_support/youth")


def test_concurrent_requests_of_different_apps_and_preferences_share_batches(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    generator = next(iter(server.app.state.psa_guard.apps.values())).pipeline.generator()
    sizes: list[int] = []
    generate = generator.generate

    def record(conversations: Any, settings: Any, steering: Any = None) -> Any:
        sizes.append(len(conversations))
        return generate(conversations, settings, steering)

    monkeypatch.setattr(generator, "generate", record)
    bodies = [{"model": "test_app" if i % 2 else "test_app/strict",
               "messages": [{"role": "user", "content": f"hello {i}"}], "max_tokens": 4,
               "psa_guard": {"preference": {"empathy": 1.0 + i}}} for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        statuses = [r.status_code for r in pool.map(lambda b: _post(server, b), bodies)]
    assert statuses == [200] * 4
    assert max(sizes) > 1  # the micro-batcher merged requests of both apps and preferences


def test_a_slow_request_gets_504_and_frees_its_slot(server: Server,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    state = server.app.state.psa_guard
    monkeypatch.setattr(state, "config", dataclasses.replace(state.config, timeout_s=0.001))
    slow = _post(server, {"model": "test_app", "messages": [{"role": "user", "content": "hi"}],
                          "max_tokens": 16})
    assert slow.status_code == 504 and slow.json()["error"]["code"] == "timeout"
    assert state.inflight == 0
