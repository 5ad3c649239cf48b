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
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolCallChunk,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from psa_guard.attributes import parse_preference
from psa_guard.defaults import DEFAULT_CONFIG, DEFAULT_POLICY, RAW_CONFIG, raw_conflict
from psa_guard.direg.config import DiRegSettings
from psa_guard.errors import ConfigurationError, InvalidMessagesError
from psa_guard.generation import Completion, GenerationSettings
from psa_guard.guard import GuardedReply
from psa_guard.pipeline import RequestOptions, RequestPipeline
from psa_guard.policy import Policy
from psa_guard.registry import MethodSettings, config_names, get_config
from psa_guard.steering import Steering
from psa_guard.tools import forced_tool, parse_tool_calls, render_tool_call
from psa_guard.zo.config import ZOSettings

__all__ = ["ChatPSAGuard"]

logger = logging.getLogger(__name__)

_SETTING_KEYS = {"temperature", "max_tokens", "top_p", "seed", "stop"}
_ROUTING_KEYS = {"context", "locale"}
_STEERING_KEYS = {"alpha", "beta", "risk_threshold"}
#: A complete :class:`~psa_guard.steering.Steering` handed over by a caller that resolved it (the
#: agent middleware passes its policy context's this way).
_HANDED_KEYS = {"steering"}
_TOOL_KEYS = {"tools", "tool_choice"}
_CALL_BLOCKS = {"tool_use", "tool_call", "function_call"}
_ROLE_OF = {"human": "user", "ai": "assistant", "system": "system"}
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
        elif isinstance(block, dict) and block.get("type") in _CALL_BLOCKS:
            continue  # a tool call, rendered from message.tool_calls instead
        else:
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            raise InvalidMessagesError(
                f"messages[{index}] has a {kind!r} content block; ChatPSAGuard accepts text only"
            )
    return "".join(parts)


def to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """Convert LangChain messages to ``{"role", "content"}`` dicts.

    AI messages with tool calls keep them as ``<tool_call>`` blocks, and tool results become
    ``tool`` turns, so an agent's history renders in the chat template.

    Raises:
        InvalidMessagesError: a message type or role the chat template cannot render, or non-text
            content.
    """
    converted = []
    for index, message in enumerate(messages):
        if isinstance(message, ChatMessage):
            role = message.role
        elif isinstance(message, ToolMessage):
            role = "tool"
        elif isinstance(message, (HumanMessage, AIMessage, SystemMessage)):
            role = _ROLE_OF[message.type]
        else:
            raise InvalidMessagesError(
                f"messages[{index}] is a {type(message).__name__}; ChatPSAGuard accepts system, "
                f"human, AI and tool messages"
            )
        text = _text_of(message, index)
        if isinstance(message, AIMessage) and message.tool_calls:
            calls = "".join(render_tool_call(c["name"], c["args"]) for c in message.tool_calls)
            text = f"{text}\n{calls}" if text else calls
        converted.append({"role": role, "content": text})
    return converted


