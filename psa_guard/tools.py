"""Tool calling for chat templates that have no tool support (such as SmolLM2's ChatML).

Tools (OpenAI function format) are described in a system instruction; the model calls one by
replying with a ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` block, which
:func:`parse_tool_calls` extracts. When a tool must be called (``tool_choice``),
:func:`fill_arguments` writes the call's JSON structure from the schema and lets the model write
only the argument values.
"""

from __future__ import annotations

import difflib
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psa_guard.errors import ConfigurationError

__all__ = [
    "TOOL_CALL_OPEN",
    "TOOL_CALL_CLOSE",
    "ParsedToolCalls",
    "tools_instruction",
    "call_head",
    "choose_tool",
    "fill_arguments",
    "forced_tool",
    "parse_tool_calls",
    "render_tool_call",
]

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_BLOCK = re.compile(re.escape(TOOL_CALL_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(TOOL_CALL_CLOSE)
                    + r"|$)", re.DOTALL)


def _function(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    return tool.get("function", tool)


def tools_instruction(tools: Sequence[Mapping[str, Any]], required: str | None = None) -> str:
    """A system instruction that lists the tools and the call format.

    Args:
        tools: tools in OpenAI format (``{"type": "function", "function": {...}}``).
        required: a tool name that must be called, ``"any"`` for any tool, or None.
    """
    lines = ["You can call these tools:"]
    for tool in tools:
        fn = _function(tool)
        params = json.dumps(fn.get("parameters", {}), ensure_ascii=False)
        lines.append(f"- {fn['name']}: {fn.get('description', '').strip()} Parameters: {params}")
    lines.append(
        f"To call a tool, reply with only {TOOL_CALL_OPEN}{{\"name\": \"TOOL\", \"arguments\": "
        f"{{...}}}}{TOOL_CALL_CLOSE}. After a tool result arrives, answer the user normally."
    )
    if required == "any":
        lines.append("You must call one of the tools now.")
    elif required:
        lines.append(f"You must call the tool {required} now.")
    return "\n".join(lines)


def choose_tool(
    tools: Sequence[Mapping[str, Any]], complete: Callable[[str, tuple[str, ...]], str]
) -> Mapping[str, Any]:
    """Let the model pick which tool to call when one must be called but none is named.

    The model continues ``<tool_call>{"name": "`` up to the closing quote; the name it writes is
    matched exactly, else to the closest tool name, else the first tool is taken.
    """
    names = [_function(t)["name"] for t in tools]
    if len(tools) == 1:
        return tools[0]
    written = complete(f'{TOOL_CALL_OPEN}{{"name": "', ('"', "\n")).strip()
    match = written if written in names else next(
        iter(difflib.get_close_matches(written, names, n=1, cutoff=0.0)), names[0])
    return tools[names.index(match)]


def call_head(tool: Mapping[str, Any]) -> str:
    """The start of a reply that calls ``tool``, up to the opening brace of its arguments."""
    return f'{TOOL_CALL_OPEN}{{"name": {json.dumps(_function(tool)["name"])}, "arguments": {{'


#: Stop sequences that end one argument value, by JSON type.
_VALUE_STOPS: dict[str, tuple[str, ...]] = {
    "string": ('"', "\n"),
    "integer": (",", "}", "\n"),
    "number": (",", "}", "\n"),
    "boolean": (",", "}", "\n"),
}


def fill_arguments(
    tool: Mapping[str, Any], complete: Callable[[str, tuple[str, ...]], str]
) -> str:
    """Write a call to ``tool`` whose structure is fixed and whose values the model writes.

    The JSON keys, quotes and separators come from the schema; for each required parameter the
    model continues the text so far until the value's end (``complete(prefix, stops)`` returns the
    continuation, cut before the first stop). Strings are escaped, so the call always parses; a
    parameter of another type (array, object) is left to the model to finish in one go.

    Args:
        tool: the tool in OpenAI format.
        complete: continues a reply prefix until one of ``stops``.

    Returns:
        The whole ``<tool_call>...</tool_call>`` text.
    """
    parameters = _function(tool).get("parameters", {})
    properties = parameters.get("properties", {})
    text = call_head(tool)
    for index, key in enumerate(parameters.get("required", [])):
        text += (", " if index else "") + f"{json.dumps(key)}: "
        kind = properties.get(key, {}).get("type")
        if kind == "string":
            value = complete(text + '"', _VALUE_STOPS["string"])
            text += json.dumps(value.strip())
        elif kind in _VALUE_STOPS:
            text += complete(text, _VALUE_STOPS[kind]).strip() or "null"
        else:  # arrays, objects, unions: the model writes the rest of the call
            return text + complete(text, (TOOL_CALL_CLOSE, "\n")) + TOOL_CALL_CLOSE
    return text + "}}" + TOOL_CALL_CLOSE


def render_tool_call(name: str, args: Mapping[str, Any]) -> str:
    """How an earlier tool call appears in the conversation history."""
    payload = json.dumps({"name": name, "arguments": dict(args)}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}{payload}{TOOL_CALL_CLOSE}"


@dataclass
class ParsedToolCalls:
    """Tool calls found in a reply.

    Attributes:
        content: the reply without the tool-call blocks.
        calls: valid calls, ``{"name", "args", "id"}``.
        invalid: malformed calls, ``{"name", "args", "id", "error"}`` (``args`` is the raw text).
    """

    content: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)


def _first_json_object(text: str) -> tuple[Any, str | None]:
    start = text.find("{")
    if start < 0:
        return None, "no JSON object"
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg})"
    return obj, None


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,),
}


