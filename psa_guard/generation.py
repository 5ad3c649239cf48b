"""Generation core: chat template, batched generation with KV cache, and token streaming.

:class:`ChatGenerator` wraps an already-loaded model (no I/O in its constructor) and calls
``model.generate`` with the KV cache on, so any ``transformers`` logits processor (the guidance of
later stages) composes with greedy and sampled decoding, stop sequences and streaming.

Context window: a prompt that does not fit (its token count is at least the model's
``max_position_embeddings``) raises :class:`~psa_guard.errors.PromptTooLongError`; otherwise
``max_new_tokens`` is reduced so that prompt plus response fit, and the reply's ``finish_reason`` is
``"length"`` if that budget runs out.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from transformers import LogitsProcessorList, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from psa_guard.batching import MicroBatcher
from psa_guard.errors import ConfigurationError, PromptTooLongError
from psa_guard.loading import LoadedModel
from psa_guard.messages import normalize_messages
from psa_guard.steering import Steering
from psa_guard.stopping import CancelCriteria, StopOnStrings, StopTrimmer, trim_at_stop

__all__ = [
    "MAX_NEW_TOKENS_LIMIT",
    "MAX_TEMPERATURE",
    "GenerationSettings",
    "Completion",
    "StreamChunk",
    "ChatGenerator",
]

MAX_NEW_TOKENS_LIMIT = 32_768
MAX_TEMPERATURE = 5.0
#: The largest seed torch's generator takes (an unsigned 64-bit integer).
MAX_SEED = 2**64 - 1

Conversation = Sequence[Mapping[str, Any]] | str
ProcessorFactory = Callable[[int], Sequence[Any]]


@dataclass(frozen=True)
class GenerationSettings:
    """How to decode. Validated on construction.

    Attributes:
        max_new_tokens: response budget, 1..32768 (further capped by the context window).
        temperature: 0 means greedy decoding; otherwise sampling temperature in (0, 5].
        top_p: nucleus sampling mass in (0, 1] (sampling only).
        seed: seeds torch's generator before each call, making sampling reproducible.
        stop: stop sequences; the reply ends before the first one and never contains it.
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        mnt = self.max_new_tokens
        if isinstance(mnt, bool) or not isinstance(mnt, int) or not 1 <= mnt <= MAX_NEW_TOKENS_LIMIT:
            raise ConfigurationError(
                f"max_new_tokens (max_tokens) must be an integer from 1 to {MAX_NEW_TOKENS_LIMIT}, "
                f"got {mnt!r}"
            )
        temp = self.temperature
        if isinstance(temp, bool) or not isinstance(temp, (int, float)) or not (
            0.0 <= temp <= MAX_TEMPERATURE
        ):
            raise ConfigurationError(
                f"temperature must be a number from 0 (greedy) to {MAX_TEMPERATURE}, got {temp!r}"
            )
        if isinstance(self.top_p, bool) or not isinstance(self.top_p, (int, float)) or not (
            0.0 < self.top_p <= 1.0
        ):
            raise ConfigurationError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
            or not 0 <= self.seed <= MAX_SEED
        ):
            raise ConfigurationError(f"seed must be a non-negative integer from 0 to {MAX_SEED} "
                                     f"or None, got {self.seed!r}")
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        if any(not isinstance(s, str) or not s for s in stop):
            raise ConfigurationError(f"stop must be a list of non-empty strings, got {self.stop!r}")
        object.__setattr__(self, "stop", stop)

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``model.generate`` (sampling parameters only)."""
        if not self.do_sample:
            return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return {"do_sample": True, "temperature": float(self.temperature), "top_p": float(self.top_p),
                "top_k": None}


@dataclass(frozen=True)
class Completion:
    """One generated reply.

    Attributes:
        text: the reply, cut before any stop sequence, special tokens removed.
        prompt_tokens: tokens in the templated prompt.
        completion_tokens: tokens generated for this row (an end-of-turn token excluded).
        finish_reason: ``"stop"`` (end of turn or stop sequence) or ``"length"``.
        seconds: wall time of the call that produced it (shared by the rows of one batch).
        extra: what a guard configuration adds about this row (for example ``{"zo": {...}}``).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seconds: float
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamChunk:
    """A piece of a streamed reply; the last one has ``completion`` set (and usually empty text)."""

    text: str
    completion: Completion | None = None


class _QueueStreamer(BaseStreamer):
    """Receives generated token ids from ``generate`` and hands them to the consuming thread."""

    def __init__(self, sink: queue.Queue[Any]) -> None:
        self.sink = sink
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        self.sink.put(value.reshape(-1).tolist())

    def end(self) -> None:
        self.sink.put(None)


