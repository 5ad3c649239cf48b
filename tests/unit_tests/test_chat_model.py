"""ChatPSAGuard: LangChain's standard unit tests, plus input validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_tests.unit_tests import ChatModelUnitTests
from pydantic import ValidationError

from langchain_psa_guard import ChatPSAGuard
from langchain_psa_guard.chat_models import to_chat_dicts
from psa_guard.errors import ConfigurationError, InvalidMessagesError


class TestChatPSAGuardStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatPSAGuard]:
        return ChatPSAGuard

    @property
    def chat_model_params(self) -> dict:
        return {"temperature": 0.0}


def test_message_conversion() -> None:
    messages = [SystemMessage("s"), HumanMessage([{"type": "text", "text": "a"}, "b"]), AIMessage("c")]
    assert to_chat_dicts(messages) == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "ab"},
        {"role": "assistant", "content": "c"},
    ]


@pytest.mark.parametrize(
    "messages",
    [
        [HumanMessage([{"type": "image_url", "image_url": {"url": "http://x/y.png"}}])],
        [ToolMessage("result", tool_call_id="1")],
    ],
)
def test_unsupported_messages(messages: list) -> None:
    with pytest.raises(InvalidMessagesError):
        to_chat_dicts(messages)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_tokens": -1}, {"max_tokens": 10**9}, {"temperature": -1.0}, {"temperature": 1e3},
     {"top_p": 0.0}, {"config": "nope"}],
)
def test_bad_construction_arguments(kwargs: dict) -> None:
    with pytest.raises((ValidationError, ConfigurationError)):
        ChatPSAGuard(**kwargs)


def test_constructor_does_no_io(tmp_path: Path) -> None:
    llm = ChatPSAGuard(model=str(tmp_path / "absent"))  # nothing is read until the first call
    assert llm.model.endswith("absent")
    assert llm._get_ls_params()["ls_model_type"] == "chat"


def test_bad_call_arguments(tiny_model_dir: Path) -> None:
    llm = ChatPSAGuard(model=str(tiny_model_dir), max_tokens=3)
    with pytest.raises(ConfigurationError, match="max_new_tokens"):
        llm.invoke("hi", max_tokens=0)
    with pytest.raises(ConfigurationError, match="unsupported"):
        llm.invoke("hi", frequency_penalty=1.0)
    with pytest.raises(InvalidMessagesError):
        llm.invoke([])


def test_tiny_model_invoke_stream_and_overrides(tiny_model_dir: Path) -> None:
    llm = ChatPSAGuard(model=str(tiny_model_dir), max_tokens=4)
    message = llm.invoke("hi")
    assert message.usage_metadata["output_tokens"] <= 4
    assert message.response_metadata["model_name"] == str(tiny_model_dir)
    longer = llm.invoke("hi", max_tokens=8)
    assert longer.usage_metadata["output_tokens"] > message.usage_metadata["output_tokens"] or (
        longer.response_metadata["finish_reason"] == "stop")
    streamed = "".join(chunk.text for chunk in llm.stream("hi"))
    assert streamed == message.content
