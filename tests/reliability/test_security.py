"""Security (issue 19, item 6): API keys scoped per application and absent from every log line; no
pickle (safetensors weights, no ``trust_remote_code``, no unrestricted ``torch.load``); YAML loaded
safely; no path in a policy or a request escapes its root; the request size and ``max_tokens``
caps hold.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from psa_guard.cli import main
from psa_guard.errors import ConfigurationError, ModelLoadError, PolicyError
from psa_guard.policy import Policy, load_policy, policy_json_schema
from psa_guard.serve.keys import load_keys
from tests.doubles import POLICY
from tests.reliability.conftest import (
    ADMIN_KEY,
    MAX_BODY_BYTES,
    SERVED_MAX_TOKENS,
    STRICT_KEY,
    assert_openai_error,
)

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("psa_guard", "integrations", "scripts", "benchmarks")
HI = [{"role": "user", "content": "hi"}]


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keyed(make_client: Any, keys_file: Path) -> Any:
    """The in-process server with API keys: ADMIN_KEY for all, STRICT_KEY for test_app/strict."""
    return make_client(api_keys=keys_file)


# =================================================================================================
# API keys: scoped per application, never logged
# =================================================================================================
@pytest.mark.parametrize(("headers", "model", "status", "code"), [
    ({}, "test_app", 401, "missing_api_key"),
    ({"authorization": "Basic " + ADMIN_KEY}, "test_app", 401, "missing_api_key"),
    (_bearer(ADMIN_KEY + "x"), "test_app", 401, "invalid_api_key"),
    (_bearer(STRICT_KEY), "test_app", 403, "model_not_allowed"),
    (_bearer(STRICT_KEY), "nope", 403, "model_not_allowed"),  # no probing of model names
], ids=["no-key", "not-bearer", "wrong-key", "other-app", "other-unknown"])
def test_a_key_opens_only_its_own_apps(keyed: Any, headers: dict[str, str], model: str,
                                       status: int, code: str, forward_passes: list[int]) -> None:
    for stream in (False, True):
        response = keyed.post("/v1/chat/completions", headers=headers, json={
            "model": model, "messages": HI, "max_tokens": 2, "stream": stream})
        error = assert_openai_error(response, status)
        assert error["code"] == code
        assert ADMIN_KEY not in response.text and STRICT_KEY not in response.text
    assert forward_passes == []


def test_scoped_keys_reach_their_apps_and_see_only_them(keyed: Any) -> None:
    body = {"messages": HI, "max_tokens": 2}
    assert keyed.post("/v1/chat/completions", headers=_bearer(STRICT_KEY),
                      json={**body, "model": "test_app/strict"}).status_code == 200
    for model in ("test_app", "test_app/strict"):
        assert keyed.post("/v1/chat/completions", headers=_bearer(ADMIN_KEY),
                          json={**body, "model": model}).status_code == 200
    assert keyed.get("/v1/models").status_code == 401
    listed = {m["id"] for m in keyed.get("/v1/models", headers=_bearer(STRICT_KEY)).json()["data"]}
    assert listed == {"test_app/strict"}  # a scoped key does not learn the other apps
    every = {m["id"] for m in keyed.get("/v1/models", headers=_bearer(ADMIN_KEY)).json()["data"]}
    assert every == {"test_app", "test_app/strict"}


def _all_log_text(records: list[logging.LogRecord]) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in records)  # with tracebacks


def test_keys_are_absent_from_every_log_line(keyed: Any, caplog: pytest.LogCaptureFixture) -> None:
    near_miss = ADMIN_KEY[:-1] + "9"
    with caplog.at_level(logging.DEBUG):
        for key in (ADMIN_KEY, STRICT_KEY, near_miss):
            for body in ({"model": "test_app", "messages": HI, "max_tokens": 2},
                         {"model": "test_app", "messages": HI, "max_tokens": 2, "stream": True},
                         {"model": "nope", "messages": HI},
                         {"model": "test_app", "messages": [{"role": "robot", "content": key}]}):
                keyed.post("/v1/chat/completions", headers=_bearer(key), json=body)
            keyed.post("/v1/chat/completions", headers=_bearer(key), content=b"{not json")
            keyed.get("/v1/models", headers=_bearer(key))
    text = _all_log_text(caplog.records)
    assert "chat completion for test_app by key:" in text  # requests are logged, by key hash
    for key in (ADMIN_KEY, STRICT_KEY, near_miss):
        assert key not in text


def test_a_broken_key_file_never_shows_a_key(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    secret = "sk-very-secret-key-do-not-print-0003"
    windows = {secret[i:i + 10] for i in range(len(secret) - 9)}  # no 10 characters of it
    path = tmp_path / "keys.yaml"
    for text in (f'keys:\n  - key: "{secret}\n',  # an unclosed quote
                 f"keys:\n  - {{key: {secret}, apps: [test_app]]}}\n"):  # a stray bracket
        path.write_text(text)
        with pytest.raises(ConfigurationError) as info:
            load_keys(path)
        assert str(path) in str(info.value) and "line 2" in str(info.value)
        assert not any(w in str(info.value) for w in windows)
        assert info.value.__cause__ is None and info.value.__context__ is not None  # not chained
        assert main(["serve", "--api-keys", str(path), "--policy", "general_assistant"]) == 1
        captured = capsys.readouterr()
        assert "not valid YAML" in captured.err
        assert not any(w in captured.err + captured.out for w in windows)


def test_the_moderation_key_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    from psa_guard.errors import ModerationUnavailableError
    from psa_guard.moderation.http import HTTPModerationScorer

    secret = "sk-moderation-secret-0004"

    def echo(request: httpx.Request) -> httpx.Response:  # like a provider that echoes the key
        sent = request.headers["authorization"].split(" ", 1)[1]
        status = 401 if request.url.path.endswith("401") else 500
        return httpx.Response(status, json={"error": {"message": f"Incorrect key {sent}"}})

    with caplog.at_level(logging.DEBUG):
        for path in ("/v1/moderations/401", "/v1/moderations/500"):
            scorer = HTTPModerationScorer(f"http://moderation.test{path}", api_key=secret,
                                          max_attempts=2, backoff_initial=0.001,
                                          backoff_max=0.002, jitter=0.0)
            scorer._client = httpx.Client(transport=httpx.MockTransport(echo))  # noqa: SLF001
            with pytest.raises(ModerationUnavailableError) as info:
                scorer.score(["hello"])
            assert secret not in str(info.value) and secret not in info.value.reason
            assert secret not in repr(scorer)
    assert secret not in _all_log_text(caplog.records)


# =================================================================================================
# No pickle: safetensors weights, no trust_remote_code, no unrestricted torch.load, safe YAML
# =================================================================================================
def _python_files() -> Iterator[Path]:
    for folder in SCANNED:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_constant(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve",
                  "marshal"}


def _findings(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]
            found += [f"imports {n}" for n in names if n.split(".")[0] in PICKLE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        line = f"line {node.lineno}: {name}"
        remote = _keyword(node, "trust_remote_code")
        if remote is not None and not _is_constant(remote, False):
            found.append(f"{line}(trust_remote_code=...)")
        if name.endswith("torch.load") and not _is_constant(_keyword(node, "weights_only"), True):
            found.append(f"{line} without weights_only=True")
        if name.split(".")[-1] in ("read_pickle", "to_pickle", "unsafe_load", "full_load"):
            found.append(line)
        if name.endswith("np.load") or name.endswith("numpy.load"):
            if not _is_constant(_keyword(node, "allow_pickle"), None) and \
                    _keyword(node, "allow_pickle") is not None:
                found.append(f"{line}(allow_pickle=...)")
        if name.endswith("yaml.load") or name.endswith("yaml.load_all"):
            loader = _dotted(_keyword(node, "Loader") or ast.Name(""))
            if not loader.endswith(("SafeLoader", "CSafeLoader")):
                found.append(f"{line} without a safe Loader")
        if name.endswith("from_pretrained") and _is_constant(_keyword(node, "use_safetensors"),
                                                            False):
            found.append(f"{line}(use_safetensors=False)")
        if name.endswith("save_pretrained") and _is_constant(
                _keyword(node, "safe_serialization"), False):
            found.append(f"{line}(safe_serialization=False)")
    return found


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scanner itself: each forbidden pattern is caught, each safe form passes."""
    bad = ("import pickle\nimport joblib\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
           "M.from_pretrained(p, trust_remote_code=True)\nyaml.load(t)\n"
           "yaml.load(t, Loader=yaml.Loader)\nnp.load(p, allow_pickle=True)\npd.read_pickle(p)\n"
           "M.from_pretrained(p, use_safetensors=False)\n"
           "m.save_pretrained(p, safe_serialization=False)\nyaml.unsafe_load(t)\n")
    assert len(_findings(ast.parse(bad))) == 12
    good = ("torch.load(p, weights_only=True)\nyaml.safe_load(t)\n"
            "yaml.load(t, Loader=yaml.SafeLoader)\nnp.load(p)\n"
            "M.from_pretrained(p, trust_remote_code=False, use_safetensors=True)\n")
    assert _findings(ast.parse(good)) == []


