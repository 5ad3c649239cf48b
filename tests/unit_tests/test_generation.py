"""The generation core on a tiny random Llama with the real tokenizer."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from psa_guard.errors import InvalidMessagesError, PromptTooLongError
from psa_guard.generation import ChatGenerator, GenerationSettings
from psa_guard.loading import LoadedModel

from ..conftest import make_tiny_model


def test_chat_template_is_applied(tiny_generator: ChatGenerator, tokenizer: Any) -> None:
    ids = tiny_generator.encode([{"role": "user", "content": "hello there"}])
    text = tokenizer.decode(ids)
    assert "<|im_start|>user\nhello there<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_batch_respects_max_new_tokens_and_reports_usage(tiny_generator: ChatGenerator) -> None:
    prompts = ["hi", "a much longer prompt than the first one, to force left padding"]
    out = tiny_generator.generate(prompts, GenerationSettings(max_new_tokens=7))
    assert len(out) == 2
    for prompt, completion in zip(prompts, out):
        assert 0 < completion.completion_tokens <= 7
        assert completion.prompt_tokens == len(tiny_generator.encode(prompt))
        assert completion.finish_reason in {"stop", "length"}
    assert out[0].prompt_tokens < out[1].prompt_tokens


def test_batched_greedy_matches_single_rows(tiny_generator: ChatGenerator) -> None:
    prompts = ["hi", "tell me something about the weather in spring"]
    settings = GenerationSettings(max_new_tokens=6)
    batched = [c.text for c in tiny_generator.generate(prompts, settings)]
    single = [tiny_generator.generate([p], settings)[0].text for p in prompts]
    assert batched == single


def test_sampling_is_reproducible_with_a_seed(tiny_generator: ChatGenerator) -> None:
    settings = GenerationSettings(max_new_tokens=12, temperature=1.5, seed=11)
    first = tiny_generator.generate(["hi"], settings)[0].text
    assert tiny_generator.generate(["hi"], settings)[0].text == first
    others = {
        tiny_generator.generate(["hi"], GenerationSettings(max_new_tokens=12, temperature=1.5,
                                                         seed=s))[0].text
        for s in range(12, 16)
    }
    assert others - {first}  # a different seed gives a different sample


def test_stream_concatenates_to_the_batch_text(tiny_generator: ChatGenerator) -> None:
    settings = GenerationSettings(max_new_tokens=10)
    expected = tiny_generator.generate(["hi"], settings)[0]
    chunks = list(tiny_generator.stream("hi", settings))
    assert chunks[-1].completion is not None
    assert all(c.completion is None for c in chunks[:-1])
    assert "".join(c.text for c in chunks) == expected.text
    assert chunks[-1].completion.text == expected.text
    assert chunks[-1].completion.completion_tokens == expected.completion_tokens


def test_stop_sequence_cuts_batch_and_stream(tiny_generator: ChatGenerator) -> None:
    free = tiny_generator.generate(["hi"], GenerationSettings(max_new_tokens=12))[0].text
    assert len(free) > 6
    stop = free[3:6]
    expected = free[: free.find(stop)]
    settings = GenerationSettings(max_new_tokens=12, stop=(stop,))
    stopped = tiny_generator.generate(["hi"], settings)[0]
    assert stopped.text == expected
    assert stopped.finish_reason == "stop"
    streamed = "".join(c.text for c in tiny_generator.stream("hi", settings))
    assert streamed == expected


def test_closing_a_stream_early_releases_the_model(tiny_generator: ChatGenerator) -> None:
    stream = tiny_generator.stream("hi", GenerationSettings(max_new_tokens=50))
    next(stream)
    stream.close()
    assert not tiny_generator.loaded.lock.locked()
    assert tiny_generator.generate(["hi"], GenerationSettings(max_new_tokens=2))  # still usable


def test_a_cancel_event_stops_a_stream_before_the_next_token(tiny_generator: ChatGenerator
                                                            ) -> None:
    settings = GenerationSettings(max_new_tokens=40)
    cancel = threading.Event()
    cancel.set()  # cancelled before it starts: at most the first token
    chunks = list(tiny_generator.stream("hi", settings, cancel=cancel))
    final = chunks[-1].completion
    assert final is not None and final.completion_tokens <= 1 and final.finish_reason == "length"
    cancel = threading.Event()
    stream = tiny_generator.stream("hi", settings, cancel=cancel)
    first = next(stream)
    cancel.set()  # from the consumer's side, without closing the stream
    rest = list(stream)
    final = rest[-1].completion
    assert final is not None and final.completion_tokens < settings.max_new_tokens
    assert first.text + "".join(c.text for c in rest) == final.text
    assert not tiny_generator.loaded.lock.locked()  # the worker has ended


def test_submit_runs_through_the_micro_batcher(tiny_generator: ChatGenerator) -> None:
    settings = GenerationSettings(max_new_tokens=5)
    assert tiny_generator.submit("hi", settings).text == tiny_generator.generate(
        ["hi"], settings)[0].text


def test_prompt_longer_than_context_is_a_clear_error(tokenizer: Any) -> None:
    small = ChatGenerator(LoadedModel(make_tiny_model(tokenizer, max_positions=48), tokenizer, "s"))
    with pytest.raises(PromptTooLongError, match="at most 48"):
        small.generate(["word " * 60], GenerationSettings(max_new_tokens=4))
    with pytest.raises(PromptTooLongError):
        list(small.stream("word " * 60, GenerationSettings(max_new_tokens=4)))


def test_reply_budget_is_clamped_to_the_context_window(tokenizer: Any) -> None:
    small = ChatGenerator(LoadedModel(make_tiny_model(tokenizer, max_positions=48), tokenizer, "s"))
    prompt_length = len(small.encode("hi"))
    out = small.generate(["hi"], GenerationSettings(max_new_tokens=500))[0]
    assert out.prompt_tokens + out.completion_tokens <= 48
    assert out.completion_tokens <= 48 - prompt_length


def test_bad_messages_fail_before_generation(tiny_generator: ChatGenerator) -> None:
    with pytest.raises(InvalidMessagesError):
        tiny_generator.generate([[]], GenerationSettings(max_new_tokens=2))
