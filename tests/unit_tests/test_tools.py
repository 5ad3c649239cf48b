from __future__ import annotations

import json

import pytest

from psa_guard.tools import forced_prefix, parse_tool_calls, render_tool_call, tools_instruction

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
MULTIPLY = {"type": "function", "function": {
    "name": "multiply", "description": "Multiply integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"},
                                                    "b": {"type": "integer"}},
                   "required": ["a", "b"]}}}
NOW = {"type": "function", "function": {"name": "now", "description": "Current time.",
                                        "parameters": {"type": "object", "properties": {}}}}
TOOLS = [WEATHER, MULTIPLY, NOW]


def test_instruction_lists_tools_and_requirement() -> None:
    text = tools_instruction(TOOLS, required="multiply")
    assert "get_weather" in text and "multiply" in text and '"required": ["a", "b"]' in text
    assert "must call the tool multiply" in text


@pytest.mark.parametrize(
    ("reply", "valid", "error"),
    [
        ('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
         [("get_weather", {"city": "Paris"})], None),
        ('Sure. <tool_call>{"name": "multiply", "arguments": {"a": 3, "b": 4}} and chatter',
         [("multiply", {"a": 3, "b": 4})], None),
        ('<tool_call>{"name": "fly", "arguments": {}}</tool_call>', [], "unknown tool"),
        ('<tool_call>{"name": "multiply", "arguments": {"a": 3}}</tool_call>', [], "missing"),
        ('<tool_call>{"name": "multiply", "arguments": {"a": "3", "b": 4}}</tool_call>', [],
         "should be integer"),
        ('<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>', [], "invalid JSON"),
        ("no call here", [], None),
    ],
)
def test_parse_tool_calls(reply: str, valid: list, error: str | None) -> None:
    parsed = parse_tool_calls(reply, TOOLS)
    assert [(c["name"], c["args"]) for c in parsed.calls] == valid
    if error:
        assert parsed.invalid and error in parsed.invalid[0]["error"]
    else:
        assert not parsed.invalid
    assert "<tool_call>" not in parsed.content


def test_forced_prefix_completes_to_a_valid_call() -> None:
    assert parse_tool_calls(forced_prefix(WEATHER) + 'Rome"}}', TOOLS).calls[0]["args"] == {
        "city": "Rome"}
    assert parse_tool_calls(forced_prefix(MULTIPLY) + '2, "b": 5}}', TOOLS).calls[0]["args"] == {
        "a": 2, "b": 5}
    assert parse_tool_calls(forced_prefix(NOW), TOOLS).calls[0]["name"] == "now"


def test_render_round_trips() -> None:
    text = render_tool_call("multiply", {"a": 1, "b": 2})
    assert json.loads(text[len("<tool_call>"):-len("</tool_call>")])["arguments"] == {"a": 1, "b": 2}
    assert parse_tool_calls(text, TOOLS).calls[0]["args"] == {"a": 1, "b": 2}
