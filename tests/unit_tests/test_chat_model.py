"""ChatPSAGuard: LangChain's standard unit tests, plus input validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, FunctionMessage, HumanMessage, SystemMessage
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
        [FunctionMessage("result", name="f")],
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


def _guarded(tiny_model_dir: Path, **kwargs):
    from psa_guard.policy import Policy

    from ..doubles import POLICY, ScriptedScorer

    return ChatPSAGuard(model=str(tiny_model_dir), max_tokens=4,
                        policy=Policy.from_string(POLICY), scorer=ScriptedScorer(), **kwargs)


def test_policy_context_from_kwarg_bind_and_configurable(tiny_model_dir: Path) -> None:
    llm = _guarded(tiny_model_dir)
    plain = llm.invoke("I feel sad")
    assert plain.response_metadata["context"] == "general"
    assert [a["action"] for a in plain.response_metadata["psa_guard"]["actions"]][0] == "steer"
    for message in (
        llm.invoke("I feel sad", context="strict"),
        llm.bind(context="strict").invoke("I feel sad"),
        llm.invoke("I feel sad", config={"configurable": {"context": "strict"}}),
    ):
        assert message.content == "Not here."
        assert message.response_metadata["context"] == "strict"
        assert message.response_metadata["psa_guard"]["generated"] is False


def test_policy_unknown_context_is_an_error(tiny_model_dir: Path) -> None:
    from psa_guard.errors import PolicyError

    with pytest.raises(PolicyError, match="strict"):
        _guarded(tiny_model_dir).invoke("hi", context="missing")


def test_policy_stream_reports_actions(tiny_model_dir: Path) -> None:
    llm = _guarded(tiny_model_dir, context="strict")
    chunks = list(llm.stream("I feel sad"))
    assert "".join(c.text for c in chunks) == "Not here."
    assert chunks[-1].chunk_position == "last"
    assert chunks[-1].response_metadata["psa_guard"]["actions"][0]["action"] == "refuse"


def test_policy_from_path_loads_lazily(tmp_path: Path, tiny_model_dir: Path) -> None:
    from ..doubles import POLICY, ScriptedScorer

    path = tmp_path / "app.yaml"
    llm = ChatPSAGuard(model=str(tiny_model_dir), policy=str(path), scorer=ScriptedScorer())
    path.write_text(POLICY)  # written after construction: the constructor read nothing
    assert llm.invoke("I feel sad", context="strict").content == "Not here."


def test_forced_tool_call_on_tiny_model(tiny_model_dir: Path) -> None:
    def current_time() -> str:
        """Return the current time."""
        return "noon"

    llm = ChatPSAGuard(model=str(tiny_model_dir), max_tokens=4).bind_tools(
        [current_time], tool_choice="current_time")
    message = llm.invoke("What time is it?")
    assert [c["name"] for c in message.tool_calls] == ["current_time"]
    with pytest.raises(ConfigurationError, match="not a bound tool"):
        ChatPSAGuard(model=str(tiny_model_dir)).bind_tools([current_time], tool_choice="other")


@pytest.mark.parametrize("kwargs", [{"config": "base", "direg_lambda": 1.0},
                                    {"config": "direg", "direg_lambda": -1.0},
                                    {"config": "direg", "direg_k": 0.0}])
def test_bad_direg_options(kwargs: dict) -> None:
    with pytest.raises((ValidationError, ConfigurationError)):
        ChatPSAGuard(**kwargs)
