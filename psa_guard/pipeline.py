"""The request pipeline: every front end's one way from messages to a guarded reply.

``ChatPSAGuard``, the agent middleware, ``guard_chat_model``, ``psa-guard generate``, ``chat``,
``demo`` and ``eval`` all build a :class:`RequestPipeline` and call it; none wires a policy, a
scorer, steering or a generator itself. For one request the pipeline:

1. resolves the policy (once per pipeline) and the request's context (once per request);
2. scores the last user turn once, for the input check *and* the risk gate of guided decoding;
3. resolves the request's steering: the context's preference, beta and hard constraint, then
   the caller's overrides (:meth:`RequestOptions.steering`), then the input score as the risk;
4. takes the generator of its configuration from the process-wide cache (built by the registry);
5. generates (batched, streamed, or by a caller's own model);
6. runs the output check, the steered regeneration and the repair.

Without a policy, steps 1, 2 and 6 reduce to the risk score a guided configuration needs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from psa_guard.defaults import DEFAULT_CONFIG, RAW_CONFIG
from psa_guard.errors import HarmVectorError
from psa_guard.generation import ChatGenerator, Completion, Conversation, GenerationSettings
from psa_guard.guard import GuardedReply, PolicyGuard, Screen
from psa_guard.loading import LoadedModel, load_model
from psa_guard.messages import Message, last_user_text, normalize_messages
from psa_guard.moderation.base import ModerationScorer, score_texts
from psa_guard.moderation.local import LazyDefaultScorer
from psa_guard.policy import Policy, ResolvedContext, load_policy
from psa_guard.registry import MethodSettings, build_generator, get_config
from psa_guard.steering import Steering
from psa_guard.tools import choose_tool, fill_arguments, forced_tool, tools_instruction
from psa_guard.zo import make_repairer

__all__ = ["Prepared", "RequestOptions", "RequestPipeline", "clear_generator_cache"]

#: A caller's own model: (messages to send, the request's steering) -> the reply.
ExternalGenerate = Callable[[list[Message], Steering | None], Completion]

logger = logging.getLogger(__name__)

_generators: dict[tuple[Any, ...], ChatGenerator] = {}
#: Generator keys whose default configuration fell back to ``base`` (no harm vector fits).
_fallbacks: set[tuple[Any, ...]] = set()
_generators_lock = threading.Lock()


def clear_generator_cache() -> None:
    """Forget every cached generator (their models stay cached by the loader)."""
    with _generators_lock:
        _generators.clear()
        _fallbacks.clear()


@dataclass(frozen=True)
class RequestOptions:
    """What a caller may set per request.

    Attributes:
        context: the policy context (None: the policy's default).
        locale: the user's locale, for help resources (``"en-GB"``; None: all).
        steering: the caller's preference, beta or risk-gate overrides (guided configurations);
            they win over the context's.
        settings: decoding settings.
        tools: OpenAI-format tool schemas the model may call (rendered into a system turn).
        tool_choice: ``None``/``"auto"``, ``"none"``, ``"any"``/``"required"`` or a tool name.
        model: a model other than the pipeline's (``"default"``, a folder or a ``.gguf``).
    """

    context: str | None = None
    locale: str | None = None
    steering: Steering | None = None
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: Any = None
    model: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A request after its input check, for a caller that generates with its own model.

    Attributes:
        messages: what to send to the model (the steer instruction added when the check says so).
        instruction: that steer instruction alone (None if none), for callers that keep their
            own message objects.
        steering: the request's complete steering (context, overrides, risk), for a
            :class:`ChatPSAGuard` model to decode with.
        answer: the reply when the input check answered alone (then the model is not called).
        screen: the input check (None without a policy).
    """

    messages: list[Message]
    instruction: str | None
    steering: Steering
    answer: GuardedReply | None
    screen: Screen | None


class RequestPipeline:
    """The one request pipeline (see the module docstring). Its constructor does no I/O.

    Args:
        config: a registered configuration (``base``, ``direg``, ``zo``, ``arm``, ``full``), or
            None for the default guarded one (:data:`~psa_guard.defaults.DEFAULT_CONFIG`; on a
            model that no shipped harm vector fits, ``base`` with a warning).
        model: ``"default"`` (the embedded model), a Hugging Face folder or a ``.gguf`` file.
        threads: torch CPU threads.
        policy: a :class:`Policy`, a shipped policy's name or a policy file (None: no checks).
        scorer: the moderation scorer of the checks and the risk gate (None: the local default).
        methods: the methods' settings (DiReg lambda and K, Pv-Arm and ZO defaults).
        locale: the default locale of requests that bring none.
        loader: loads a model by name (default :func:`~psa_guard.loading.load_model`); tests and
            the evaluation harness pass their own.
        window_chars: the hold-back window of the output check (None: the guard's default,
            :data:`~psa_guard.holdback.DEFAULT_WINDOW_CHARS`).
    """

    def __init__(
        self,
        config: str | None = "base",
        *,
        model: str = "default",
        threads: int = 1,
        policy: Policy | str | os.PathLike[str] | None = None,
        scorer: ModerationScorer | None = None,
        methods: MethodSettings | None = None,
        locale: str | None = None,
        loader: Callable[[str], LoadedModel] | None = None,
        window_chars: int | None = None,
    ) -> None:
        self.default_config = config is None  # falls back to base where DiReg cannot apply
        self.config = get_config(DEFAULT_CONFIG if config is None else config)
        self.model = model
        self.threads = threads
        self.policy_source = policy
        self.scorer = scorer
        self.methods = dataclasses.replace(methods or MethodSettings(), scorer=scorer)
        self.locale = locale
        self.loader = loader
        self.window_chars = window_chars
        self._guard: PolicyGuard | None = None
        self._own: dict[tuple[Any, ...], ChatGenerator] = {}
        self._lock = threading.Lock()

    # ---- what the pipeline holds -------------------------------------------------------------
    @property
    def guarded(self) -> bool:
        """Whether a policy applies (replies then carry its checks)."""
        return self.policy_source is not None

    def policy_guard(self) -> PolicyGuard | None:
        """The policy's checks (the policy is read on first use, once)."""
        if self.policy_source is None:
            return None
        with self._lock:
            if self._guard is None:
                guard = PolicyGuard(load_policy(self.policy_source), self.scorer, self.locale)
                if self.window_chars is not None:
                    guard.window_chars = self.window_chars
                self._guard = guard
            return self._guard

    def resolve(self, context: str | None) -> ResolvedContext | None:
        """The context's settings (None without a policy); an unknown context raises
        PolicyError listing the valid ones."""
        guard = self.policy_guard()
        return guard.resolve(context) if guard is not None else None

    def generator(self, model: str | None = None) -> ChatGenerator:
        """The configuration's generator on ``model``, built once per process and shared."""
        name = model or self.model
        # with a caller's loader the generator is this pipeline's own (its models are the
        # caller's); otherwise one per process and key, so concurrent callers share batches
        cache = self._own if self.loader is not None else _generators
        key = self._key(model)
        with _generators_lock:
            if key not in cache:
                loaded = (self.loader(name) if self.loader is not None
                          else load_model(name, threads=self.threads))
                try:
                    cache[key] = build_generator(self.config.name, loaded, self.methods)
                except HarmVectorError as exc:
                    if not self.default_config:
                        raise
                    logger.warning("the default configuration %r cannot apply to %s (%s); "
                                   "using %r: the policy's checks still apply", self.config.name,
                                   loaded.name, exc, RAW_CONFIG)
                    cache[key] = build_generator(RAW_CONFIG, loaded, self.methods)
                    _fallbacks.add(key)
            return cache[key]

    def _key(self, model: str | None) -> tuple[Any, ...]:
        # the default configuration may fall back; an explicit one never shares its entry
        return (model or self.model, self.threads, self.config.name, self.methods,
                id(self.scorer), self.default_config, id(self.loader))

    def config_name(self, model: str | None = None) -> str:
        """The configuration that generates on ``model`` (``base`` where the default one fell
        back); builds the generator if needed."""
        self.generator(model)
        return RAW_CONFIG if self._key(model) in _fallbacks else self.config.name

    # ---- steering ----------------------------------------------------------------------------
    def steering(self, options: RequestOptions, resolved: ResolvedContext | None,
                 risk: float | None) -> Steering:
        """The request's complete steering: context, then the caller's overrides, then the risk."""
        base = resolved.steering() if resolved is not None else Steering()
        merged = base.merged(options.steering)
        if merged.risk is None and risk is not None:
            merged = dataclasses.replace(merged, risk=risk)
        return merged

    def _risks(self, texts: Sequence[str]) -> list[float]:
        """Risk scores for the gate without a policy (one scorer call; fail closed: 1)."""
        scorer = self.scorer if self.scorer is not None else LazyDefaultScorer()
        scores, _ = score_texts(scorer, texts)
        return [1.0 if score is None else score for score in scores]

    # ---- requests ----------------------------------------------------------------------------
    def run(self, messages: Conversation, options: RequestOptions | None = None,
            generate: ExternalGenerate | None = None) -> GuardedReply:
        """One request. Concurrent calls share batched forwards (the generator's micro-batcher).

        Args:
            messages: the conversation (a string is one user turn).
            options: the request's options.
            generate: the caller's own model (default: this pipeline's generator).
        """
        options = options or RequestOptions()
        return self._process([(messages, options)], generate, batched=False)[0]

    def run_batch(self, requests: Sequence[tuple[Conversation, RequestOptions]]
                  ) -> list[GuardedReply]:
        """Many requests, generated in one batch per decoding settings (jobs, eval, demo)."""
        replies: list[GuardedReply | None] = [None] * len(requests)
        groups: dict[GenerationSettings, list[int]] = {}
        for index, (_, options) in enumerate(requests):
            groups.setdefault(options.settings, []).append(index)
        for indices in groups.values():
            done = self._process([requests[i] for i in indices], None, batched=True)
            for index, reply in zip(indices, done, strict=True):
                replies[index] = reply
        return [reply for reply in replies if reply is not None]

    def stream(self, messages: Conversation, options: RequestOptions | None = None,
               cancel: threading.Event | None = None
               ) -> Generator[tuple[str, GuardedReply | None], None, None]:
        """Stream one request: ``(text, None)`` pieces, then ``("", reply)``.

        Text is released only after the output check passed it (with a policy). A generator
        that rewrites whole replies (``zo``) and a request with tools are generated whole and
        then released, so streaming never skips the repair or the tool parsing.

        ``cancel``, set from any thread (the client went away), stops token generation before
        the next token, even inside a held-back output-check window; the text generated so far
        is then checked and the stream ends as usual. Whole-reply requests (above) finish first.
        """
        options = options or RequestOptions()
        generator = self.generator(options.model)
        if not generator.streams or self._tools(options)[0]:
            reply = self.run(messages, options)
            yield reply.text, None
            yield "", reply
            return
        conversation = normalize_messages(messages)
        settings = options.settings
        guard = self.policy_guard()
        if guard is not None:
            screen = guard.screen([(conversation, options.context)], options.locale)[0]
            steering = self._steerings([options], [conversation], [screen])[0]
            repair = (make_repairer(generator, settings, guard.get_scorer(), self.methods.zo)
                      if screen.generates else None)
            yield from guard.stream_screened(
                screen, lambda prepared: generator.stream(prepared, settings, steering, cancel),
                repair=repair)
            return
        steering = self._steerings([options], [conversation], None)[0]
        text = ""
        for chunk in generator.stream(conversation, settings, steering, cancel):
            text += chunk.text
            if chunk.text:
                yield chunk.text, None
            if chunk.completion is not None:
                yield "", GuardedReply(text, "", (), chunk.completion)

    def prepare(self, messages: Conversation, options: RequestOptions | None = None
                ) -> Prepared:
        """The input check of a request whose reply a caller's own model writes (the agent
        middleware); :meth:`review` then checks that reply."""
        options = options or RequestOptions()
        conversation = normalize_messages(messages)
        guard = self.policy_guard()
        if guard is None:
            risk = self._risks([last_user_text(conversation)])[0]
            return Prepared(conversation, None, self.steering(options, None, risk), None, None)
        screen = guard.screen([(conversation, options.context)], options.locale)[0]
        steering = self.steering(options, screen.resolved, _risk(screen))
        instruction = screen.decision.message if screen.decision.action == "steer" else None
        answer = None if screen.generates else screen.answer()
        return Prepared(screen.prepared, instruction, steering, answer, screen)

    def review(self, prepared: Prepared, completion: Completion) -> GuardedReply:
        """The output check of a reply to :meth:`prepare`'s request (an output ``steer`` is
        delivered as it is: the caller's model is not asked again)."""
        if prepared.answer is not None:
            return prepared.answer
        guard = self.policy_guard()
        if guard is None or prepared.screen is None:
            return GuardedReply(completion.text, "", (), completion)
        return guard.complete([prepared.screen], lambda rows: [completion] * len(rows),
                              regenerate=False)[0]

    # ---- the core ----------------------------------------------------------------------------
    def _steerings(self, options: Sequence[RequestOptions], conversations: Sequence[list[Message]],
                   screens: Sequence[Screen] | None) -> list[Steering | None]:
        """Each request's steering.

        With a policy it is complete (context, overrides, input score as risk) whatever the
        configuration, so a caller's own model gets it too. Without one only guided
        configurations need it, and the risk gate's scores are asked here in one call.
        """
        if screens is not None:
            return [self.steering(o, s.resolved, _risk(s)) for o, s in zip(options, screens,
                                                                           strict=True)]
        if not self.config.guided:
            return [None] * len(options)
        rows = [self.steering(o, None, None) for o in options]
        todo = [i for i, row in enumerate(rows) if row.risk is None
                and (row.risk_threshold is None or row.risk_threshold < 1)]
        risks = self._risks([last_user_text(conversations[i]) for i in todo])
        for i, risk in zip(todo, risks, strict=True):
            rows[i] = dataclasses.replace(rows[i], risk=risk)
        return list(rows)

    def _tools(self, options: RequestOptions) -> tuple[list[dict[str, Any]], Any]:
        tools = list(options.tools) if options.tool_choice != "none" else []
        return tools, forced_tool(tools, options.tool_choice) if tools else None

    def _with_tools(self, conversation: list[Message], options: RequestOptions) -> list[Message]:
        tools, forced = self._tools(options)
        if not tools:
            return conversation
        required = forced if forced is None or isinstance(forced, str) else (
            forced["function"]["name"])
        return [{"role": "system", "content": tools_instruction(tools, required)}, *conversation]

    def _process(self, requests: Sequence[tuple[Conversation, RequestOptions]],
                 external: ExternalGenerate | None, batched: bool) -> list[GuardedReply]:
        """Input check, steering, generation, output check for requests sharing settings."""
        options = [o for _, o in requests]
        conversations = [self._with_tools(normalize_messages(m), o) for m, o in requests]
        guard = self.policy_guard()
        screens = None if guard is None else guard.screen(
            [(c, o.context) for c, o in zip(conversations, options, strict=True)],
            locales=[o.locale for o in options])
        steering = self._steerings(options, conversations, screens)

        def generate(rows: list[tuple[int, list[Message]]]) -> list[Completion]:
            if external is not None:
                return [external(messages, steering[i]) for i, messages in rows]
            if batched:
                return self.generator(options[0].model).generate(
                    [m for _, m in rows], options[0].settings, [steering[i] for i, _ in rows])
            return [self._submit(self.generator(options[i].model), messages, options[i],
                                 steering[i]) for i, messages in rows]

        if guard is None or screens is None:
            completions = generate(list(enumerate(conversations)))
            return [GuardedReply(c.text, "", (), c) for c in completions]
        repair = None
        if external is None and any(s.generates for s in screens):
            repair = make_repairer(self.generator(options[0].model), options[0].settings,
                                   guard.get_scorer(), self.methods.zo)
        return guard.complete(screens, generate, repair=repair)

    @staticmethod
    def _submit(generator: ChatGenerator, messages: list[Message], options: RequestOptions,
                steering: Steering | None) -> Completion:
        """One generation: plain, or a forced tool call filled in argument by argument."""
        tools = list(options.tools) if options.tool_choice != "none" else []
        forced = forced_tool(tools, options.tool_choice) if tools else None
        if forced is None:
            return generator.submit(messages, options.settings, steering)
        start = time.perf_counter()
        pieces: list[Completion] = []

        def complete(prefix: str, stops: tuple[str, ...]) -> str:
            step = dataclasses.replace(options.settings, stop=(*options.settings.stop, *stops))
            pieces.append(generator.submit([*messages, {"role": "assistant", "content": prefix}],
                                           step, steering))
            return pieces[-1].text

        tool = choose_tool(tools, complete) if isinstance(forced, str) else forced
        text = fill_arguments(tool, complete)
        return Completion(text, pieces[0].prompt_tokens if pieces else 0,
                          sum(p.completion_tokens for p in pieces), "stop",
                          time.perf_counter() - start)


def _risk(screen: Screen) -> float:
    """The risk of a screened request: its input score (1 when the scorer could not answer:
    fail closed, guidance off)."""
    return 1.0 if screen.score is None else screen.score
