from __future__ import annotations

from typing import Any

import pytest

from psa_guard.errors import ConfigurationError, InvalidMessagesError
from psa_guard.messages import normalize_messages


def test_string_becomes_user_turn() -> None:
    assert normalize_messages("hi") == [{"role": "user", "content": "hi"}]


def test_consecutive_same_role_turns_are_merged() -> None:
    merged = normalize_messages([
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": "d"},
    ])
    assert merged == [
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "a\n\nb"},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": "d"},
    ]


def test_input_is_not_mutated() -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    normalize_messages(messages)
    assert messages[0]["content"] == "a"


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([], "empty"),
        ([{"role": "robot", "content": "x"}], "unknown role 'robot'"),
        ([{"content": "x"}], "unknown role None"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}], "not text"),
        ([{"role": "user", "content": None}], "not text"),
        (["just a string in a list"], "must be a mapping"),
        ([{"role": "assistant", "content": "x"}], "no user or system turn"),
        ([{"role": "tool", "content": "42"}], "no user or system turn"),
    ],
)
def test_invalid_messages(messages: Any, fragment: str) -> None:
    with pytest.raises(InvalidMessagesError, match=fragment) as info:
        normalize_messages(messages)
    assert isinstance(info.value, ConfigurationError)
    assert isinstance(info.value, ValueError)
