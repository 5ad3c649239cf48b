from __future__ import annotations

import json

import pytest

from psa_guard.tools import (
    choose_tool,
    fill_arguments,
    parse_tool_calls,
    render_tool_call,
    tools_instruction,
)

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


def _scripted(values: list[str]):
    prompts: list[tuple[str, tuple[str, ...]]] = []

    def complete(prefix: str, stops: tuple[str, ...]) -> str:
        prompts.append((prefix, stops))
        return values[len(prompts) - 1]

    return complete, prompts


def test_fill_arguments_builds_valid_calls_from_values() -> None:
    complete, prompts = _scripted(['Rome "quoted"'])
    call = parse_tool_calls(fill_arguments(WEATHER, complete), TOOLS).calls[0]
    assert call["args"] == {"city": 'Rome "quoted"'}  # escaped, so it still parses
    assert prompts[0][0].endswith('"arguments": {"city": "') and '"' in prompts[0][1]
    complete, prompts = _scripted([" 2", "5 "])
    assert parse_tool_calls(fill_arguments(MULTIPLY, complete), TOOLS).calls[0]["args"] == {
        "a": 2, "b": 5}
    assert prompts[1][0].endswith('"a": 2, "b": ')


def test_fill_arguments_without_parameters_needs_no_generation() -> None:
    complete, prompts = _scripted([])
    assert parse_tool_calls(fill_arguments(NOW, complete), TOOLS).calls[0]["name"] == "now"
    assert prompts == []


def test_fill_arguments_reports_a_bad_number_as_invalid() -> None:
    complete, _ = _scripted(["three", "4"])
    parsed = parse_tool_calls(fill_arguments(MULTIPLY, complete), TOOLS)
    assert not parsed.calls and parsed.invalid


def test_render_round_trips() -> None:
    text = render_tool_call("multiply", {"a": 1, "b": 2})
    assert json.loads(text[len("<tool_call>"):-len("</tool_call>")])["arguments"] == {"a": 1, "b": 2}
    assert parse_tool_calls(text, TOOLS).calls[0]["args"] == {"a": 1, "b": 2}


@pytest.mark.parametrize(("written", "expected"), [("multiply", "multiply"),
                                                    ("multiplication", "multiply"),
                                                    ("get_wether", "get_weather")])
def test_choose_tool_matches_the_written_name(written: str, expected: str) -> None:
    complete, prompts = _scripted([written])
    assert choose_tool(TOOLS, complete)["function"]["name"] == expected
    assert prompts[0][0].endswith('{"name": "')


def test_choose_tool_with_one_tool_asks_nothing() -> None:
    complete, prompts = _scripted([])
    assert choose_tool([NOW], complete) is NOW and prompts == []