def _preference(value: Any, name: str = "alpha") -> tuple[float, ...] | None:
    """``alpha`` as normalised weights: None, ``"empathy=0.4,helpfulness=0.6"`` or a dict."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = ",".join(f"{k}={v}" for k, v in value.items())
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{name} must be a dict such as {{'empathy': 0.4, 'helpfulness': 0.6}} or the string "
            f"'empathy=0.4,helpfulness=0.6'; got {type(value).__name__}"
        )
    return parse_preference(value, name)


class ChatPSAGuard(BaseChatModel):
    """A guarded local chat model.

    Setup:
        ``pip install psa-guard`` then ``psa-guard setup`` (or let the first call do it).

    Key init args:
        model: ``"default"`` (SmolLM2-135M-Instruct), a Hugging Face model folder, or a ``.gguf``
            file.
        config: the guard configuration (default: ``direg``, the default guarded one; ``base``
            = unpatched, unguided; see ``psa-guard info``).
        policy: the policy checks (default: the shipped ``general_assistant``; None: none).
        raw: the raw model in one argument: ``ChatPSAGuard(raw=True)`` is ``config="base"``
            without a policy.
        temperature: 0 for greedy decoding, else sampling temperature.
        max_tokens: most tokens to generate.
        top_p: nucleus sampling mass.
        seed: makes sampling reproducible.
        stop: default stop sequences.
        threads: torch CPU threads.
        alpha: Pv-Arm preference for guided configurations (``arm``, ``full``): a dict such as
            ``{"empathy": 0.4, "helpfulness": 0.6}`` or ``"empathy=0.4,helpfulness=0.6"``
            (unnamed attributes 0; normalised). With a policy, the context's preference applies
            unless ``alpha`` is given.
        beta: Pv-Arm guidance temperature (weight ``1 / beta``); same precedence as ``alpha``.
        risk_threshold: the risk gate: a request whose last user turn the moderation scorer
            scores above it is decoded without Pv-Arm (default 0.5, or the policy context's
            ``hard_constraint.risk_threshold``; 1 switches the gate off). Same precedence.

    With a guided configuration, each request is steered by its policy context (preference,
    beta, and the hard constraint's nucleus, blocked terms and risk gate), overridden by
    ``alpha``/``beta``/``risk_threshold`` given at construction or per call
    (``llm.invoke("hi", alpha={"empathy": 1})``). ``response_metadata["arm"]`` reports the
    request's risk and whether it was guided.

    Any of ``model``, ``temperature``, ``max_tokens``, ``top_p``, ``seed`` and ``stop`` can be
    overridden per call: ``llm.invoke("hi", temperature=0.7)`` or ``llm.bind(max_tokens=20)``.
    """

    model_config = ConfigDict(populate_by_name=True, protected_namespaces=())

    model: str = Field(default="default", alias="model_name")
    config: str | None = None
    """The guard configuration (None: the default guarded one, ``direg``; see ``psa-guard
    info``)."""
    raw: bool = False
    """The raw model: ``config="base"`` and no policy (no checks, no patch)."""
    temperature: float = 0.0
    max_tokens: int = 256
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    threads: int = 1
    direg_lambda: float | None = None
    """DiReg strength (with ``config="direg"``; None: the shipped default, docs/direg.md)."""
    direg_k: float | None = None
    """DiReg top-K % of the harm vector kept (with ``config="direg"``; None: the default)."""
    policy: Any = Field(default=DEFAULT_POLICY, exclude=True)
    """A :class:`psa_guard.policy.Policy`, a shipped policy's name or a policy file (read on first
    use). Default: the shipped ``general_assistant``; None: no checks."""
    context: str | None = None
    """Default policy context (None: the policy's default); override per call."""
    locale: str | None = None
    """User locale for help resources (``en-GB``); override per call."""
    scorer: Any = Field(default=None, exclude=True)
    """Moderation scorer for the policy checks (None: the local default scorer)."""
    zo_settings: Any = Field(default=None, exclude=True)
    """:class:`psa_guard.zo.ZOSettings` for the policy's ``repair`` action (None: defaults)."""
    alpha: dict[str, float] | str | None = None
    """Pv-Arm preference (guided configurations only); see the class docstring."""
    beta: float | None = None
    """Pv-Arm guidance temperature (guided configurations only)."""
    risk_threshold: float | None = None
    """Pv-Arm risk gate (guided configurations only); see the class docstring."""

    _pipeline: RequestPipeline | None = PrivateAttr(default=None)
    _unchecked: RequestPipeline | None = PrivateAttr(default=None)

    @field_validator("policy")
    @classmethod
    def _policy_type(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, (Policy, str, Path)):
            raise ValueError(f"policy must be a Policy, a shipped policy's name or a policy file "
                             f"path, got {type(value)}")
        return value

    @field_validator("config")
    @classmethod
    def _known_config(cls, value: str | None) -> str | None:
        if value is not None and value not in config_names():
            raise ValueError(f"unknown config {value!r}; valid: {', '.join(config_names())}")
        return value

    def model_post_init(self, context: Any, /) -> None:
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ConfigurationError(f"threads must be a positive integer, got {self.threads!r}")
        if self.raw:
            conflict = raw_conflict(self.config, self.policy,
                                    policy_given="policy" in self.model_fields_set)
            if conflict:
                raise ConfigurationError(conflict)
            self.config, self.policy = RAW_CONFIG, None
        # Validate decoding settings at construction (no I/O happens here).
        self._settings({})
        self._methods()  # validates direg_lambda/direg_k and zo_settings
        self._explicit_steering(self.alpha, self.beta, self.risk_threshold)  # validates them

    @property
    def configuration(self) -> str:
        """The configuration's name (``config``, or the default guarded one)."""
        return self.config if self.config is not None else DEFAULT_CONFIG

    @property
    def _llm_type(self) -> str:
        return "psa-guard"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model, "config": self.configuration, "temperature": self.temperature,
            "max_tokens": self.max_tokens, "top_p": self.top_p, "seed": self.seed,
            "stop": self.stop, "policy": self._policy_name(), "context": self.context,
            "alpha": self.alpha, "beta": self.beta, "risk_threshold": self.risk_threshold,
        }

    def _policy_name(self) -> str | None:
        if self.policy is None:
            return None
        return self.policy.name if isinstance(self.policy, Policy) else str(self.policy)

    # ---- wiring --------------------------------------------------------------------------------
    def _methods(self) -> MethodSettings:
        """The methods' settings: DiReg strength (configurations that patch) and ZO's."""
        direg = DiRegSettings()
        if self.direg_lambda is not None or self.direg_k is not None:
            if "direg" not in get_config(self.configuration).uses:
                patching = ", ".join(n for n in config_names() if "direg" in get_config(n).uses)
                raise ConfigurationError(
                    f"direg_lambda/direg_k set the DiReg patch, which "
                    f"config={self.configuration!r} "
                    f"does not apply; set config to one of {patching}, or drop them"
                )
            direg = DiRegSettings(
                direg.lam if self.direg_lambda is None else self.direg_lambda,
                direg.k_percent if self.direg_k is None else self.direg_k)
        if self.zo_settings is not None and not isinstance(self.zo_settings, ZOSettings):
            raise ConfigurationError(
                f"zo_settings must be a psa_guard.zo.ZOSettings, got {type(self.zo_settings)}")
        return MethodSettings(direg=direg, zo=self.zo_settings or ZOSettings())

    def pipeline(self) -> RequestPipeline:
        """The request pipeline every call goes through (built on first use; no I/O)."""
        if self._pipeline is None:
            self._pipeline = RequestPipeline(
                self.config, model=self.model, threads=self.threads, policy=self.policy,
                scorer=self.scorer, methods=self._methods(), locale=self.locale)
        return self._pipeline

    def _explicit_steering(self, alpha: Any, beta: float | None,
                           risk_threshold: float | None = None) -> Steering | None:
        """``alpha``/``beta``/``risk_threshold`` as a Steering (None if none is set); refused on
        unguided configurations."""
        if alpha is None and beta is None and risk_threshold is None:
            return None
        if not get_config(self.configuration).guided:
            raise ConfigurationError(
                f"alpha/beta/risk_threshold steer Pv-Arm guidance, which "
                f"config={self.configuration!r} "
                "does not use; set config='arm' or config='full'"
            )
        return Steering(_preference(alpha), beta, risk_threshold=risk_threshold)

    def _settings(self, overrides: dict[str, Any]) -> GenerationSettings:
        values: dict[str, Any] = {
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

    def _split_kwargs(self, stop: list[str] | None, kwargs: dict[str, Any]) -> RequestOptions:
        """Validate call arguments into the request's options."""
        known = _SETTING_KEYS | _ROUTING_KEYS | _TOOL_KEYS | _STEERING_KEYS | _HANDED_KEYS
        unknown = {k for k in set(kwargs) - known - {"model"} if not k.startswith("ls_")}
        if unknown:
            raise ConfigurationError(
                f"unsupported ChatPSAGuard call argument(s): {', '.join(sorted(unknown))}; "
                f"supported: model, context, locale, alpha, beta, risk_threshold, tools, "
                f"tool_choice, {', '.join(sorted(_SETTING_KEYS))}"
            )
        overrides = {k: kwargs[k] for k in _SETTING_KEYS if k in kwargs}
        if stop is not None:
            overrides["stop"] = stop
        steering = self._explicit_steering(
            kwargs.get("alpha", self.alpha), kwargs.get("beta", self.beta),
            kwargs.get("risk_threshold", self.risk_threshold))
        handed = kwargs.get("steering")
        if handed is not None:
            if not isinstance(handed, Steering):
                raise ConfigurationError(
                    f"steering must be a psa_guard.Steering, got {type(handed).__name__}")
            steering = handed.merged(steering)  # explicit alpha/beta still win
        tools = tuple(kwargs.get("tools") or ())
        if tools:
            forced_tool(list(tools), kwargs.get("tool_choice"))  # an unknown name fails here
        return RequestOptions(
            context=kwargs.get("context", self.context),
            locale=kwargs.get("locale", self.locale),
            steering=steering,
            settings=self._settings(overrides),
            tools=tools,
            tool_choice=kwargs.get("tool_choice"),
            model=kwargs.get("model"),
        )

    def _pipeline_for(self, kwargs: dict[str, Any]) -> RequestPipeline:
        """The pipeline of a call: this model's, or, when a caller hands over a complete
        ``steering`` (the agent middleware, which applies its own policy around this model), the
        same generator without this model's policy checks, so a request is not checked twice
        and the caller's context names are the caller's."""
        if kwargs.get("steering") is None:
            return self.pipeline()
        if self._unchecked is None:
            self._unchecked = RequestPipeline(
                self.configuration if self.config is not None else None, model=self.model,
                threads=self.threads, scorer=self.scorer, methods=self._methods(),
                locale=self.locale)
        return self._unchecked

    def _run(self, messages: list[BaseMessage], options: RequestOptions,
             pipeline: RequestPipeline | None = None) -> AIMessage:
        """One request through the pipeline, shaped as an ``AIMessage``."""
        pipeline = pipeline or self.pipeline()
        reply = pipeline.run(to_chat_dicts(messages), options)
        tools = list(options.tools) if options.tool_choice != "none" else []
        return self._message(reply, tools, options, pipeline)

    def _message(self, reply: GuardedReply, tools: list[dict[str, Any]],
                 options: RequestOptions, pipeline: RequestPipeline | None = None) -> AIMessage:
        pipeline = pipeline or self.pipeline()
        completion = reply.completion
        metadata: dict[str, Any] = {
            "model_name": pipeline.generator(options.model).name,
            "model_provider": "psa-guard", "config": self.configuration,
            "finish_reason": completion.finish_reason if completion else "stop",
        }
        if completion is not None:  # what the configuration adds, e.g. "arm": risk and guidance
            metadata.update({k: v for k, v in completion.extra.items() if k not in metadata})
        if pipeline.guarded:
            metadata["psa_guard"] = reply.metadata()
            metadata["context"] = reply.context
        elif options.context is not None:
            metadata["context"] = options.context
        usage = self._usage(completion) if completion else UsageMetadata(
            input_tokens=0, output_tokens=0, total_tokens=0)
        if not tools:
            return AIMessage(content=reply.text, usage_metadata=usage, response_metadata=metadata)
        parsed = parse_tool_calls(reply.text, tools)
        return AIMessage(
            content=parsed.content, tool_calls=parsed.calls,
            invalid_tool_calls=[{"type": "invalid_tool_call", "name": c["name"], "args": c["args"],
                                 "id": c["id"], "error": c["error"]} for c in parsed.invalid],
            usage_metadata=usage, response_metadata=metadata,
        )

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
    ) -> list[AIMessage]:
        """Like ``Runnable.batch``, but every input runs at once so they share batched forwards.

        LangChain's default thread pool has ``cores + 4`` workers, which would split a batch of 8
        into uneven groups; unless ``max_concurrency`` is given, it is set to the batch size.
        """
        if isinstance(config, list):
            config = [dict(c) for c in config]  # type: ignore[misc]
            if config:
                config[0].setdefault("max_concurrency", len(inputs))
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
        message = self._run(messages, self._split_kwargs(stop, kwargs), self._pipeline_for(kwargs))
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
        options = self._split_kwargs(stop, kwargs)
        pipeline = self._pipeline_for(kwargs)
        tools = list(options.tools) if options.tool_choice != "none" else []
        if tools:
            # Tool calls are parsed from the whole reply: one final chunk carries them.
            message = self._run(messages, options, pipeline)
            yield ChatGenerationChunk(message=AIMessageChunk(
                content=message.content, usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata, chunk_position="last",
                tool_call_chunks=[
                    ToolCallChunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
                    for i, c in enumerate(message.tool_calls)
                ],
            ))
            return
        for text, reply in pipeline.stream(to_chat_dicts(messages), options):
            if reply is None:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                if run_manager and text:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk
                continue
            final = self._message(reply, [], options, pipeline)
            yield ChatGenerationChunk(message=AIMessageChunk(
                content=text, usage_metadata=final.usage_metadata,
                response_metadata=final.response_metadata, chunk_position="last",
            ))

    # ---- routing from RunnableConfig ----------------------------------------------------------
    @staticmethod
    def _configurable(config: RunnableConfig | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Lift ``configurable`` context, locale, alpha and beta into call kwargs (kwargs win)."""
        configurable = (config or {}).get("configurable") or {}
        lifted = {k: configurable[k] for k in _ROUTING_KEYS | _STEERING_KEYS if k in configurable}
        return {**lifted, **kwargs}

    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        return super().invoke(input, config, stop=stop, **self._configurable(config, kwargs))

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        return await super().ainvoke(input, config, stop=stop,
                                     **self._configurable(config, kwargs))

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        yield from super().stream(input, config, stop=stop, **self._configurable(config, kwargs))

    async def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        async for chunk in super().astream(input, config, stop=stop,
                                           **self._configurable(config, kwargs)):
            yield chunk

    # ---- tools --------------------------------------------------------------------------------
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | Literal["auto", "any", "none"] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools: their schemas are rendered into a system instruction and calls parsed back.

        Args:
            tools: tools as dicts, pydantic models, functions or LangChain tools.
            tool_choice: ``"auto"``/None (the model decides), ``"none"``, ``"any"``/``"required"``
                (a tool must be called; with one tool its call is prefilled), or a tool name (that
                tool's call is prefilled, so the model only writes the arguments).
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            forced_tool(formatted, tool_choice)  # validate the name now
        return super().bind(tools=formatted, tool_choice=tool_choice, **kwargs)
