"""Faults (issue 19, item 5), each acted out against the running server or the real writers.

* the moderation scorer down, slow, returning NaN, returning no score for a category the context
  reads, or failing at the output check: the request fails closed with the *context's*
  ``on_unavailable`` action and the reason in ``psa_guard.actions``, and the model is not asked
  (input stage) or its reply is withheld (output stage);
* the model fails to load: ``/readyz`` is false with the reason and requests get 503, also when
  the failure happens inside a request;
* a client disconnects mid-stream: generation stops, the slot is freed, the server goes on;
* a corrupted artifact (harm vector, Pv-Arm adapter, judge, moderation and category heads) is
  refused by its checksum before any byte of it is parsed;
* the disk fills up while writing: a clear error naming the file, nothing half-written, and a
  re-run resumes.
"""

from __future__ import annotations

import errno
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from psa_guard.errors import ChecksumError, ModelLoadError, ModerationUnavailableError
from psa_guard.moderation import Fault, HTTPModerationScorer, ModerationServer
from psa_guard.serve.config import ServeConfig
from tests.doubles import ScriptedScorer
from tests.servers import Server, free_port

POLICY = """
version: 1
name: faults
default_context: plain
contexts:
  plain:
    preference: {empathy: 1, sensitivity: 1, non_judgmental: 1, truthfulness: 1, helpfulness: 1}
    moderation:
      rules:
        - {at: 0.6, action: refuse}
      on_unavailable: block
    messages:
      refuse: No.
      block: The safety check is unavailable, so I cannot answer right now.
  escalating:
    extends: plain
    moderation:
      rules:
        - {at: 0.6, action: refuse}
      on_unavailable: escalate
    messages:
      refuse: No.
      escalate: A person from our team will get back to you.
  care:
    extends: plain
    moderation:
      rules:
        - {at: 0.6, action: refuse}
      category_rules:
        - {category: self-harm/intent, at: 0.5, action: support}
      on_unavailable: block
    messages:
      refuse: No.
      block: The safety check is unavailable, so I cannot answer right now.
      support: You deserve support.
    resources:
      - {name: Helpline, contact: call 123}
"""
MESSAGES = {"block": "The safety check is unavailable, so I cannot answer right now.",
            "escalate": "A person from our team will get back to you."}


class Switchable:
    """The server's scorer, switched per test; ``score_detailed`` only where the current one
    has it (as the guard asks for it)."""

    name = "switchable"

    def __init__(self) -> None:
        self.current: Any = CategoryScorer()

    def score(self, texts: Sequence[str]) -> list[float]:
        return self.current.score(texts)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current, name)


class CategoryScorer:
    """Harmless scores with every category; ``drop`` leaves one out, ``nan`` scores NaN."""

    name = "categories"

    def __init__(self, drop: str | None = None, nan: bool = False) -> None:
        self.drop, self.nan = drop, nan

    def score(self, texts: Sequence[str]) -> list[float]:
        return [overall for overall, _ in self.score_detailed(texts)]

    def score_detailed(self, texts: Sequence[str]) -> list[tuple[float, dict[str, float]]]:
        from psa_guard.categories import CATEGORIES

        rows = []
        for _ in texts:
            categories = {c: 0.01 for c in CATEGORIES if c != self.drop}
            rows.append((math.nan if self.nan else 0.05, categories))
        return rows


class FailsOnOutput:
    """Answers the input check, then is down for the output check."""

    name = "fails-on-output"

    def __init__(self) -> None:
        self.calls = 0

    def score(self, texts: Sequence[str]) -> list[float]:
        self.calls += 1
        if self.calls > 1:
            raise ModerationUnavailableError("HTTP 503 after 3 attempts")
        return [0.05] * len(texts)


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "faults.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture(scope="module")
def scorer() -> Switchable:
    return Switchable()


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, policy_file: Path, scorer: Switchable) -> Iterator[Server]:
    config = ServeConfig(policies=(str(policy_file),), model=str(tiny_model_dir),
                         port=free_port(), max_queue=8)
    with Server(config, scorer) as running:
        yield running


@pytest.fixture(scope="module")
def moderation() -> Iterator[ModerationServer]:
    with ModerationServer(ScriptedScorer()) as running:
        yield running


