"""Serving throughput and latency: in-process ChatPSAGuard, psa-guard serve, and Ray Serve.

All setups answer the same prompts with the same policy (general_assistant), configuration and
greedy decoding, at 1, 8 and 32 concurrent clients, one torch thread per process::

    python benchmarks/bench_serve.py --out docs/serving_bench.json [--no-ray]

For each setup and concurrency it prints requests/s, completion tokens/s and p50/p95 latency, and
checks the goals: the server costs at most 10 % over in-process at concurrency 8, and 2 Ray
replicas give at least 1.6x the throughput of 1 at concurrency 32.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

PROMPTS = [
    "Give me three tips for sleeping better.", "What is the capital of Australia?",
    "Explain photosynthesis to a ten-year-old.", "How do I boil an egg?",
    "Suggest a name for a grey cat.", "What is 17 times 23?",
    "Write a haiku about autumn.", "How can I stay focused while studying?",
    "What causes rainbows?", "Give me a quick breakfast idea.",
    "How do plants drink water?", "Why is the sky blue?",
    "What is a good way to learn a new language?", "Describe the moon in one sentence.",
    "How do I make a cup of tea?", "What does a librarian do?",
]
LEVELS = (1, 8, 32)
REQUESTS = {1: 8, 8: 16, 32: 32}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(call: Callable[[str], int], concurrency: int, requests: int) -> dict[str, Any]:
    """Send ``requests`` prompts with ``concurrency`` clients; ``call`` returns tokens written."""
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(requests)]
    latencies: list[float] = []
    tokens: list[int] = []

    def one(prompt: str) -> None:
        start = time.perf_counter()
        tokens.append(call(prompt))
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, prompts))
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return {"concurrency": concurrency, "requests": requests, "seconds": round(wall, 2),
            "requests_per_s": round(requests / wall, 3),
            "tokens_per_s": round(sum(tokens) / wall, 2),
            "p50_s": round(statistics.median(ordered), 3),
            "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3)}


def in_process(args: argparse.Namespace) -> Callable[[str], int]:
    from langchain_psa_guard import ChatPSAGuard

    llm = ChatPSAGuard(policy=args.policy, config=args.config, max_tokens=args.max_tokens)
    llm.invoke("warm-up")

    def call(prompt: str) -> int:
        reply = llm.invoke(prompt)
        return int(reply.usage_metadata["output_tokens"]) if reply.usage_metadata else 0

    return call


def http_client(url: str, args: argparse.Namespace) -> Callable[[str], int]:
    client = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=64))

    def call(prompt: str) -> int:
        response = client.post(f"{url}/v1/chat/completions", json={
            "model": args.policy, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": args.max_tokens, "temperature": 0})
        response.raise_for_status()
        return int(response.json()["usage"]["completion_tokens"])

    call("warm-up")
    return call


def start_server(options: Sequence[str], timeout: float = 300.0, log: Any = None
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """``psa-guard serve OPTIONS`` on a free loopback port, one torch thread, in its own session
    (:func:`stop` ends it); returns once ``/readyz`` answers 200. ``log``: an open file for its
    output (None: this process's)."""
    port = _free_port()
    command = [sys.executable, "-m", "psa_guard.cli", "serve", "--port", str(port), *options]
    process = subprocess.Popen(command, start_new_session=True, stdout=log, stderr=log,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
        time.sleep(1)
    raise RuntimeError(f"the server did not become ready in {timeout:g} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def run_setup(name: str, call: Callable[[str], int]) -> list[dict[str, Any]]:
    rows = []
    for level in LEVELS:
        row = {"setup": name, **measure(call, level, REQUESTS[level])}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="general_assistant")
    parser.add_argument("--config", default="base")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray Serve setups")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = run_setup("in-process", in_process(args))
    setups: list[tuple[str, list[str]]] = [("server", [])]
    if not args.no_ray:
        setups += [("ray-1", ["--ray", "--replicas", "1"]), ("ray-2", ["--ray", "--replicas", "2"])]
    for name, extra in setups:
        process, url = start_server(["--policy", args.policy, "--config", args.config, *extra])
        try:
            rows += run_setup(name, http_client(url, args))
        finally:
            stop(process)
    by = {(r["setup"], r["concurrency"]): r for r in rows}
    goals: dict[str, Any] = {}
    local, served = by[("in-process", 8)], by[("server", 8)]
    overhead = local["requests_per_s"] / served["requests_per_s"] - 1
    goals["server_overhead_at_8"] = {"value": round(overhead, 3), "goal": "<= 0.10",
                                     "met": overhead <= 0.10}
    if ("ray-2", 32) in by:
        speedup = by[("ray-2", 32)]["requests_per_s"] / by[("ray-1", 32)]["requests_per_s"]
        goals["ray_2_over_1_at_32"] = {"value": round(speedup, 3), "goal": ">= 1.6",
                                       "met": speedup >= 1.6}
    print(json.dumps(goals, indent=2))
    if args.out is not None:
        from psa_guard.core.atomic import write_atomic

        write_atomic(args.out, json.dumps({"settings": {"policy": args.policy,
                                                        "config": args.config,
                                                        "max_tokens": args.max_tokens,
                                                        "requests": REQUESTS,
                                                        "cores": os.cpu_count()},
                                           "rows": rows, "goals": goals}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