#: Files with a known finding whose fix belongs to another change; strict, so the marker must go
#: when the file is fixed.
KNOWN: dict[str, str] = {}


def _scanned() -> list[Any]:
    files = [str(p.relative_to(ROOT)) for p in _python_files()]
    return [pytest.param(f, marks=pytest.mark.xfail(strict=True, reason=KNOWN[f]))
            if f in KNOWN else f for f in files]


def test_the_scan_sees_the_code() -> None:
    assert len(_scanned()) > 50


@pytest.mark.parametrize("relative", _scanned())
def test_no_pickle_and_no_remote_code_anywhere(relative: str) -> None:
    path = ROOT / relative
    assert _findings(ast.parse(path.read_text(encoding="utf-8"), str(path))) == []


def test_model_loaders_ask_for_safetensors() -> None:
    """Every model ``from_pretrained`` in the runtime refuses pickled weights (GGUF aside)."""
    for relative in ("psa_guard/loading.py", "psa_guard/core/embedder.py"):
        tree = ast.parse((ROOT / relative).read_text(encoding="utf-8"))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and _dotted(n.func).endswith("Model.from_pretrained")
                 or isinstance(n, ast.Call) and _dotted(n.func).endswith("CausalLM.from_pretrained")]
        assert calls, relative
        for call in calls:
            assert _is_constant(_keyword(call, "use_safetensors"), True) or any(
                k.arg is None for k in call.keywords), (relative, call.lineno)


