"""Run configurations over suites: generate (through the cache), judge, and collect judged items.

The flow is one-way: suites -> prompts -> cache / generator -> completions -> judges -> items.
:func:`run_eval` takes the model loader and the judge panel as arguments, so tests can run it with
fakes; the CLI passes the real ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from psa_guard.datasets.suites import SuitePrompt, get_suite, load_suite
from psa_guard.errors import ConfigurationError
from psa_guard.evaluation.cache import CacheRecord, CompletionCache, completion_key, settings_key
from psa_guard.evaluation.judges import JudgePanel, Verdict
from psa_guard.evaluation.labels import app_label, config_label
from psa_guard.generation import ChatGenerator, Completion, GenerationSettings
from psa_guard.loading import LoadedModel
from psa_guard.messages import Message
from psa_guard.pipeline import RequestOptions, RequestPipeline
from psa_guard.policy import load_policy
from psa_guard.registry import MethodSettings, get_config
from psa_guard.steering import Steering

__all__ = ["CacheStats", "EvalRequest", "EvalRun", "JudgedItem", "model_id", "run_eval"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate.

    Attributes:
        configs: configuration names (``base``, ...).
        suites: suite names.
        settings: generation settings (greedy by default).
        limit: prompts per suite (seeded sample), or None for whole suites.
        seed: the sampling seed of ``limit``.
        batch_size: prompts per ``generate`` call.
        data: the safety-data folder (None: ``PSA_GUARD_DATA`` or the default).
        steering: preference and beta of guided configurations (``--alpha``/``--beta``), given
            to every request; results are cached and reported under
            :func:`~psa_guard.evaluation.labels.config_label`.
        prompt_sets: named prompt sets run *instead of* ``suites`` (whose names they must be),
            for benchmarks that tune on training-side prompts
            (:mod:`psa_guard.datasets.trainside`); ``limit`` and ``seed`` are then the sets'
            business. ``None``: load ``suites`` from the data folder.
        methods: the methods' settings the configurations are built with (their fingerprint is
            part of the cache key).
        policy: evaluate the guarded application (each configuration under this policy: a
            shipped policy's name or a file) instead of the bare configurations. Generations are
            cached by the messages the model was given, so applications that differ only in
            their policy reuse each other's generations, and the checks run again.
        context: the policy context (None: the policy's default).
        window_chars: the hold-back window of the output check (None: the default).
        label: the name the application is reported under (None: ``config+policy``).
    """

    configs: tuple[str, ...]
    suites: tuple[str, ...]
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    limit: int | None = None
    seed: int = 0
    batch_size: int = 8
    data: str | Path | None = None
    steering: Steering | None = None
    prompt_sets: Mapping[str, Sequence[SuitePrompt]] | None = None
    methods: MethodSettings = field(default_factory=MethodSettings)
    policy: str | Path | None = None
    context: str | None = None
    window_chars: int | None = None
    label: str | None = None

    def validate(self) -> None:
        """Check names and numbers before anything slow happens.

        Raises:
            UnknownConfigError: unknown configuration (lists the valid ones).
            ConfigurationError: unknown suite (lists the valid ones) or bad numbers.
        """
        if not self.configs:
            raise ConfigurationError("give at least one --config")
        if not self.suites:
            raise ConfigurationError("give at least one --suite")
        for name in self.configs:
            config = get_config(name)  # an unknown name lists the valid ones
            if self.steering is not None and not config.guided:
                raise ConfigurationError(
                    f"--alpha/--beta/--risk-threshold steer Pv-Arm guidance, which configuration "
                    f"{name!r} does not use; drop it from --config or drop the steering")
        if self.prompt_sets is None:
            for name in self.suites:
                get_suite(name)
        elif set(self.prompt_sets) != set(self.suites):
            raise ConfigurationError(
                f"prompt_sets names {sorted(self.prompt_sets)} but suites are "
                f"{sorted(self.suites)}; give the same names to both")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or (
            self.batch_size < 1
        ):
            raise ConfigurationError(f"--batch-size must be a positive integer, got {self.batch_size!r}")
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1
        ):
            raise ConfigurationError(f"--limit must be a positive integer, got {self.limit!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigurationError(f"--seed must be a non-negative integer, got {self.seed!r}")
        if self.policy is None and (self.context is not None or self.label is not None):
            raise ConfigurationError("--context and --label name a guarded application; add "
                                     "--policy")
        if self.policy is not None:
            load_policy(self.policy).resolve(self.context)  # unknown names fail now

    def name_of(self, config: str) -> str:
        """The name results of ``config`` are reported under."""
        label = config_label(config, self.steering)
        if self.policy is None:
            return label
        if self.label is not None:
            return self.label if len(self.configs) == 1 else f"{self.label}:{label}"
        return app_label(label, load_policy(self.policy).name, self.context)


@dataclass(frozen=True)
class JudgedItem:
    """One prompt's reply under one configuration (or application), with the judges' verdict.

    ``actions`` are the guard's actions (input check first) in an application run, else empty;
    ``category`` is the prompt's source category (a support message's risk label).
    """

    config: str
    suite: str
    kind: str
    id: str
    prompt: str
    text: str
    completion_tokens: int
    finish_reason: str
    verdict: Verdict
    actions: tuple[str, ...] = ()
    category: str = ""


@dataclass
class CacheStats:
    """How many completions were reused, generated, and found corrupted in the cache."""

    reused: int = 0
    generated: int = 0
    corrupted: int = 0


@dataclass
class EvalRun:
    """The outcome of :func:`run_eval`."""

    request: EvalRequest
    model: str
    items: list[JudgedItem]
    cache: CacheStats
    judge_seconds: float = 0.0


def model_id(loaded: LoadedModel) -> str:
    """The model part of the cache key: the name, plus the path for non-default models."""
    source = loaded.source
    if source is None or source.is_default or source.path is None:
        return loaded.name
    return f"{loaded.name}@{Path(source.path).expanduser().resolve()}"


def _record(config: str, model: str, prompt: Any, skey: dict[str, Any],
            completion: Completion) -> CacheRecord:
    """The cache record of one generated completion."""
    return CacheRecord(config, model, prompt, skey,
                       {"text": completion.text, "prompt_tokens": completion.prompt_tokens,
                        "completion_tokens": completion.completion_tokens,
                        "finish_reason": completion.finish_reason,
                        "seconds": completion.seconds})


def _complete(
    pipeline: RequestPipeline,
    steering: Steering | None,
    config: str,
    model: str,
    prompts: Sequence[SuitePrompt],
    settings: GenerationSettings,
    batch_size: int,
    cache: CompletionCache,
    stats: CacheStats,
    bar: tqdm,
) -> list[Completion]:
    """Completions for ``prompts``: from the cache when present, else generated and appended."""
    skey = settings_key(settings)
    keys = [completion_key(config, model, p.prompt, skey) for p in prompts]
    results: list[Completion | None] = [cache.get(k) for k in keys]
    stats.reused += sum(r is not None for r in results)
    bar.update(sum(r is not None for r in results))
    missing = [i for i, r in enumerate(results) if r is None]
    options = RequestOptions(steering=steering, settings=settings)
    for start in range(0, len(missing), batch_size):
        batch = missing[start:start + batch_size]
        replies = pipeline.run_batch([(prompts[i].prompt, options) for i in batch])
        completions = [reply.completion for reply in replies if reply.completion is not None]
        records = []
        for i, completion in zip(batch, completions):
            results[i] = completion
            records.append(_record(config, model, prompts[i].prompt, skey, completion))
        cache.append(records)
        stats.generated += len(batch)
        bar.update(len(batch))
    return [r for r in results if r is not None]


class _CachedGenerator:
    """A configuration's generator behind the completion cache, keyed by the messages it is
    given (application runs). Attributes other than ``generate`` are the generator's own."""

    def __init__(self, inner: ChatGenerator, cache: CompletionCache, config: str, model: str,
                 guided: bool, stats: CacheStats) -> None:
        self.inner, self.cache, self.config, self.model = inner, cache, config, model
        self.guided, self.stats = guided, stats

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _key(self, messages: list[Message], settings: GenerationSettings,
             steering: Steering | None) -> tuple[Any, dict[str, Any]]:
        # one user turn is keyed by its text, as bare-configuration runs key their prompts
        prompt: Any = (messages[0]["content"] if len(messages) == 1
                       and messages[0]["role"] == "user" else messages)
        skey = settings_key(settings)
        if self.guided and steering is not None:
            skey = {**skey, "steering": repr(steering)}
        return prompt, skey

    def generate(self, conversations: Sequence[list[Message]], settings: GenerationSettings,
                 steering: Sequence[Steering | None] | None = None) -> list[Completion]:
        rows = list(steering) if steering is not None else [None] * len(conversations)
        keyed = [self._key(m, settings, st) for m, st in zip(conversations, rows, strict=True)]
        keys = [completion_key(self.config, self.model, prompt, skey) for prompt, skey in keyed]
        out: list[Completion | None] = [self.cache.get(k) for k in keys]
        missing = [i for i, c in enumerate(out) if c is None]
        self.stats.reused += len(out) - len(missing)
        if missing:
            new = self.inner.generate([conversations[i] for i in missing], settings,
                                      [rows[i] for i in missing])
            records = []
            for i, completion in zip(missing, new, strict=True):
                out[i] = completion
                prompt, skey = keyed[i]
                records.append(_record(self.config, self.model, prompt, skey, completion))
            self.cache.append(records)
            self.stats.generated += len(missing)
        return [c for c in out if c is not None]


class _EvalPipeline(RequestPipeline):
    """The request pipeline of an application run: its generator is cached (see above)."""

    def __init__(self, config: str, wrap: Callable[[ChatGenerator], _CachedGenerator],
                 **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._wrap = wrap
        self._wrapped: _CachedGenerator | None = None

    def generator(self, model: str | None = None) -> ChatGenerator:
        if self._wrapped is None:
            self._wrapped = self._wrap(super().generator(model))
        return self._wrapped  # type: ignore[return-value]  # a ChatGenerator by delegation


def _complete_app(pipeline: RequestPipeline, request: EvalRequest,
                  prompts: Sequence[SuitePrompt], bar: tqdm) -> list[tuple[Completion, tuple[str, ...]]]:
    """The guarded replies of an application (what the user sees) and the guard's actions."""
    options = RequestOptions(context=request.context, steering=request.steering,
                             settings=request.settings)
    out: list[tuple[Completion, tuple[str, ...]]] = []
    for start in range(0, len(prompts), request.batch_size):
        batch = prompts[start:start + request.batch_size]
        for reply in pipeline.run_batch([(p.prompt, options) for p in batch]):
            made = reply.completion
            out.append((Completion(reply.text, made.prompt_tokens if made else 0,
                                   made.completion_tokens if made else 0,
                                   made.finish_reason if reply.delivered and made else "policy",
                                   made.seconds if made else 0.0),
                        tuple(reply.actions)))
        bar.update(len(batch))
    return out


def run_eval(
    request: EvalRequest,
    cache: CompletionCache,
    judges: Callable[[], JudgePanel],
    load: Callable[[], LoadedModel],
    progress: bool = True,
) -> EvalRun:
    """Generate (or reuse) every reply of every configuration on every suite, then judge them.

    Args:
        request: what to run.
        cache: the completion cache (loaded here).
        judges: returns the judge panel; called before any generation, so a judge that fails its
            checksum stops the run before slow work starts.
        load: returns the loaded model (called once, only if something must be generated or
            the model name is needed).
        progress: show tqdm bars.

    Raises:
        UnknownConfigError, ConfigurationError: bad names or numbers (before any work).
        DataError: the data folder or a suite file is missing.
        ChecksumError: a judge file does not match its checksum.
    """
    request.validate()
    if request.prompt_sets is not None:
        suites = {name: list(request.prompt_sets[name]) for name in request.suites}
    else:
        suites = {name: load_suite(name, request.limit, request.seed, request.data)
                  for name in request.suites}
    panel = judges()
    cache.load()
    stats = CacheStats(corrupted=len(cache.corrupted))
    loaded = load()
    model = model_id(loaded)
    total = len(request.configs) * sum(len(v) for v in suites.values())
    pending: list[tuple[str, str, str, SuitePrompt, Completion, tuple[str, ...]]] = []
    with tqdm(total=total, desc="replies", unit="reply", disable=not progress) as bar:
        for name_of_config in request.configs:
            config = config_label(name_of_config, request.steering)
            reported = request.name_of(name_of_config)
            spec = get_config(name_of_config)
            fingerprint = spec.fingerprint(request.methods)
            key_model = f"{model}#{fingerprint}" if fingerprint else model
            if request.policy is None:
                pipeline = RequestPipeline(name_of_config, methods=request.methods,
                                           loader=lambda _: loaded)
            else:
                def wrap(inner: ChatGenerator, config: str = config, key: str = key_model,
                         guided: bool = spec.guided) -> _CachedGenerator:
                    return _CachedGenerator(inner, cache, config, key, guided, stats)

                pipeline = _EvalPipeline(name_of_config, wrap, methods=request.methods,
                                         scorer=request.methods.scorer,
                                         loader=lambda _: loaded, policy=request.policy,
                                         window_chars=request.window_chars)
            for name, prompts in suites.items():
                bar.set_postfix_str(f"{reported}/{name}")
                done: list[tuple[Completion, tuple[str, ...]]]
                if request.policy is None:
                    done = [(c, ()) for c in _complete(
                        pipeline, request.steering, config, key_model, prompts,
                        request.settings, request.batch_size, cache, stats, bar)]
                else:
                    done = _complete_app(pipeline, request, prompts, bar)
                pending.extend((reported, name, p.kind, p, c, actions)
                               for p, (c, actions) in zip(prompts, done, strict=True))
    start = time.perf_counter()
    verdicts = panel.judge([p.plain or p.prompt for *_, p, _, _ in pending],
                           [c.text for *_, c, _ in pending], progress=progress)
    judge_seconds = time.perf_counter() - start
    items = [
        JudgedItem(config, name, kind, p.id, p.prompt, c.text, c.completion_tokens,
                   c.finish_reason, verdict, actions, p.category)
        for (config, name, kind, p, c, actions), verdict in zip(pending, verdicts, strict=True)
    ]
    logger.info("eval done: %d replies (%d reused, %d generated, %d corrupted cache lines)",
                len(items), stats.reused, stats.generated, stats.corrupted)
    return EvalRun(request, model, items, stats, judge_seconds)
