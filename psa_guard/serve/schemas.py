"""The OpenAI Chat Completions shapes the server reads and writes, and their checks.

Requests are validated here into the request pipeline's :class:`~psa_guard.pipeline.RequestOptions`;
every problem becomes an :class:`APIError` with the HTTP status, the OpenAI error ``type`` and the
offending field (``param``), so clients get the error shape they already handle.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from psa_guard.attributes import parse_preference
from psa_guard.errors import PSAGuardError
from psa_guard.generation import MAX_SEED, MAX_TEMPERATURE, GenerationSettings
from psa_guard.guard import GuardedReply
from psa_guard.messages import Message
from psa_guard.pipeline import RequestOptions
from psa_guard.steering import Steering
from psa_guard.tools import forced_tool, parse_tool_calls, render_tool_call

__all__ = [
    "APIError",
    "ChatCompletionRequest",
    "GuardExtension",
    "completion_body",
    "error_body",
    "parse_request",
    "stream_chunk",
    "to_options",
    "tool_calls_of",
]


class APIError(Exception):
    """An error answered in the OpenAI shape.

    Attributes:
        status: the HTTP status.
        message: what went wrong and how to fix it (no stack trace, no secrets).
        type: the OpenAI error type (``invalid_request_error``, ``authentication_error``, ...).
        param: the offending field, if any.
        headers: extra response headers (``Retry-After``).
    """

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.headers = param, code, headers or {}


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class GuardExtension(BaseModel):
    """The ``psa_guard`` extension field of a request (``extra_body={"psa_guard": {...}}``)."""

    model_config = ConfigDict(extra="forbid")

    locale: str | None = Field(default=None, description="The user's locale, e.g. en-GB.")
    preference: dict[str, float] | str | None = Field(
        default=None, description="Attribute weights overriding the context's, where its policy "
        "allows it (serving.client_preference).")
    beta: float | None = Field(default=None, gt=0, description="Guidance temperature override.")


class ChatMessageIn(BaseModel):
    """One message of a request."""

    model_config = ConfigDict(extra="ignore")

    # The schema documents what the checks below accept (json_schema_extra: the checks stay the
    # server's own, so their messages name the field the OpenAI way, messages[0].role).
    role: str = Field(json_schema_extra={
        "enum": ["system", "developer", "user", "assistant", "tool"]})
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class ChatCompletionRequest(BaseModel):
    """The fields of ``POST /v1/chat/completions`` the server reads (others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="A served model id (GET /v1/models).")
    messages: list[ChatMessageIn] = Field(json_schema_extra={"minItems": 1})
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, json_schema_extra={"minimum": 1}, description=(
        "At most the model's policy's serving.max_tokens."))
    max_completion_tokens: int | None = Field(default=None, json_schema_extra={"minimum": 1})
    temperature: float | None = Field(default=None, json_schema_extra={
        "minimum": 0, "maximum": MAX_TEMPERATURE})
    top_p: float | None = Field(default=None, json_schema_extra={
        "exclusiveMinimum": 0, "maximum": 1})
    seed: int | None = Field(default=None, json_schema_extra={"minimum": 0, "maximum": MAX_SEED})
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, json_schema_extra={"minimum": 1, "maximum": 1})
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    psa_guard: GuardExtension | None = None


_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
          "tool": "tool"}


def _text(message: ChatMessageIn, index: int) -> str:
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for j, part in enumerate(content):
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise APIError(400, f"messages[{index}].content[{j}] is a {part.get('type')!r} part; "
                           f"this model accepts text only", param=f"messages[{index}].content")
        parts.append(part["text"])
    return "".join(parts)