def _ask(server: Server, model: str, text: str = "hello there", **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 8,
            **extra}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)


def _http(url: str) -> HTTPModerationScorer:
    return HTTPModerationScorer(url, timeout=0.2, max_attempts=2, budget=0.6,
                                backoff_initial=0.01, backoff_max=0.02, jitter=0.0)


def _closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1/moderations"


# (name, the scorer to switch to, model id, action, stage, words of the reason)
SCORER_FAULTS: list[tuple[str, Callable[[ModerationServer], Any], str, str, str, str]] = [
    ("down", lambda _: _http(_closed_port_url()), "faults", "block", "input",
     "connection error"),
    ("slow", lambda srv: (srv.inject([Fault.delay(3.0)] * 4), _http(srv.url))[1], "faults",
     "block", "input", "timeout"),
    ("nan", lambda _: CategoryScorer(nan=True), "faults", "block", "input", "non-numeric"),
    ("nan-escalating-context", lambda _: CategoryScorer(nan=True), "faults/escalating",
     "escalate", "input", "non-numeric"),
    ("missing-category", lambda _: CategoryScorer(drop="self-harm/intent"), "faults/care",
     "block", "input", "no score for self-harm/intent"),
    ("down-at-output-check", lambda _: FailsOnOutput(), "faults", "block", "output",
     "HTTP 503"),
]


@pytest.mark.parametrize(("name", "make", "model", "action", "stage", "reason"), SCORER_FAULTS,
                         ids=[f[0] for f in SCORER_FAULTS])
def test_a_broken_scorer_fails_closed_with_the_contexts_action_and_the_reason(
        server: Server, scorer: Switchable, moderation: ModerationServer, name: str,
        make: Callable[[ModerationServer], Any], model: str, action: str, stage: str,
        reason: str) -> None:
    moderation.clear()
    scorer.current = make(moderation)
    try:
        started = time.monotonic()
        reply = _ask(server, model)
        elapsed = time.monotonic() - started
    finally:
        scorer.current = CategoryScorer()
        moderation.clear()
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["choices"][0]["message"]["content"] == MESSAGES[action]
    steps = body["psa_guard"]["actions"]
    failed = [s for s in steps if s["reason"]]
    assert [(s["stage"], s["action"]) for s in failed] == [(stage, action)]
    assert reason in failed[0]["reason"] and failed[0]["score"] is None
    assert body["psa_guard"]["generated"] is (stage == "output")  # input: the model not asked
    assert elapsed < 10  # a slow scorer is bounded by its budget, not by the server's timeout


def test_a_broken_scorer_fails_closed_in_a_stream_too(server: Server, scorer: Switchable) -> None:
    scorer.current = CategoryScorer(nan=True)
    try:
        with httpx.stream("POST", f"{server.url}/v1/chat/completions", timeout=60, json={
                "model": "faults", "stream": True, "max_tokens": 8,
                "messages": [{"role": "user", "content": "hello"}]}) as response:
            events = [line[5:].strip() for line in response.iter_lines()
                      if line.startswith("data:")]
    finally:
        scorer.current = CategoryScorer()
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == MESSAGES["block"]
    decision = chunks[-1]["psa_guard"]["actions"][0]
    assert decision["action"] == "block" and "non-numeric" in decision["reason"]