def _argument_error(schema: Mapping[str, Any], args: Mapping[str, Any]) -> str | None:
    """Required parameters present and top-level JSON types right, else the first problem."""
    missing = [p for p in schema.get("required", []) if p not in args]
    if missing:
        return f"missing required argument(s) {', '.join(missing)}"
    for key, value in args.items():
        expected = schema.get("properties", {}).get(key, {}).get("type")
        types = _JSON_TYPES.get(expected) if isinstance(expected, str) else None
        if types and (not isinstance(value, types) or (expected != "boolean"
                                                        and isinstance(value, bool))):
            return f"argument {key!r} should be {expected}, got {type(value).__name__}"
    return None


def parse_tool_calls(text: str, tools: Sequence[Mapping[str, Any]]) -> ParsedToolCalls:
    """Extract ``<tool_call>`` blocks from a reply and check them against ``tools``.

    A call is valid when its JSON parses, its name is one of the tools, its arguments are an
    object, every required parameter is present, and top-level argument types match the schema.
    """
    schemas = {_function(t)["name"]: _function(t).get("parameters", {}) for t in tools}
    parsed = ParsedToolCalls(content=_BLOCK.sub("", text).strip())
    for raw in _BLOCK.findall(text):
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        obj, error = _first_json_object(raw)
        name = obj.get("name") if isinstance(obj, dict) else None
        args = obj.get("arguments", obj.get("parameters", {})) if isinstance(obj, dict) else None
        if error is None and name not in schemas:
            error = f"unknown tool {name!r}"
        if error is None and not isinstance(args, dict):
            error = "arguments is not an object"
        if error is None:
            error = _argument_error(schemas[name], args)  # type: ignore[arg-type]  # a dict here
        if error is None:
            parsed.calls.append({"name": name, "args": args, "id": call_id})
        else:
            parsed.invalid.append({"name": name if isinstance(name, str) else None,
                                   "args": raw, "id": call_id, "error": error})
    return parsed


def forced_tool(tools: Sequence[Mapping[str, Any]], tool_choice: Any
                ) -> Mapping[str, Any] | str | None:
    """The tool a ``tool_choice`` forces, ``"any"`` when the model must pick one, or None.

    Raises:
        ConfigurationError: ``tool_choice`` names a tool that is not bound.
    """
    if isinstance(tool_choice, dict):
        tool_choice = tool_choice.get("function", tool_choice).get("name")
    if tool_choice in ("any", "required", True):
        return tools[0] if len(tools) == 1 else "any"
    if isinstance(tool_choice, str) and tool_choice not in ("auto", "none"):
        for tool in tools:
            if _function(tool)["name"] == tool_choice:
                return tool
        raise ConfigurationError(
            f"tool_choice {tool_choice!r} is not a bound tool; bound: "
            f"{', '.join(_function(t)['name'] for t in tools)}"
        )
    return None