def _messages(request: ChatCompletionRequest) -> list[Message]:
    if not request.messages:
        raise APIError(400, "messages is empty; send at least one user message", param="messages")
    out: list[Message] = []
    for index, message in enumerate(request.messages):
        role = _ROLES.get(message.role)
        if role is None:
            raise APIError(400, f"messages[{index}].role {message.role!r} is not one of "
                           f"{', '.join(_ROLES)}", param=f"messages[{index}].role")
        text = _text(message, index)
        for call in message.tool_calls or []:
            where = f"messages[{index}].tool_calls"
            function = call.get("function") or {}
            raw = (function.get("arguments") or "{}") if isinstance(function, dict) else None
            if not isinstance(raw, str):
                raise APIError(400, f"{where}: each call must be {{'function': {{'name': ..., "
                               f"'arguments': '<a JSON object as a string>'}}}}", param=where)
            try:
                arguments = json.loads(raw)
            except (json.JSONDecodeError, RecursionError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                raise APIError(400, f"{where}: arguments are not JSON ({reason}); send them as a "
                               f"JSON object in a string", param=where) from exc
            if not isinstance(arguments, dict):
                raise APIError(400, f"{where}: arguments must be a JSON object, got "
                               f"{type(arguments).__name__}", param=where)
            text += ("\n" if text else "") + render_tool_call(str(function.get("name")), arguments)
        out.append({"role": role, "content": text})
    return out


def parse_request(raw: bytes) -> ChatCompletionRequest:
    """Decode and validate a request body (400 naming the field on any problem)."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise APIError(400, "the request body must be a JSON object")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"])
        raise APIError(400, f"{param}: {first['msg']}", param=param) from exc


@dataclass(frozen=True)
class Parsed:
    """A validated request: the conversation and the pipeline options."""

    messages: list[Message]
    options: RequestOptions


def to_options(request: ChatCompletionRequest, context: str, max_tokens_cap: int,
               default_max_tokens: int, client_preference: bool) -> Parsed:
    """The pipeline's view of a request for one application's context.

    Raises:
        APIError: a field is out of range or not allowed here (400, naming the field).
    """
    if request.n not in (None, 1):
        raise APIError(400, "n must be 1: the server returns one choice", param="n")
    asked = request.max_completion_tokens if request.max_completion_tokens is not None else (
        request.max_tokens)
    field = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
    if asked is not None and not 1 <= asked <= max_tokens_cap:
        raise APIError(400, f"{field} must be from 1 to {max_tokens_cap} for this model (its "
                       f"policy's serving.max_tokens)", param=field)
    if request.temperature is not None and request.temperature < 0:
        raise APIError(400, "temperature must be >= 0 (0 is greedy)", param="temperature")
    extension = request.psa_guard or GuardExtension()
    steering = None
    if extension.preference is not None or extension.beta is not None:
        if not client_preference:
            raise APIError(400, "this model's policy does not let requests override its "
                           "preference (serving.client_preference is false)",
                           param="psa_guard.preference")
        preference = extension.preference
        try:
            if isinstance(preference, dict):
                preference = ",".join(f"{k}={v}" for k, v in preference.items())
            weights = (parse_preference(preference, "psa_guard.preference")
                       if preference is not None else None)
            steering = Steering(weights, extension.beta)
        except PSAGuardError as exc:
            raise APIError(400, str(exc), param="psa_guard.preference") from exc
    stop = (request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ())
    try:
        settings = GenerationSettings(
            max_new_tokens=asked if asked is not None else min(default_max_tokens, max_tokens_cap),
            temperature=request.temperature if request.temperature is not None else 0.0,
            top_p=request.top_p if request.top_p is not None else 1.0,
            seed=request.seed, stop=stop)
    except PSAGuardError as exc:
        raise APIError(400, str(exc), param=_param_of(str(exc))) from exc
    tools = tuple(request.tools or ())
    for index, tool in enumerate(tools):
        function = tool.get("function", tool)
        if not (isinstance(function, dict) and isinstance(function.get("name"), str)
                and function["name"] and isinstance(function.get("description", ""), str)
                and isinstance(function.get("parameters", {}), dict)):
            raise APIError(400, f"tools[{index}] is not a function tool; write each as "
                           f"{{'type': 'function', 'function': {{'name': ..., 'description': "
                           f"'...', 'parameters': {{...}}}}}}", param=f"tools[{index}]")
    choice = request.tool_choice
    if isinstance(choice, dict) and not isinstance(choice.get("function", choice), dict):
        raise APIError(400, "tool_choice must be 'auto', 'none', 'required' or {'type': "
                       "'function', 'function': {'name': ...}}", param="tool_choice")
    if tools:
        try:
            forced_tool(list(tools), request.tool_choice)
        except PSAGuardError as exc:
            raise APIError(400, str(exc), param="tool_choice") from exc
    return Parsed(_messages(request), RequestOptions(
        context=context, locale=extension.locale, steering=steering, settings=settings,
        tools=tools, tool_choice=request.tool_choice))


def _param_of(message: str) -> str | None:
    for name in ("temperature", "top_p", "seed", "stop"):
        if message.startswith(name):
            return name
    return None


def tool_calls_of(reply: GuardedReply, options: RequestOptions
                  ) -> tuple[str, list[dict[str, Any]]]:
    """The reply's text without its tool-call blocks, and the calls in the OpenAI shape."""
    tools = list(options.tools) if options.tool_choice != "none" else []
    if not tools:
        return reply.text, []
    parsed = parse_tool_calls(reply.text, tools)
    calls = [{"id": call["id"], "type": "function",
              "function": {"name": call["name"], "arguments": json.dumps(call["args"])}}
             for call in parsed.calls]
    return parsed.content, calls


def guard_field(reply: GuardedReply) -> dict[str, Any]:
    """The documented ``psa_guard`` extension of a response: the guard's decision."""
    body = reply.metadata()
    if reply.completion is not None and "arm" in reply.completion.extra:
        body["arm"] = reply.completion.extra["arm"]
    return body


def _usage(reply: GuardedReply) -> dict[str, int]:
    completion = reply.completion
    prompt = completion.prompt_tokens if completion else 0
    written = completion.completion_tokens if completion else 0
    return {"prompt_tokens": prompt, "completion_tokens": written,
            "total_tokens": prompt + written}


def _finish(reply: GuardedReply, calls: list[dict[str, Any]]) -> str:
    if calls:
        return "tool_calls"
    if reply.completion is not None and reply.delivered:
        return reply.completion.finish_reason
    return "stop"


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion_body(ident: str, model: str, reply: GuardedReply,
                    options: RequestOptions) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    content, calls = tool_calls_of(reply, options)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": ident, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply, calls),
                     "logprobs": None}],
        "usage": _usage(reply), "psa_guard": guard_field(reply),
    }


def stream_chunk(ident: str, model: str, delta: dict[str, Any], finish: str | None = None,
                 reply: GuardedReply | None = None, options: RequestOptions | None = None
                 ) -> dict[str, Any]:
    """A ``chat.completion.chunk``; the final one (``reply`` given) carries the finish reason,
    the tool calls, ``usage`` and the ``psa_guard`` extension."""
    chunk: dict[str, Any] = {
        "id": ident, "object": "chat.completion.chunk", "created": int(time.time()),
        "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                     "logprobs": None}],
    }
    if reply is not None and options is not None:
        _, calls = tool_calls_of(reply, options)
        if calls:
            chunk["choices"][0]["delta"] = {**delta, "tool_calls": [
                {"index": i, **call} for i, call in enumerate(calls)]}
        chunk["choices"][0]["finish_reason"] = _finish(reply, calls)
        chunk["usage"] = _usage(reply)
        chunk["psa_guard"] = guard_field(reply)
    return chunk
