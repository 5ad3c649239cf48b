"""The cost of the guarded application against the raw model, per request, at batch 1 and 8.

Both run the same training-side benign requests (no evaluation prompt), greedy, 96 new tokens,
on the same loaded model, alternating raw and guarded rounds so that load on the machine hits
both alike:

* raw: ``RequestPipeline("base")``, no policy (``ChatPSAGuard(raw=True)``);
* app: the default guarded application (``RequestPipeline(None, policy="general_assistant")``:
  DiReg, the input check, the held-back output check at every release point).

The safety stage is every moderation call of the guarded run (input scores, the output check's
prefixes), timed inside the scorer. Goals (issue 17): the safety stage at most 10% of a guarded
request's time, the app at most 1.25x the raw model's time per request.

Usage: ``python benchmarks/bench_app.py [--requests 16] [--out docs/app_bench.json]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from psa_guard.core.atomic import write_atomic
from psa_guard.datasets.trainside import training_benign
from psa_guard.generation import GenerationSettings
from psa_guard.moderation.local import LazyDefaultScorer
from psa_guard.pipeline import RequestOptions, RequestPipeline


class TimedScorer:
    """A scorer that adds up the seconds spent in it (the safety stage)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds, self.texts = inner, 0.0, 0
        self.name = getattr(inner, "name", "scorer")

    def _timed(self, method: str, texts: Sequence[str]) -> Any:
        start = time.perf_counter()
        try:
            return getattr(self.inner, method)(texts)
        finally:
            self.seconds += time.perf_counter() - start
            self.texts += len(texts)

    def score(self, texts: Sequence[str]) -> list[float]:
        return self._timed("score", texts)

    def score_detailed(self, texts: Sequence[str]) -> Any:
        return self._timed("score_detailed", texts)


def run_round(pipeline: RequestPipeline, prompts: list[str], batch: int,
              settings: GenerationSettings) -> tuple[float, int]:
    """Seconds for all ``prompts`` in batches of ``batch`` (batch 1: one ``run`` each), tokens."""
    options = RequestOptions(settings=settings)
    start = time.perf_counter()
    tokens = 0
    if batch == 1:
        replies = [pipeline.run(p, options) for p in prompts]
    else:
        replies = []
        for i in range(0, len(prompts), batch):
            replies += pipeline.run_batch([(p, options) for p in prompts[i:i + batch]])
    for reply in replies:
        tokens += reply.completion.completion_tokens if reply.completion else 0
    return time.perf_counter() - start, tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16, help="requests per round")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("docs/app_bench.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prompts = [p.prompt for p in training_benign(args.requests, seed=11)]
    settings = GenerationSettings(max_new_tokens=args.tokens)
    scorer = TimedScorer(LazyDefaultScorer())
    raw = RequestPipeline("base", threads=args.threads)
    app = RequestPipeline(None, threads=args.threads, policy="general_assistant", scorer=scorer)
    run_round(raw, prompts[:2], 2, GenerationSettings(max_new_tokens=4))  # warm up both
    run_round(app, prompts[:2], 2, GenerationSettings(max_new_tokens=4))
    results: dict[str, Any] = {}
    for batch in (1, 8):
        raw_s, raw_tokens = run_round(raw, prompts, batch, settings)
        scorer.seconds = 0.0
        app_s, app_tokens = run_round(app, prompts, batch, settings)
        safety = scorer.seconds
        n = len(prompts)
        results[f"batch_{batch}"] = {
            "requests": n,
            "raw_s_per_request": round(raw_s / n, 3),
            "app_s_per_request": round(app_s / n, 3),
            "ratio": round(app_s / raw_s, 3),
            "safety_stage_s_per_request": round(safety / n, 4),
            "safety_share": round(safety / app_s, 4),
            "raw_tokens": raw_tokens, "app_tokens": app_tokens,
            "raw_s_per_token": round(raw_s / max(raw_tokens, 1), 4),
            "app_s_per_token": round(app_s / max(app_tokens, 1), 4),
        }
        r = results[f"batch_{batch}"]
        print(f"batch {batch}: raw {r['raw_s_per_request']:.2f} s/request, app "
              f"{r['app_s_per_request']:.2f} s/request ({r['ratio']:.2f}x; tokens {raw_tokens} vs "
              f"{app_tokens}); safety stage {r['safety_stage_s_per_request'] * 1000:.0f} ms/request "
              f"= {100 * r['safety_share']:.1f}% of the guarded time")
    record = {"command": "python benchmarks/bench_app.py", "threads": args.threads,
              "tokens": args.tokens, "machine": f"{platform.machine()}, {platform.processor()}",
              "generator": app.generator().name, "results": results}
    write_atomic(args.out, json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