# ---- the model fails to load ---------------------------------------------------------------
def _broken_model(tmp_path: Path, tiny_model_dir: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "no-such-model"
    folder = tmp_path / "damaged-model"
    shutil.copytree(tiny_model_dir, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # cut off, as by a failed copy
    return folder


@pytest.mark.parametrize(("kind", "error"), [("missing", "ModelNotFoundError"),
                                             ("damaged", "ModelLoadError")])
def test_a_model_that_fails_to_load_makes_readyz_false_and_requests_503(
        tmp_path: Path, tiny_model_dir: Path, policy_file: Path, kind: str,
        error: str) -> None:
    config = ServeConfig(policies=(str(policy_file),), port=free_port(),
                         model=str(_broken_model(tmp_path, tiny_model_dir, kind)))
    with Server(config, CategoryScorer(), ready=False) as running:
        deadline = time.monotonic() + 30
        while running.state.failure is None and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = httpx.get(f"{running.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False and ready.json()["reason"].startswith(error)
        assert httpx.get(f"{running.url}/healthz").status_code == 200  # alive, not ready
        reply = _ask(running, "faults")
        assert reply.status_code == 503 and reply.json()["error"]["type"] == "server_error"


def test_a_load_failure_inside_a_request_is_a_503_not_a_client_error(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = server.state.apps["faults"].pipeline

    def fail(*_: Any, **__: Any) -> Any:
        raise ModelLoadError("cannot read model.safetensors (truncated)")

    monkeypatch.setattr(pipeline, "run", fail)
    reply = _ask(server, "faults")
    assert reply.status_code == 503, reply.text
    assert reply.json()["error"]["code"] == "model_unavailable"
    assert "safetensors" not in reply.text  # no internals to the client


# ---- a client disconnects mid-stream -------------------------------------------------------
def _hang_up_mid_stream(server: Server, monkeypatch: pytest.MonkeyPatch, budget: int
                        ) -> tuple[int, int]:
    """Stream, hang up at the first text, wait for the slot to be freed; ``(forwards at the
    hang-up, forwards after it)`` of the model."""
    model = server.state.apps["faults"].pipeline.generator().loaded.model
    forwards: list[int] = []
    forward = model.forward

    def counting(*args: Any, **kwargs: Any) -> Any:
        forwards.append(1)
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting)
    body = {"model": "faults", "stream": True, "max_tokens": budget,
            "messages": [{"role": "user", "content": "tell me a long story"}]}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body,
                      timeout=60) as response:
        for line in response.iter_lines():
            if '"content"' in line and '"content": ""' not in line:
                break  # the first text: hang up
    at_hang_up = len(forwards)
    deadline = time.monotonic() + 10
    while server.state.inflight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.state.inflight == 0  # the slot is free
    time.sleep(0.5)  # anything still generating would go on now
    return at_hang_up, len(forwards) - at_hang_up


@pytest.mark.parametrize("window", [None, 160], ids=["default-window", "wide-window"])
def test_a_client_that_disconnects_mid_stream_frees_its_slot_and_generation_stops_at_once(
        server: Server, monkeypatch: pytest.MonkeyPatch, window: int | None) -> None:
    # the serve worker's stop event is the pipeline stream's cancel event: generation stops
    # before the next token, even in the middle of a held-back output-check window
    if window is not None:
        guard = server.state.apps["faults"].pipeline.policy_guard()
        monkeypatch.setattr(guard, "window_chars", window)
    budget = 220
    at_hang_up, after = _hang_up_mid_stream(server, monkeypatch, budget)
    assert after <= 5 and at_hang_up + after < budget
    again = _ask(server, "faults")
    assert again.status_code == 200 and again.json()["psa_guard"]["generated"] is True


# ---- corrupted artifacts -------------------------------------------------------------------
def _damage(path: Path) -> None:
    """Flip one byte near the end of the file: tensor data, so the format itself still reads."""
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF
    path.write_bytes(bytes(data))


def _copy(files: Sequence[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(f, folder / f.name)) for f in files]


def _never_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record any safetensors read (none may happen for a damaged artifact)."""
    import safetensors
    import safetensors.numpy
    import safetensors.torch

    import psa_guard.arm.checkpoint as checkpoint

    reads: list[str] = []

    def spy(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            reads.append(str(path))
            return real(path, *args, **kwargs)
        return call

    monkeypatch.setattr(safetensors, "safe_open", spy(safetensors.safe_open))
    monkeypatch.setattr(checkpoint, "safe_open", spy(checkpoint.safe_open))
    monkeypatch.setattr(safetensors.numpy, "load_file", spy(safetensors.numpy.load_file))
    monkeypatch.setattr(safetensors.torch, "load_file", spy(safetensors.torch.load_file))
    return reads


def _harm_vector(tmp_path: Path) -> tuple[Path, Callable[[], Any]]:
    from psa_guard.direg.vector import SHIPPED_VECTOR, HarmVector

    weights, _ = _copy([SHIPPED_VECTOR, SHIPPED_VECTOR.with_suffix(".sha256")], tmp_path)
    return weights, lambda: HarmVector.load(weights)


def _adapter(tmp_path: Path) -> tuple[Path, Callable[[], Any]]:
    from psa_guard.arm.checkpoint import SHIPPED_ADAPTER, read_metadata
    from psa_guard.core.checksums import verify_file

    weights, _ = _copy([SHIPPED_ADAPTER, SHIPPED_ADAPTER.with_suffix(".sha256")], tmp_path)

    def load() -> Any:  # what load_arm does first, before it needs the host model
        verify_file(weights, kind="Pv-Arm adapter", fix="retrain", required=True)
        return read_metadata(weights)

    return weights, load


def _head(module: str, name: str) -> Callable[[Path], tuple[Path, Callable[[], Any]]]:
    def make(tmp_path: Path) -> tuple[Path, Callable[[], Any]]:
        import importlib

        loader = importlib.import_module(module)
        folder = loader.ARTIFACTS_DIR
        weights, *_ = _copy([folder / f"{name}.{ext}" for ext in ("safetensors", "json", "sha256")],
                            tmp_path)
        if module.endswith("judges"):
            return weights, lambda: loader.load_judge(name, tmp_path)
        if name == "categories":
            return weights, lambda: loader.load_category_head(tmp_path)
        return weights, lambda: loader.load_moderation_head(tmp_path)
    return make


ARTIFACTS = [
    ("harm-vector", _harm_vector),
    ("pv-arm-adapter", _adapter),
    ("judge-refusal", _head("psa_guard.evaluation.judges", "refusal")),
    ("judge-harm", _head("psa_guard.evaluation.judges", "harm")),
    ("judge-toxicity", _head("psa_guard.evaluation.judges", "toxicity")),
    ("moderation-head", _head("psa_guard.moderation.local", "moderation")),
    ("category-head", _head("psa_guard.moderation.categories", "categories")),
]


@pytest.mark.parametrize(("name", "make"), ARTIFACTS, ids=[a[0] for a in ARTIFACTS])
def test_a_corrupted_artifact_is_refused_by_its_checksum_and_never_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
        make: Callable[[Path], tuple[Path, Callable[[], Any]]]) -> None:
    weights, load = make(tmp_path)
    assert load() is not None  # the undamaged copy loads
    reads = _never_read(monkeypatch)
    _damage(weights)
    with pytest.raises(ChecksumError, match="does not match its recorded checksum"):
        load()
    assert reads == []  # refused before a byte of it was parsed


def test_a_shipped_artifact_without_its_checksum_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import psa_guard.arm.checkpoint as checkpoint
    import psa_guard.direg.vector as vector

    (harm,) = _copy([vector.SHIPPED_VECTOR], tmp_path / "direg")
    (adapter,) = _copy([checkpoint.SHIPPED_ADAPTER], tmp_path / "arm")
    monkeypatch.setattr(vector, "SHIPPED_VECTOR", harm)
    monkeypatch.setattr(checkpoint, "SHIPPED_ADAPTER", adapter)
    with pytest.raises(ChecksumError, match="has no checksum file harm_vector.sha256"):
        vector.HarmVector.load(harm)
    with pytest.raises(ChecksumError, match="has no checksum file pvarm.sha256"):
        checkpoint.load_arm(None, adapter)


def test_saved_artifacts_get_a_checksum_that_their_loader_checks(
        tmp_path: Path, tiny_loaded: Any) -> None:
    import torch

    from psa_guard.arm.checkpoint import load_arm, save_arm
    from psa_guard.arm.model import ArmConfig, PvArm
    from psa_guard.direg.vector import HarmVector

    a, b = torch.ones(2, 32), torch.ones(32, 2)
    HarmVector({"model.layers.0.self_attn.q_proj": (a, b)}, 1.0, "x").save(tmp_path / "v.safetensors")
    save_arm(PvArm(tiny_loaded.model, ArmConfig(layers=1)), tmp_path / "a.safetensors",
             base_checksum="x", provenance={})
    assert (tmp_path / "v.sha256").is_file() and (tmp_path / "a.sha256").is_file()
    HarmVector.load(tmp_path / "v.safetensors")
    load_arm(tiny_loaded.model, tmp_path / "a.safetensors")
    for stem in ("v", "a"):
        _damage(tmp_path / f"{stem}.safetensors")
    with pytest.raises(ChecksumError):
        HarmVector.load(tmp_path / "v.safetensors")
    with pytest.raises(ChecksumError):
        load_arm(tiny_loaded.model, tmp_path / "a.safetensors")


# ---- the disk fills up ---------------------------------------------------------------------
def _disk_full_after(monkeypatch: pytest.MonkeyPatch, calls: int) -> list[int]:
    """From the ``calls``-th append on, write half the bytes, then fail with ENOSPC (as a full
    disk does: a short write, then the error)."""
    import os

    import psa_guard.core.jsonl as jsonl

    real = jsonl._write_all
    seen: list[int] = []

    def write_all(fd: int, data: bytes) -> None:
        seen.append(len(data))
        if len(seen) < calls:
            return real(fd, data)
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(jsonl, "_write_all", write_all)
    return seen


def test_a_full_disk_during_generate_is_a_clear_error_and_a_rerun_resumes(
        tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from psa_guard.cli import main

    prompts = tmp_path / "in.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, "prompt": f"q{i}"}) + "\n" for i in range(6)))
    out = tmp_path / "out.jsonl"
    argv = ["generate", "--input", str(prompts), "--output", str(out), "--model",
            str(tiny_model_dir), "--config", "base", "--batch-size", "2", "--max-new-tokens", "3"]
    with monkeypatch.context() as patch:
        _disk_full_after(patch, calls=2)  # the first batch is written, the second fails
        assert main(argv) == 1
    error = capsys.readouterr().err
    assert f"psa-guard: error: [Errno 28] No space left on device: '{out}'" in error
    assert "Traceback" not in error
    assert out.read_text().endswith("\n")  # nothing half-written
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [0, 1]
    assert main(argv) == 0  # space is back: the rerun resumes
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == list(range(6))


def test_a_full_disk_during_a_cache_append_leaves_the_cache_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from psa_guard.evaluation.cache import CacheRecord, CompletionCache

    def record(i: int) -> CacheRecord:
        return CacheRecord("base", "tiny", f"prompt {i}", {"max_new_tokens": 4},
                           {"text": f"reply {i}", "prompt_tokens": 1, "completion_tokens": 1,
                            "finish_reason": "stop", "seconds": 0.1})

    cache = CompletionCache(tmp_path / "cache.jsonl")
    cache.append([record(0)])
    before = cache.path.read_bytes()
    _disk_full_after(monkeypatch, calls=1)
    with pytest.raises(OSError, match="No space left on device") as info:
        cache.append([record(1), record(2)])
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(cache.path)
    assert cache.path.read_bytes() == before
    assert CompletionCache(cache.path).load().corrupted == []


@pytest.mark.parametrize("writer", ["report", "harm-vector"])
def test_a_full_disk_during_an_atomic_write_keeps_the_old_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str) -> None:
    import os

    from psa_guard.core.atomic import write_atomic

    if writer == "report":
        path = tmp_path / "report.json"
        write_atomic(path, '{"old": true}\n')

        def write() -> None:
            write_atomic(path, json.dumps({"new": "x" * 10_000}))
    else:
        import torch

        from psa_guard.direg.vector import HarmVector

        path = tmp_path / "harm_vector.safetensors"
        vector = HarmVector({"m": (torch.ones(2, 4), torch.ones(4, 2))}, 1.0, "x")
        vector.save(path)

        def write() -> None:
            vector.save(path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_open = open

    class FullDisk:
        """A file whose writes stop half-way with ENOSPC."""

        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def write(self, data: bytes) -> int:
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *_: Any) -> None:
            self.handle.close()

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        return FullDisk(handle) if "w" in mode and str(file).endswith(".tmp") else handle

    import builtins
    import io

    import safetensors.torch

    monkeypatch.setattr(builtins, "open", full_open)
    monkeypatch.setattr(io, "open", full_open)

    def save_file(tensors: Any, filename: str, metadata: Any = None) -> None:
        with full_open(filename, "wb") as handle:
            handle.write(safetensors.torch.save(tensors, metadata=metadata))

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    with pytest.raises(OSError, match="No space left on device") as info:
        write()
    assert info.value.filename == str(path)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary left