@dataclass
class ChatGenerator:
    """Generates chat replies from an already-loaded model.

    Args:
        loaded: the model, tokenizer and generation lock.
        processors: optional factory ``f(prompt_length) -> [LogitsProcessor, ...]`` called once per
            ``generate`` call; guidance stages plug in here.
    """

    loaded: LoadedModel
    processors: ProcessorFactory | None = None
    #: Whether :meth:`stream` releases the same reply as :meth:`generate` (a generator that
    #: rewrites whole replies after generating them, such as ``zo``, sets it False).
    streams: ClassVar[bool] = True
    _eos_ids: set[int] = field(default_factory=set, init=False, repr=False)
    _batcher: MicroBatcher[tuple[Conversation, GenerationSettings, Steering | None], Completion] = field(
        init=False, repr=False
    )

    def __post_init__(self) -> None:
        config_eos = self.loaded.model.generation_config.eos_token_id
        ids = config_eos if isinstance(config_eos, list) else [config_eos]
        tok = self.loaded.tokenizer
        self._eos_ids = {i for i in [*ids, tok.eos_token_id, tok.pad_token_id] if i is not None}
        self._batcher = MicroBatcher(
            lambda requests: self.generate([c for c, _, _ in requests], requests[0][1],
                                           [s for _, _, s in requests]),
            key=lambda request: request[1],
        )

    @property
    def name(self) -> str:
        return self.loaded.name

    # ---- prompts -------------------------------------------------------------------------------
    def encode(self, conversation: Conversation) -> list[int]:
        """Apply the tokenizer's chat template and return token ids.

        The prompt ends with the assistant header, so the model writes a new reply; when the last
        message is an assistant turn, the model continues that turn instead (a prefilled reply).
        """
        messages = normalize_messages(conversation)
        prefill = messages[-1]["role"] == "assistant"  # continue a started reply
        encoded = self.loaded.tokenizer.apply_chat_template(
            messages, add_generation_prompt=not prefill, continue_final_message=prefill,
            tokenize=True,
        )
        ids = encoded["input_ids"] if isinstance(encoded, Mapping) else encoded
        return list(ids)

    def check_fits(self, conversation: Conversation, settings: GenerationSettings) -> int:
        """Validate a conversation and return its prompt length in tokens.

        Raises:
            InvalidMessagesError: the conversation is malformed.
            PromptTooLongError: it does not fit the context window.
        """
        length = len(self.encode(conversation))
        self.budget(length, settings)
        return length

    def budget(self, prompt_length: int, settings: GenerationSettings) -> int:
        """Reply tokens allowed for a prompt of ``prompt_length`` tokens (PromptTooLongError)."""
        window = self.loaded.context_window
        if prompt_length >= window:
            raise PromptTooLongError(
                f"the prompt has {prompt_length} tokens but {self.name} accepts at most {window} "
                f"(prompt + reply); shorten the conversation (drop early turns) and retry"
            )
        return min(settings.max_new_tokens, window - prompt_length)

    def _generate_call(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        settings: GenerationSettings,
        extra_criteria: Sequence[Any] = (),
        streamer: BaseStreamer | None = None,
        steering: Sequence[Steering | None] | None = None,
        extra_processors: Sequence[Any] = (),
    ) -> torch.Tensor:
        """One ``model.generate`` call (the caller holds the lock).

        ``steering`` (one entry per row) is for guided subclasses, which override this method to
        add their processors through ``extra_processors``.
        """
        prompt_length = input_ids.shape[1]
        criteria = StoppingCriteriaList(
            [StopOnStrings(self.loaded.tokenizer, settings.stop, prompt_length), *extra_criteria]
        )
        processors = LogitsProcessorList(
            [*(self.processors(prompt_length) if self.processors else []), *extra_processors]
        )
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        with torch.inference_mode():
            return self.loaded.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=self.budget(prompt_length, settings),
                pad_token_id=self.loaded.tokenizer.pad_token_id,
                stopping_criteria=criteria,
                logits_processor=processors,
                streamer=streamer,
                use_cache=True,
                **settings.generate_kwargs(),
            )

    def _content_length(self, generated: Sequence[int]) -> tuple[int, bool]:
        """Tokens before the first end-of-turn/pad id, and whether one was found."""
        for index, token in enumerate(generated):
            if token in self._eos_ids:
                return index, True
        return len(generated), False

    # ---- batch ---------------------------------------------------------------------------------
    def generate(
        self, conversations: Sequence[Conversation], settings: GenerationSettings,
        steering: Sequence[Steering | None] | None = None,
    ) -> list[Completion]:
        """Generate one reply per conversation, all in one left-padded batch.

        ``steering`` gives each row its own guidance (guided generators only; None: defaults).

        Raises:
            InvalidMessagesError: a conversation is malformed.
            PromptTooLongError: a prompt does not fit the context window.
        """
        if not conversations:
            return []
        encoded = [self.encode(c) for c in conversations]
        for ids in encoded:
            self.budget(len(ids), settings)
        batch = self.loaded.tokenizer.pad({"input_ids": encoded}, return_tensors="pt")
        start = time.perf_counter()
        with self.loaded.lock:
            output = self._generate_call(batch["input_ids"], batch["attention_mask"], settings,
                                         steering=steering)
        seconds = time.perf_counter() - start
        prompt_length = batch["input_ids"].shape[1]
        results = []
        for row, ids in enumerate(encoded):
            text, n, reason = self.decode_reply(output[row, prompt_length:].tolist(), settings)
            results.append(Completion(text, len(ids), n, reason, seconds))
        return results

    def decode_reply(
        self, generated: Sequence[int], settings: GenerationSettings
    ) -> tuple[str, int, str]:
        """Turn generated ids (one row, prompt excluded) into the reply.

        Returns:
            The text (up to the end of turn, cut before any stop sequence), the number of content
            tokens, and the finish reason (``"stop"`` or ``"length"``).
        """
        n, ended = self._content_length(generated)
        raw = self.loaded.tokenizer.decode(list(generated[:n]), skip_special_tokens=True)
        text, hit = trim_at_stop(raw, settings.stop)
        return text, n, "stop" if ended or hit else "length"

    def submit(self, conversation: Conversation, settings: GenerationSettings,
               steering: Steering | None = None) -> Completion:
        """Generate one reply, batched with concurrent ``submit`` calls that share ``settings``.

        Requests with different ``steering`` share a batch (one preference per row).

        Thread-safe; this is what the LangChain chat model calls, so ``batch`` and concurrent
        ``ainvoke`` calls become one batched forward per token.
        """
        self.check_fits(conversation, settings)  # a bad request fails alone, not its batch
        return self._batcher((conversation, settings, steering))

    # ---- streaming -----------------------------------------------------------------------------
    def stream(self, conversation: Conversation, settings: GenerationSettings,
               steering: Steering | None = None, cancel: threading.Event | None = None
               ) -> Generator[StreamChunk, None, None]:
        """Stream one reply as text deltas; the final chunk carries the :class:`Completion`.

        Generation runs in a worker thread; closing the iterator early stops it, and so does
        setting ``cancel`` (from any thread: the client went away), before the next token. A
        cancelled stream still ends with its final chunk (finish reason ``length``).
        """
        ids = self.encode(conversation)
        self.budget(len(ids), settings)
        tokens: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()  # ours: set when the consumer is done or went away
        events = (stop,) if cancel is None else (stop, cancel)
        failure: list[BaseException] = []
        input_ids = torch.tensor([ids])

        def work() -> None:
            try:
                with self.loaded.lock:
                    self._generate_call(
                        input_ids, torch.ones_like(input_ids), settings,
                        extra_criteria=[CancelCriteria(*events)], streamer=_QueueStreamer(tokens),
                        steering=[steering],
                    )
            except BaseException as exc:  # handed to the consumer, re-raised there
                failure.append(exc)
                tokens.put(None)

        start = time.perf_counter()
        worker = threading.Thread(target=work, name="psa-guard-stream", daemon=True)
        worker.start()
        trimmer = StopTrimmer(settings.stop)
        generated: list[int] = []
        emitted = ""
        ended = False
        try:
            while (item := tokens.get()) is not None:
                if ended or trimmer.stopped:
                    continue
                for token in item:
                    if token in self._eos_ids:
                        ended = True
                        break
                    generated.append(token)
                text = self.loaded.tokenizer.decode(generated, skip_special_tokens=True)
                if text.endswith("\ufffd"):  # an incomplete multi-byte character: wait
                    continue
                delta, emitted = text[len(emitted):], text
                out = trimmer.feed(delta)
                if out:
                    yield StreamChunk(out)
                if trimmer.stopped or ended:
                    stop.set()
            if failure:
                raise failure[0]
            text = self.loaded.tokenizer.decode(generated, skip_special_tokens=True)
            tail = trimmer.feed(text[len(emitted):]) + trimmer.flush()
            reason = "stop" if ended or trimmer.stopped else "length"
            completion = Completion(
                trim_at_stop(text, settings.stop)[0], len(ids), len(generated), reason,
                time.perf_counter() - start,
            )
            yield StreamChunk(tail, completion)
        finally:
            stop.set()
            worker.join()
