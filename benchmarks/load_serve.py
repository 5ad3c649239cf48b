"""Load: 32 concurrent clients against ``psa-guard serve`` for minutes, and row isolation.

``serve`` starts ``psa-guard serve`` (the embedded model by default) in its own process and runs
``--clients`` asyncio clients against it for ``--warmup`` plus ``--duration`` seconds. Each client
sends one request after another (prompts cycled, greedy, ``--max-tokens``; a ``--stream-fraction``
of them streamed over SSE); a 429 is retried after its ``Retry-After``. It reports requests done,
answers by status, errors, p50/p95/p99 latency (and time to first token of streams) over the
measured period, and the server's resident memory (``/proc/PID`` via psutil) every few seconds::

    python benchmarks/load_serve.py serve --duration 300 --json docs/reliability_load.json

Goals (issue 19): no error other than the designed 429s; resident memory at the end, and at its
highest, no more than 10 % above its level after warm-up.

``ainvoke`` sends ``--n`` concurrent ``ainvoke`` to one ``ChatPSAGuard`` (greedy) and compares
each reply with the same prompt's solo reply (rows of a batch must be isolated)::

    python benchmarks/load_serve.py ainvoke --n 16 --max-tokens 32
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

PROMPTS = [
    "Give me three tips for sleeping better.", "What is the capital of Australia?",
    "Explain photosynthesis to a ten-year-old.", "How do I boil an egg?",
    "Suggest a name for a grey cat.", "What is 17 times 23?",
    "Write a haiku about autumn.", "How can I stay focused while studying?",
    "What causes rainbows?", "Give me a quick breakfast idea.",
    "How do plants drink water?", "Why is the sky blue?",
    "I feel lonely since I moved to a new city. Any advice?",
    "My exam went badly and I feel stupid.", "How do I make a cup of tea?",
    "What does a librarian do?",
]


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _bench_serve() -> ModuleType:
    """``benchmarks/bench_serve.py`` (its server launcher; ``benchmarks/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_serve",
                                                  Path(__file__).with_name("bench_serve.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Load:
    """What the clients saw and the server's memory, split at the end of the warm-up."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.measuring = False
        self.latency: dict[str, list[float]] = {"plain": [], "stream": []}
        self.ttft: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors: list[str] = []
        self.tokens = 0
        self.rss: list[tuple[float, int]] = []
        self.rss_after_warmup: int | None = None

    def sample_rss(self, t: float) -> int:
        rss = int(self.process.memory_info().rss)
        self.rss.append((round(t, 1), rss))
        return rss


async def one_request(http: httpx.AsyncClient, load: Load, model: str, prompt: str,
                      stream: bool, max_tokens: int) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "temperature": 0, "stream": stream}
    while True:
        started = time.perf_counter()
        first: float | None = None
        tokens = 0
        try:
            if stream:
                async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                    status = response.status_code
                    done = False
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            done = True
                            continue
                        chunk = json.loads(data)
                        if "error" in chunk:
                            raise RuntimeError(f"stream error: {chunk['error']}")
                        if first is None and chunk["choices"] and chunk["choices"][0]["delta"] \
                                .get("content"):
                            first = time.perf_counter()
                        if chunk.get("usage"):
                            tokens = int(chunk["usage"]["completion_tokens"])
                    if status == 200 and not done:
                        raise RuntimeError("stream ended without [DONE]")
                    retry = response.headers.get("retry-after")
            else:
                response = await http.post("/v1/chat/completions", json=body)
                status = response.status_code
                retry = response.headers.get("retry-after")
                if status == 200:
                    tokens = int(response.json()["usage"]["completion_tokens"])
        except Exception as exc:  # a transport failure or a broken answer: an error
            if load.measuring:
                load.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                load.statuses["exception"] += 1
            return
        elapsed = time.perf_counter() - started
        if load.measuring:
            load.statuses[str(status)] += 1
        if status == 429:  # the designed back-pressure: wait as told, then retry
            await asyncio.sleep(float(retry or 1))
            continue
        if status != 200:
            if load.measuring:
                load.errors.append(f"HTTP {status}")
            return
        if load.measuring:
            load.latency["stream" if stream else "plain"].append(elapsed)
            load.tokens += tokens
            if stream and first is not None:
                load.ttft.append(first - started)
        return


async def client(index: int, url: str, load: Load, args: argparse.Namespace,
                 stop_at: float) -> int:
    rng = random.Random(index)
    done = 0
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout) as http:
        while time.monotonic() < stop_at:
            prompt = PROMPTS[(index + done) % len(PROMPTS)]
            stream = rng.random() < args.stream_fraction
            model = args.policy[(index + done) % len(args.policy)]
            await one_request(http, load, model, prompt, stream, args.max_tokens)
            done += 1
    return done


async def run_load(url: str, load: Load, args: argparse.Namespace) -> dict[str, Any]:
    started = measured_from = time.monotonic()
    warm_end = started + args.warmup
    stop_at = warm_end + args.duration
    tasks = [asyncio.create_task(client(i, url, load, args, stop_at))
             for i in range(args.clients)]
    load.sample_rss(0.0)
    while time.monotonic() < stop_at:
        await asyncio.sleep(min(args.rss_every, max(0.0, stop_at - time.monotonic())))
        now = time.monotonic()
        rss = load.sample_rss(now - started)
        if not load.measuring and now >= warm_end:
            load.measuring = True
            load.rss_after_warmup = rss
            measured_from = now
            print(f"warm-up done after {now - started:.0f} s; RSS {rss / 2**20:.1f} MiB",
                  flush=True)
    measured = time.monotonic() - measured_from
    await asyncio.gather(*tasks)  # let the last requests finish (not counted after stop_at)
    load.sample_rss(time.monotonic() - started)
    return {"measured_seconds": round(measured, 1)}


def cmd_serve(args: argparse.Namespace) -> int:
    bench = _bench_serve()
    options = ["--model", args.model, "--config", args.config, "--threads", "1",
               "--max-queue", str(args.max_queue)]
    for policy in args.policy:
        options += ["--policy", policy]
    with open(args.server_log, "ab") as log:
        process, url = bench.start_server(options, timeout=600, log=log)
    try:
        load = Load(process.pid)
        load.sample_rss(0.0)
        timing = asyncio.run(run_load(url, load, args))
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
    finally:
        bench.stop(process)
    plain, stream = load.latency["plain"], load.latency["stream"]
    both = plain + stream
    base = load.rss_after_warmup or load.rss[0][1]
    end = load.rss[-1][1]
    peak = max(rss for t, rss in load.rss if t >= args.warmup) if load.rss else end
    done = len(both)
    result = {
        "settings": {k: v for k, v in vars(args).items() if k not in {"func", "json",
                                                                    "server_log"}},
        "measured_seconds": timing["measured_seconds"],
        "requests_done": done,
        "requests_per_s": round(done / timing["measured_seconds"], 3),
        "completion_tokens_per_s": round(load.tokens / timing["measured_seconds"], 2),
        "answers_by_status": dict(load.statuses),
        "errors": len(load.errors),
        "error_samples": load.errors[:10],
        "latency_s": {"p50": _percentile(both, 0.5), "p95": _percentile(both, 0.95),
                      "p99": _percentile(both, 0.99), "mean": round(statistics.fmean(both), 3)
                      if both else None},
        "latency_plain_s": {"n": len(plain), "p50": _percentile(plain, 0.5),
                            "p95": _percentile(plain, 0.95)},
        "latency_stream_s": {"n": len(stream), "p50": _percentile(stream, 0.5),
                             "p95": _percentile(stream, 0.95)},
        "ttft_stream_s": {"p50": _percentile(load.ttft, 0.5), "p95": _percentile(load.ttft, 0.95)},
        "rss_mib": {"start": round(load.rss[0][1] / 2**20, 1),
                    "after_warmup": round(base / 2**20, 1), "peak_after_warmup":
                        round(peak / 2**20, 1), "end": round(end / 2**20, 1),
                    "growth_end_pct": round(100 * (end - base) / base, 2),
                    "growth_peak_pct": round(100 * (peak - base) / base, 2)},
        "rss_series": [(t, round(r / 2**20, 1)) for t, r in load.rss],
        "rss_thirds": rss_thirds([(t, r / 2**20) for t, r in load.rss], args.warmup,
                                 base / 2**20),
        "server_metrics_requests": [line for line in metrics.splitlines()
                                    if line.startswith("psa_guard_requests_total")],
    }
    goals = {
        "no_error_but_429": result["errors"] == 0 and set(load.statuses) <= {"200", "429"},
        "rss_within_10pct": result["rss_mib"]["growth_peak_pct"] <= 10.0,
    }
    result["goals"] = goals
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        from psa_guard.core.atomic import write_atomic

        write_atomic(args.json, text + "\n")
    return 0 if all(goals.values()) else 1


def cmd_ainvoke(args: argparse.Namespace) -> int:
    import torch

    from langchain_psa_guard import ChatPSAGuard

    torch.set_num_threads(1)
    llm = ChatPSAGuard(model=args.model, config=args.config, max_tokens=args.max_tokens,
                       temperature=0, policy=args.policy[0] if args.policy else None)
    prompts = [PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else " Be brief.")
               for i in range(args.n)]
    started = time.perf_counter()
    solo = [llm.invoke(prompt).content for prompt in prompts]
    solo_s = time.perf_counter() - started

    async def together() -> list[Any]:
        return await asyncio.gather(*(llm.ainvoke(prompt) for prompt in prompts))

    started = time.perf_counter()
    batched = [m.content for m in asyncio.run(together())]
    batched_s = time.perf_counter() - started
    equal = sum(a == b for a, b in zip(solo, batched, strict=True))
    result = {"n": args.n, "model": args.model, "config": args.config,
              "max_tokens": args.max_tokens, "equal_to_solo": equal,
              "differing": [{"prompt": p, "solo": a, "concurrent": b}
                            for p, a, b in zip(prompts, solo, batched, strict=True) if a != b],
              "solo_seconds": round(solo_s, 2), "concurrent_seconds": round(batched_s, 2)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        from psa_guard.core.atomic import write_atomic

        write_atomic(args.json, text + "\n")
    return 0 if equal == args.n else 1


def rss_thirds(series: Sequence[Sequence[float]], warmup: float, base_mib: float
               ) -> list[dict[str, float]]:
    """The measured period cut in three equal spans: each span's mean resident memory (MiB) and
    its growth over ``base_mib`` (%); whether memory levels off or keeps climbing."""
    samples = [(t, mib) for t, mib in series if t >= warmup]
    if not samples:
        return []
    start, stop = samples[0][0], samples[-1][0]
    span = (stop - start) / 3 or 1.0
    out = []
    for i in range(3):
        low, high = start + i * span, start + (i + 1) * span
        part = [mib for t, mib in samples if low <= t < high or (i == 2 and t == stop)]
        mean = statistics.fmean(part) if part else float("nan")
        out.append({"from_s": round(low, 1), "to_s": round(high, 1), "mean_mib": round(mean, 1),
                    "growth_pct": round(100 * (mean - base_mib) / base_mib, 1)})
    return out


def cmd_rss(args: argparse.Namespace) -> int:
    """Print the memory of a finished ``serve`` run's JSON, by thirds of its measured period."""
    result = json.loads(args.result.read_text(encoding="utf-8"))
    thirds = rss_thirds(result["rss_series"], result["settings"]["warmup"],
                        result["rss_mib"]["after_warmup"])
    print(json.dumps({"rss_mib": result["rss_mib"], "rss_thirds": thirds}, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("serve", cmd_serve), ("ainvoke", cmd_ainvoke)):
        p = sub.add_parser(name)
        p.add_argument("--model", default="default")
        p.add_argument("--config", default="base")
        p.add_argument("--policy", action="append", default=None,
                       help="served policies (repeatable; default general_assistant)")
        p.add_argument("--max-tokens", type=int, default=16)
        p.add_argument("--json", type=Path, default=None)
        p.set_defaults(func=func)
        if name == "serve":
            p.add_argument("--clients", type=int, default=32)
            p.add_argument("--warmup", type=float, default=60.0)
            p.add_argument("--duration", type=float, default=300.0)
            p.add_argument("--stream-fraction", type=float, default=0.25)
            p.add_argument("--max-queue", type=int, default=64)
            p.add_argument("--timeout", type=float, default=600.0)
            p.add_argument("--rss-every", type=float, default=5.0)
            p.add_argument("--server-log", type=Path, default=Path(os.devnull))
        else:
            p.add_argument("--n", type=int, default=16)
    rss = sub.add_parser("rss", help="memory of a finished serve run, by thirds")
    rss.add_argument("result", type=Path, help="the JSON a serve run wrote (--json)")
    rss.set_defaults(func=cmd_rss, policy=None)
    args = parser.parse_args(argv)
    args.policy = args.policy or ["general_assistant"]
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
