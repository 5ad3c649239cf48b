"""The OpenAI-compatible FastAPI application: one more thin caller of the request pipeline.

Endpoints: ``POST /v1/chat/completions`` (plain and ``stream: true`` over SSE), ``GET /v1/models``,
``GET /healthz`` (alive), ``GET /readyz`` (model and scorer loaded), ``GET /metrics`` (Prometheus).
The OpenAPI document is at ``/openapi.json``.

What a request goes through, in order: the body size cap (413), JSON and field checks (400, naming
the field), the API key (401) and its scope (403), the model id (404, listing the ids), the queue
bound (429 with ``Retry-After``), then the pipeline in a worker thread, under a timeout (504).
Concurrent requests reach the pipeline's generator at once, so its micro-batcher merges them into
batched forwards, whatever their application or preference. Every error body has the OpenAI
shape and no stack trace; API keys never reach a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sse_starlette.sse import EventSourceResponse

from psa_guard.errors import ModelError, PromptTooLongError, PSAGuardError
from psa_guard.guard import GuardedReply
from psa_guard.moderation.base import ModerationScorer
from psa_guard.serve.apps import Application, build_catalogue
from psa_guard.serve.config import ServeConfig
from psa_guard.serve.keys import KeyRing, key_id, load_keys
from psa_guard.serve.metrics import ServerMetrics
from psa_guard.serve.schemas import (
    APIError,
    ChatCompletionRequest,
    Parsed,
    completion_body,
    error_body,
    new_id,
    parse_request,
    stream_chunk,
    to_options,
    tool_calls_of,
)

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_COMPLETION_SCHEMA = ChatCompletionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
#: The models the request schema refers to; they go under the document's components/schemas,
#: where its references point (left inside the request schema, every reference would dangle).
_COMPLETION_DEFS = _COMPLETION_SCHEMA.pop("$defs", {})


class _State:
    """What the application holds: the catalogue, the keys, the queue count, readiness."""

    def __init__(self, config: ServeConfig, apps: dict[str, Application],
                 keys: KeyRing | None) -> None:
        self.config = config
        self.apps = apps
        self.keys = keys
        self.metrics = ServerMetrics()
        self.executor = ThreadPoolExecutor(max_workers=config.max_queue,
                                           thread_name_prefix="psa-guard-serve")
        self.executor_closed = False
        self.inflight = 0
        self.ready = threading.Event()
        self.failure: str | None = None

    def warm_up(self) -> None:
        """Load the weights and the scorer once, before the first request needs them."""
        try:
            for pipeline in {id(a.pipeline): a.pipeline for a in self.apps.values()}.values():
                pipeline.generator()
                guard = pipeline.policy_guard()
                if guard is not None:
                    guard.score(["warm-up"])
            self.ready.set()
            logger.info("ready: %d applications", len(self.apps))
        except Exception as exc:  # reported by /readyz; requests get 503
            self.failure = f"{type(exc).__name__}: {exc}"
            logger.error("model or scorer failed to load: %s", self.failure)

    def authorise(self, request: Request, model: str | None) -> str:
        """The key's log name ('-' without keys); 401 for a missing or wrong key, 403 for a key
        of another application."""
        if self.keys is None:
            return "-"
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise APIError(401, "missing API key: send 'Authorization: Bearer <key>'",
                           "authentication_error", code="missing_api_key")
        apps = self.keys.find(token.strip())
        if apps is None:
            raise APIError(401, "the API key is not valid", "authentication_error",
                           code="invalid_api_key")
        if model is not None and "*" not in apps and model not in apps:
            raise APIError(403, f"this API key may not use model {model!r}",
                           "permission_error", param="model", code="model_not_allowed")
        return key_id(token.strip())

    def visible(self, request: Request) -> list[str]:
        """The model ids the request's key may use (all of them without keys), after
        :meth:`authorise` accepted it."""
        if self.keys is None:
            return sorted(self.apps)
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        apps = self.keys.find(token) or frozenset()
        return sorted(ident for ident in self.apps if "*" in apps or ident in apps)

    def application(self, model: str) -> Application:
        app = self.apps.get(model)
        if app is None:
            raise APIError(404, f"model {model!r} does not exist; served models: "
                           f"{', '.join(sorted(self.apps))}", param="model",
                           code="model_not_found")
        return app


def create_app(config: ServeConfig, scorer: ModerationScorer | None = None) -> FastAPI:
    """The application for ``config``.

    Args:
        config: what to serve and the limits.
        scorer: the moderation scorer of every policy's checks (None: the local default).

    Reads the policy files and the key file (small; a bad one fails here, before serving), and
    no weights: the model and the scorer load in a background thread at startup, and
    ``/readyz`` says when they are in.

    Raises:
        PolicyError: a policy cannot be read.
        ConfigurationError: the key file is malformed, or the configuration is unknown.
    """
    keys = load_keys(config.api_keys) if config.api_keys is not None else None
    state = _State(config, build_catalogue(config, scorer), keys)
    if keys is not None and config.api_keys is not None:
        keys.check_apps(state.apps, config.api_keys)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if state.executor_closed:  # started again after a shutdown: a fresh worker pool
            state.executor = ThreadPoolExecutor(max_workers=config.max_queue,
                                                thread_name_prefix="psa-guard-serve")
            state.executor_closed = False
        threading.Thread(target=state.warm_up, name="psa-guard-warm-up", daemon=True).start()
        yield
        state.executor.shutdown(wait=False, cancel_futures=True)
        state.executor_closed = True

    app = FastAPI(title="psa-guard", version="0.1.0", lifespan=lifespan,
                  description="An OpenAI-compatible chat endpoint for guarded local models.")
    app.state.psa_guard = state

    @app.middleware("http")
    async def limits(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                     ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > config.max_body_bytes:
            return _error(APIError(413, f"the request body is larger than "
                                        f"{config.max_body_bytes} bytes; send a smaller request"))
        try:
            response = await call_next(request)
        except Exception:  # never a stack trace to the client
            logger.exception("unhandled error on %s", request.url.path)
            response = _error(APIError(500, "internal error", "server_error"))
        response.headers["x-psa-guard-replica"] = str(os.getpid())
        return response

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return _error(exc)

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The model and the scorer are loaded",
             responses={503: {"description": "still loading, or loading failed"}})
    async def readyz() -> JSONResponse:
        if state.ready.is_set():
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "reason": state.failure or "loading"}, 503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", summary="One model id per application (a policy's context)")
    async def models(request: Request) -> dict[str, Any]:
        state.authorise(request, None)
        visible = state.visible(request)  # a scoped key does not learn the other apps
        return {"object": "list", "data": [
            {"id": ident, "object": "model", "created": 0, "owned_by": f"psa-guard:{a.policy}"}
            for ident, a in sorted(state.apps.items()) if ident in visible]}

    @app.post("/v1/chat/completions", summary="Create a guarded chat completion",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": _COMPLETION_SCHEMA}}}},
              responses={400: {"description": "invalid request"}, 401: {"description": "no key"},
                         403: {"description": "key of another app"},
                         404: {"description": "unknown model"}, 413: {"description": "too big"},
                         429: {"description": "queue full"}, 503: {"description": "not loaded"},
                         504: {"description": "timed out"}})
    async def chat_completions(request: Request) -> Response:
        raw = await _read_body(request, config.max_body_bytes)
        body = parse_request(raw)
        who = state.authorise(request, body.model)
        application = state.application(body.model)
        serving = application.context.serving
        parsed = to_options(body, application.context.name, serving.max_tokens,
                            config.default_max_tokens, serving.client_preference)
        if state.failure is not None:
            raise APIError(503, "the model or the scorer failed to load; see /readyz",
                           "server_error")
        if state.inflight >= config.max_queue:
            state.metrics.requests.labels(application.id, "429").inc()
            raise APIError(429, f"the server is busy ({state.inflight} requests); retry shortly",
                           "rate_limit_error", headers={"Retry-After": "1"})
        logger.info("chat completion for %s by %s (stream=%s)", application.id, who, body.stream)
        if body.stream:
            return EventSourceResponse(_stream(state, application, parsed),
                                       ping=15, send_timeout=config.timeout_s)
        return await _complete(state, application, parsed)

    openapi = app.openapi

    def document() -> dict[str, Any]:
        """FastAPI's document, with the request schema's models under components/schemas."""
        schema = openapi()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(_COMPLETION_DEFS)
        return schema

    app.openapi = document  # type: ignore[method-assign]
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, read only up to ``limit`` bytes (413 past it, whatever the headers say:
    a chunked body has no length to check in advance)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, f"the request body is larger than {limit} bytes; send a "
                           f"smaller request")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(exc: APIError) -> JSONResponse:
    return JSONResponse(error_body(exc.message, exc.type, exc.param, exc.code), exc.status,
                        headers=exc.headers)


def _record(state: _State, application: Application, reply: GuardedReply, stream: bool,
            started: float, first: float | None) -> None:
    metrics = state.metrics
    labels = (application.id, str(stream).lower())
    metrics.requests.labels(application.id, "200").inc()
    metrics.latency.labels(*labels).observe(time.perf_counter() - started)
    metrics.ttft.labels(*labels).observe((first or time.perf_counter()) - started)
    for step in reply.steps:
        metrics.actions.labels(application.id, step.stage, step.action).inc()
    if reply.completion is not None:
        metrics.tokens.labels(application.id, "prompt").inc(reply.completion.prompt_tokens)
        metrics.tokens.labels(application.id, "completion").inc(
            reply.completion.completion_tokens)


def _failure(exc: Exception) -> APIError:
    if isinstance(exc, PromptTooLongError):
        return APIError(400, str(exc), param="messages", code="context_length_exceeded")
    if isinstance(exc, ModelError):  # weights or an artifact failed to load: not the client's fault
        logger.error("model or artifact failed to load: %s", exc)
        return APIError(503, "the model or one of its artifacts failed to load; see /readyz",
                        "server_error", code="model_unavailable")
    if isinstance(exc, PSAGuardError):
        return APIError(400, str(exc))
    logger.exception("generation failed")
    return APIError(500, "internal error", "server_error")


async def _complete(state: _State, application: Application, parsed: Parsed) -> JSONResponse:
    started = time.perf_counter()
    state.inflight += 1
    state.metrics.queue.set(state.inflight)
    loop = asyncio.get_running_loop()
    try:
        call = loop.run_in_executor(state.executor, application.pipeline.run, parsed.messages,
                                    parsed.options)
        reply = await asyncio.wait_for(call, state.config.timeout_s)
    except asyncio.TimeoutError:
        state.metrics.requests.labels(application.id, "504").inc()
        raise APIError(504, f"the reply took longer than {state.config.timeout_s:g} s",
                       "server_error", code="timeout") from None
    except Exception as exc:
        error = _failure(exc)
        state.metrics.requests.labels(application.id, str(error.status)).inc()
        raise error from exc
    finally:
        state.inflight -= 1
        state.metrics.queue.set(state.inflight)
    _record(state, application, reply, False, started, None)
    return JSONResponse(completion_body(new_id(), application.id, reply, parsed.options))


async def _stream(state: _State, application: Application, parsed: Parsed
                  ) -> AsyncIterator[dict[str, str]]:
    """SSE events of one streamed reply, ending with ``data: [DONE]``.

    The pipeline's stream runs in a worker thread that hands pieces over a queue; when the client
    goes away (this generator is closed), ``stop`` is set: the pipeline's stream stops token
    generation before the next token (its cancel event), the worker closes it, and the slot is
    freed.
    """
    started = time.perf_counter()
    ident, model = new_id(), application.id
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()
    options = parsed.options
    whole = bool(options.tools) and options.tool_choice != "none"  # tool calls: parsed whole

    def work() -> None:
        stream = application.pipeline.stream(parsed.messages, options, cancel=stop)
        try:
            for item in stream:
                loop.call_soon_threadsafe(pieces.put_nowait, ("piece", item))
                if stop.is_set():
                    break
        except Exception as exc:  # handed to the event loop, answered there
            loop.call_soon_threadsafe(pieces.put_nowait, ("error", exc))
        finally:
            stream.close()
            loop.call_soon_threadsafe(pieces.put_nowait, ("end", None))

    state.inflight += 1
    state.metrics.queue.set(state.inflight)
    worker = loop.run_in_executor(state.executor, work)
    first: float | None = None
    try:
        yield {"data": json.dumps(stream_chunk(ident, model, {"role": "assistant",
                                                              "content": ""}))}
        while True:
            kind, value = await asyncio.wait_for(pieces.get(), state.config.timeout_s)
            if kind == "end":
                break
            if kind == "error":
                error = _failure(value)
                state.metrics.requests.labels(model, str(error.status)).inc()
                yield {"data": json.dumps(error_body(error.message, error.type, error.param,
                                                     error.code))}
                break
            text, reply = value
            if reply is None:
                if text and not whole:
                    first = first or time.perf_counter()
                    yield {"data": json.dumps(stream_chunk(ident, model, {"content": text}))}
                continue
            if whole:
                content, _ = tool_calls_of(reply, options)
                if content:
                    first = first or time.perf_counter()
                    yield {"data": json.dumps(stream_chunk(ident, model, {"content": content}))}
            _record(state, application, reply, True, started, first)
            yield {"data": json.dumps(stream_chunk(ident, model, {}, reply=reply,
                                                   options=options))}
        yield {"data": "[DONE]"}
    except asyncio.TimeoutError:
        state.metrics.requests.labels(model, "504").inc()
        yield {"data": json.dumps(error_body(f"the reply took longer than "
                                             f"{state.config.timeout_s:g} s", "server_error",
                                             code="timeout"))}
    finally:
        stop.set()
        state.inflight -= 1
        state.metrics.queue.set(state.inflight)
        if not worker.done():
            worker.add_done_callback(lambda _: None)