def test_shipped_files_hold_no_pickle() -> None:
    suffixes = {".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".npy", ".npz"}
    shipped = [p for folder in ("psa_guard", "integrations", "policies")
               for p in (ROOT / folder).rglob("*") if p.suffix in suffixes]
    assert shipped == []
    weights = [p for p in (ROOT / "psa_guard").rglob("artifacts/*") if p.suffix == ".safetensors"]
    assert weights  # the shipped weights are there, as safetensors


def test_a_pickled_checkpoint_is_refused_and_never_run(tmp_path: Path,
                                                       tiny_model_dir: Path) -> None:
    """A model folder whose weights are a pickle (pytorch_model.bin) is refused; the payload in it
    never runs."""
    import shutil

    import torch

    from psa_guard.loading import load_model

    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self) -> Any:
            return (os.system, (f"touch {marker}",))

    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in os.listdir(tiny_model_dir):
        if not name.endswith(".safetensors"):
            shutil.copy(tiny_model_dir / name, folder / name)
    torch.save({"payload": Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError) as info:
        load_model(folder)
    assert "safetensors only" in str(info.value) and "pytorch_model.bin" in str(info.value)
    assert not marker.exists()
    # a plain pickled state dict is refused as well: the loader never unpickles weights
    from safetensors.torch import load_file

    state = load_file(tiny_model_dir / "model.safetensors")
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="safetensors only"):
        load_model(folder)


