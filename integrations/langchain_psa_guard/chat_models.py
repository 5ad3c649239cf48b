"""``ChatPSAGuard``: a LangChain chat model over a local Hugging Face model, guarded by psa-guard.

Example:
    >>> from langchain_psa_guard import ChatPSAGuard
    >>> llm = ChatPSAGuard(max_tokens=64)          # the embedded SmolLM2-135M-Instruct
    >>> llm.invoke("Say hello in French.").content  # doctest: +SKIP

The constructor does no I/O: weights load lazily on the first call and are cached per process, so
building many instances (as LangChain's standard tests do) costs nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from pydantic import ConfigDict, Field, field_validator

from psa_guard.configs import build_generator, config_names
from psa_guard.errors import ConfigurationError, InvalidMessagesError
from psa_guard.generation import ChatGenerator, Completion, GenerationSettings
from psa_guard.loading import load_model

__all__ = ["ChatPSAGuard"]

logger = logging.getLogger(__name__)

_SETTING_KEYS = {"temperature", "max_tokens", "top_p", "seed", "stop"}
_ROLE_OF = {"human": "user", "ai": "assistant", "system": "system"}
_generators: dict[tuple[str, str, int], ChatGenerator] = {}
_generators_lock = threading.Lock()
# Async calls wait here rather than in the event loop's default executor, whose few workers
# (cores + 4) would cap how many concurrent requests the micro-batcher can coalesce.
_async_executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="psa-guard")


def _text_of(message: BaseMessage, index: int) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            raise InvalidMessagesError(
                f"messages[{index}] has a {kind!r} content block; ChatPSAGuard accepts text only"
            )
    return "".join(parts)


def to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """Convert LangChain messages to ``{"role", "content"}`` dicts.

    Raises:
        InvalidMessagesError: a message type or role the chat template cannot render, or non-text
            content.
    """
    converted = []
    for index, message in enumerate(messages):
        if isinstance(message, ChatMessage):
            role = message.role
        elif isinstance(message, (HumanMessage, AIMessage, SystemMessage)):
            role = _ROLE_OF[message.type]
        else:
            raise InvalidMessagesError(
                f"messages[{index}] is a {type(message).__name__}; ChatPSAGuard accepts system, "
                f"human and AI messages"
            )
        converted.append({"role": role, "content": _text_of(message, index)})
    return converted


class ChatPSAGuard(BaseChatModel):
    """A guarded local chat model.

    Setup:
        ``pip install psa-guard`` then ``psa-guard setup`` (or let the first call do it).

    Key init args:
        model: ``"default"`` (SmolLM2-135M-Instruct), a Hugging Face model folder, or a ``.gguf``
            file.
        config: the guard configuration (``base`` = unguided; see ``psa-guard info``).
        temperature: 0 for greedy decoding, else sampling temperature.
        max_tokens: most tokens to generate.
        top_p: nucleus sampling mass.
        seed: makes sampling reproducible.
        stop: default stop sequences.
        threads: torch CPU threads.

    Any of ``model``, ``temperature``, ``max_tokens``, ``top_p``, ``seed`` and ``stop`` can be
    overridden per call: ``llm.invoke("hi", temperature=0.7)`` or ``llm.bind(max_tokens=20)``.
    """

    model_config = ConfigDict(populate_by_name=True, protected_namespaces=())

    model: str = Field(default="default", alias="model_name")
    config: str = "base"
    temperature: float = 0.0
    max_tokens: int = 256
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    threads: int = 1

    @field_validator("config")
    @classmethod
    def _known_config(cls, value: str) -> str:
        if value not in config_names():
            raise ValueError(f"unknown config {value!r}; valid: {', '.join(config_names())}")
        return value

    def model_post_init(self, context: Any, /) -> None:
        # Validate decoding settings at construction (no I/O happens here).
        self._settings({})

    @property
    def _llm_type(self) -> str:
        return "psa-guard"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model, "config": self.config, "temperature": self.temperature,
            "max_tokens": self.max_tokens, "top_p": self.top_p, "seed": self.seed,
            "stop": self.stop,
        }

    # ---- wiring --------------------------------------------------------------------------------
    def _generator(self, model: str | None = None) -> ChatGenerator:
        key = (model or self.model, self.config, self.threads)
        with _generators_lock:  # one generator (and so one micro-batcher) per key
            if key not in _generators:
                loaded = load_model(key[0], threads=self.threads)
                _generators[key] = build_generator(self.config, loaded)
            return _generators[key]

    def _settings(self, overrides: dict[str, Any]) -> GenerationSettings:
        values = {
            "temperature": self.temperature, "max_tokens": self.max_tokens, "top_p": self.top_p,
            "seed": self.seed, "stop": self.stop,
        }
        values.update({k: v for k, v in overrides.items() if v is not None or k == "seed"})
        return GenerationSettings(
            max_new_tokens=values["max_tokens"],
            temperature=values["temperature"],
            top_p=values["top_p"],
            seed=values["seed"],
            stop=tuple(values["stop"] or ()),
        )

    def _split_kwargs(
        self, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[str | None, GenerationSettings]:
        unknown = set(kwargs) - _SETTING_KEYS - {"model"}
        unknown = {k for k in unknown if not k.startswith("ls_")}
        if unknown:
            raise ConfigurationError(
                f"unsupported ChatPSAGuard call argument(s): {', '.join(sorted(unknown))}; "
                f"supported: model, {', '.join(sorted(_SETTING_KEYS))}"
            )
        overrides = {k: kwargs[k] for k in _SETTING_KEYS if k in kwargs}
        if stop is not None:
            overrides["stop"] = stop
        return kwargs.get("model"), self._settings(overrides)

    @staticmethod
    def _metadata(generator: ChatGenerator, config: str, completion: Completion) -> dict[str, Any]:
        return {
            "model_name": generator.name,
            "model_provider": "psa-guard",
            "config": config,
            "finish_reason": completion.finish_reason,
        }

    @staticmethod
    def _usage(completion: Completion) -> UsageMetadata:
        return UsageMetadata(
            input_tokens=completion.prompt_tokens,
            output_tokens=completion.completion_tokens,
            total_tokens=completion.prompt_tokens + completion.completion_tokens,
        )

    # ---- batching -------------------------------------------------------------------------------
    def batch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[BaseMessage]:
        """Like ``Runnable.batch``, but every input runs at once so they share batched forwards.

        LangChain's default thread pool has ``cores + 4`` workers, which would split a batch of 8
        into uneven groups; unless ``max_concurrency`` is given, it is set to the batch size.
        """
        if isinstance(config, list):
            config = [dict(c) for c in config]  # type: ignore[misc]
            if config:
                config[0].setdefault("max_concurrency", len(inputs))  # type: ignore[typeddict-item]
        else:
            config = dict(config or {})  # type: ignore[assignment]
            config.setdefault("max_concurrency", len(inputs))  # type: ignore[union-attr]
        return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)

    # ---- BaseChatModel -------------------------------------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        model, settings = self._split_kwargs(stop, kwargs)
        generator = self._generator(model)
        completion = generator.submit(to_chat_dicts(messages), settings)
        message = AIMessage(
            content=completion.text,
            usage_metadata=self._usage(completion),
            response_metadata=self._metadata(generator, self.config, completion),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = functools.partial(self._generate, messages, stop, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(_async_executor, call)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        model, settings = self._split_kwargs(stop, kwargs)
        generator = self._generator(model)
        for piece in generator.stream(to_chat_dicts(messages), settings):
            if piece.completion is None:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece.text))
                if run_manager:
                    run_manager.on_llm_new_token(piece.text, chunk=chunk)
                yield chunk
                continue
            final = ChatGenerationChunk(
                message=AIMessageChunk(
                    content=piece.text,
                    usage_metadata=self._usage(piece.completion),
                    response_metadata=self._metadata(generator, self.config, piece.completion),
                    chunk_position="last",
                )
            )
            if run_manager and piece.text:
                run_manager.on_llm_new_token(piece.text, chunk=final)
            yield final
