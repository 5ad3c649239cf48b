"""Behaviour on the real embedded default model (SmolLM2-135M-Instruct)."""

from __future__ import annotations

import pytest

from langchain_psa_guard import ChatPSAGuard
from psa_guard.cli import main
from psa_guard.embedded import default_gguf_path, ensure_default_model
from psa_guard.errors import PromptTooLongError
from psa_guard.generation import ChatGenerator, GenerationSettings
from psa_guard.loading import load_model

pytestmark = pytest.mark.real_model


def test_second_setup_does_nothing() -> None:
    result = ensure_default_model()
    assert not result.created and result.reason == "already set up"


def test_gguf_and_safetensors_copies_agree() -> None:
    settings = GenerationSettings(max_new_tokens=12)
    prompt = ["What is the capital of France?"]
    from_safetensors = ChatGenerator(load_model()).generate(prompt, settings)[0].text
    from_gguf = ChatGenerator(load_model(default_gguf_path())).generate(prompt, settings)[0].text
    assert from_safetensors == from_gguf
    assert "Paris" in from_safetensors


def test_batch_is_coalesced_and_matches_shapes() -> None:
    llm = ChatPSAGuard(max_tokens=12)
    replies = llm.batch(["Hi", "What is 2+2?", "Name a fruit.", "Say yes."])
    assert len(replies) == 4
    assert all(r.content and r.usage_metadata["output_tokens"] <= 12 for r in replies)


def test_stream_matches_invoke() -> None:
    llm = ChatPSAGuard(max_tokens=20)
    assert "".join(c.text for c in llm.stream("Name three colours.")) == llm.invoke(
        "Name three colours.").content


def test_prompt_beyond_the_context_window() -> None:
    with pytest.raises(PromptTooLongError, match="8192"):
        ChatPSAGuard(max_tokens=4).invoke("word " * 9000)


def test_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert out.count("### (") == 5 and out.count("raw model:") == 5
    # the demo's default: the default policy (general_assistant) and mental_health_support
    assert out.count("general_assistant:") == 5 and out.count("mental_health_support:") == 5
    assert "[refuse" in out  # the harmful messages are answered by the policies' messages


def test_chat_model_direg_strength_options() -> None:
    llm = ChatPSAGuard(config="direg", direg_lambda=1.0, direg_k=10.0, max_tokens=6)
    reply = llm.invoke("Say hello.")
    assert "direg(lambda=1,K=10%)" in reply.response_metadata["model_name"]
    assert reply.content