# ---- YAML ---------------------------------------------------------------------------------------
TAGS = ["!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/name:os.system", "!!python/module:os"]


@pytest.mark.parametrize("tag", TAGS, ids=["apply", "new", "name", "module"])
def test_yaml_python_tags_are_refused(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "payload-ran"
    value = tag.format(marker=marker)
    policy = tmp_path / "evil.yaml"
    policy.write_text(POLICY.replace("    messages:\n      steer:",
                                     f"    description: {value}\n    messages:\n      steer:", 1))
    with pytest.raises(PolicyError) as info:
        Policy.from_path(policy)
    assert "unsupported YAML tag" in str(info.value) and "evil.yaml:" in str(info.value)
    keys = tmp_path / "keys.yaml"
    keys.write_text(f"keys:\n  - {{key: sk-0123456789abcdef0, apps: {value}}}\n")
    with pytest.raises(ConfigurationError):
        load_keys(keys)
    assert not marker.exists()


# ---- paths ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("extra", "fragment"), [
    ("    extends: ../../../etc/passwd\n", "is not a valid name"),
    ("    extends: /etc/passwd\n", "is not a valid name"),
    ("    artifacts: {harm_vector: ../../../etc/passwd.safetensors}\n", "no longer a policy key"),
    ("    artifacts: {adapter: /root/.ssh/id_rsa}\n", "no longer a policy key"),
], ids=["extends-relative", "extends-absolute", "artifacts-relative", "artifacts-absolute"])
def test_policy_paths_cannot_escape(extra: str, fragment: str) -> None:
    text = POLICY.replace("  strict:\n    extends: general\n", "  strict:\n" + extra, 1)
    with pytest.raises(PolicyError) as info:
        Policy.from_string(text, "escape.yaml")
    assert fragment in str(info.value)


