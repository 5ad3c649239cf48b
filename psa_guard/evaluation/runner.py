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

from tqdm.auto import tqdm

from psa_guard.datasets.suites import SuitePrompt, get_suite, load_suite
from psa_guard.errors import ConfigurationError
from psa_guard.evaluation.cache import CacheRecord, CompletionCache, completion_key, settings_key
from psa_guard.evaluation.judges import JudgePanel, Verdict
from psa_guard.evaluation.labels import config_label
from psa_guard.generation import Completion, GenerationSettings
from psa_guard.loading import LoadedModel
from psa_guard.pipeline import RequestOptions, RequestPipeline
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


@dataclass(frozen=True)
class JudgedItem:
    """One prompt's reply under one configuration, with the judges' verdict."""

    config: str
    suite: str
    kind: str
    id: str
    prompt: str
    text: str
    completion_tokens: int
    finish_reason: str
    verdict: Verdict


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
            records.append(CacheRecord(config, model, prompts[i].prompt, skey,
                                       {"text": completion.text,
                                        "prompt_tokens": completion.prompt_tokens,
                                        "completion_tokens": completion.completion_tokens,
                                        "finish_reason": completion.finish_reason,
                                        "seconds": completion.seconds}))
        cache.append(records)
        stats.generated += len(batch)
        bar.update(len(batch))
    return [r for r in results if r is not None]


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
    pending: list[tuple[str, str, str, SuitePrompt, Completion]] = []
    with tqdm(total=total, desc="replies", unit="reply", disable=not progress) as bar:
        for name_of_config in request.configs:
            config = config_label(name_of_config, request.steering)
            fingerprint = get_config(name_of_config).fingerprint(request.methods)
            key_model = f"{model}#{fingerprint}" if fingerprint else model
            pipeline = RequestPipeline(name_of_config, methods=request.methods,
                                       loader=lambda _: loaded)
            for name, prompts in suites.items():
                bar.set_postfix_str(f"{config}/{name}")
                completions = _complete(pipeline, request.steering, config, key_model, prompts,
                                        request.settings, request.batch_size, cache, stats, bar)
                pending.extend((config, name, p.kind, p, c) for p, c in zip(prompts, completions))
    start = time.perf_counter()
    verdicts = panel.judge([p.prompt for *_, p, _ in pending], [c.text for *_, c in pending],
                           progress=progress)
    judge_seconds = time.perf_counter() - start
    items = [
        JudgedItem(config, name, kind, p.id, p.prompt, c.text, c.completion_tokens,
                   c.finish_reason, verdict)
        for (config, name, kind, p, c), verdict in zip(pending, verdicts)
    ]
    logger.info("eval done: %d replies (%d reused, %d generated, %d corrupted cache lines)",
                len(items), stats.reused, stats.generated, stats.corrupted)
    return EvalRun(request, model, items, stats, judge_seconds)