def test_no_policy_field_is_ever_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every text field of a policy set to a path: loading, routing, deciding and rendering open
    no file, and the schema has no field that names a file."""
    path = "../../../../etc/passwd"
    text = POLICY.replace("Be extra careful.", path).replace("Call 123", path).replace(
        "Helpline", path) + (f"    description: {path}\n"
                             f"    hard_constraint: {{blocked_terms: [{path}]}}\n")
    opened: list[str] = []
    real_open = open

    def watch(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watch)
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: watch(str(self), *a, **k))
    policy = Policy.from_string(text)
    for name in policy.context_names:
        context = policy.resolve(name)
        for score in (0.0, 0.35, 0.7, 1.0):
            context.decide(score, locale="en-GB").render()
        context.unavailable("down").render()
        context.steering()
    monkeypatch.undo()
    assert opened == []

    def names(schema: Any) -> Iterator[str]:
        if isinstance(schema, dict):
            for key, value in schema.items():
                if key == "properties" and isinstance(value, dict):
                    yield from value
                yield from names(value)
        elif isinstance(schema, list):
            for value in schema:
                yield from names(value)

    words = {word for field in names(policy_json_schema()) for word in field.split("_")}
    assert len(words) > 20  # the walk sees the schema's fields
    assert not words & {"path", "file", "folder", "dir", "artifacts", "vector", "adapter",
                        "model", "weights"}


@pytest.mark.parametrize("name", ["..", "../policies/general_assistant", "general_assistant/..",
                                  "/etc/passwd"])
def test_policy_names_do_not_reach_outside(name: str) -> None:
    """A name is a shipped policy or an existing file the caller chose; never a lookup that climbs
    out of the shipped folder."""
    with pytest.raises(PolicyError) as info:
        load_policy(name)
    message = str(info.value)
    assert "unknown policy" in message or "policy file not found" in message or (
        "invalid policy" in message)


@pytest.mark.parametrize("body", [
    {"model": "/etc/passwd", "messages": HI},
    {"model": "../../policies/general_assistant", "messages": HI},
    {"model": "test_app", "messages": HI, "psa_guard": {"model": "/tmp/x"}},
    {"model": "test_app", "messages": HI, "psa_guard": {"policy": "/tmp/evil.yaml"}},
    {"model": "test_app", "messages": HI, "psa_guard": {"context": "../strict"}},
], ids=["model-absolute", "model-relative", "ext-model", "ext-policy", "ext-context"])
def test_a_request_cannot_name_a_file(client: Any, body: dict[str, Any],
                                      forward_passes: list[int]) -> None:
    response = client.post("/v1/chat/completions", json=body)
    error = assert_openai_error(response, 404 if body["model"] != "test_app" else 400)
    assert error["param"] in ("model", "psa_guard.model", "psa_guard.policy", "psa_guard.context")
    assert forward_passes == []


# =================================================================================================
# Request size and max_tokens caps
# =================================================================================================
def test_the_body_cap_holds_with_a_declared_length(client: Any) -> None:
    big = json.dumps({"model": "test_app", "messages": HI, "pad": "x" * MAX_BODY_BYTES}).encode()
    assert_openai_error(client.post("/v1/chat/completions", content=big), 413)
    lying = client.post("/v1/chat/completions", content=big,
                        headers={"content-length": "10"})
    assert lying.status_code in (400, 413)  # a wrong length never lets the body through whole


def test_the_body_cap_holds_without_a_length_and_stops_reading(client: Any) -> None:
    """A chunked body with no Content-Length: 413 once the cap is passed, without reading the rest
    (the server never buffers more than the cap)."""
    chunk, total = b"x" * 1024, 10_000  # 10 MB offered, 20 kB allowed
    sent = 0
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        sent += 1
        return {"type": "http.request", "body": chunk, "more_body": sent < total}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/chat/completions",
             "raw_path": b"/v1/chat/completions", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"host", b"test")],
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    asyncio.run(client.app(scope, receive, send))
    start = next(m for m in messages if m["type"] == "http.response.start")
    assert start["status"] == 413
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    assert json.loads(body)["error"]["message"].startswith("the request body is larger than")
    assert sent * len(chunk) <= MAX_BODY_BYTES + 2 * len(chunk)


def _tokens(response: Any) -> int:
    if response.headers["content-type"].startswith("text/event-stream"):
        events = [line[5:].strip() for line in response.text.splitlines()
                  if line.startswith("data:")]
        final = json.loads(events[-2])  # the last chunk before [DONE]
        return int(final["usage"]["completion_tokens"])
    return int(response.json()["usage"]["completion_tokens"])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_the_max_tokens_cap_holds(client: Any, stream: bool) -> None:
    long = [{"role": "user", "content": "tell me a very long story"}]
    for fields in ({}, {"max_tokens": SERVED_MAX_TOKENS},
                   {"max_completion_tokens": SERVED_MAX_TOKENS}):
        response = client.post("/v1/chat/completions", json={
            "model": "test_app", "messages": long, "stream": stream, **fields})
        assert response.status_code == 200, response.text
        assert 0 < _tokens(response) <= SERVED_MAX_TOKENS
    for fields in ({"max_tokens": SERVED_MAX_TOKENS + 1},
                   {"max_completion_tokens": SERVED_MAX_TOKENS + 1, "max_tokens": 1},
                   {"max_tokens": 10**9}):
        refused = client.post("/v1/chat/completions", json={
            "model": "test_app", "messages": long, "stream": stream, **fields})
        assert_openai_error(refused, 400)
