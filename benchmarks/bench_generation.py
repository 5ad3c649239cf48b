"""Throughput of ChatPSAGuard versus plain ``transformers`` ``generate()`` on the same prompts.

Both sides decode greedily from the same templated prompts with the same weights, so they produce
the same tokens; tokens/s counts the generated tokens of every row up to its end-of-turn token.
Batch 1 runs the prompts one at a time (``invoke`` vs one ``generate`` per prompt); batch 8 sends
all eight at once (``ChatPSAGuard.batch``, coalesced by the micro-batcher, vs one padded
``generate``). Each measurement is the median of ``--repeats`` runs; the two sides alternate
which one runs first.

Usage:
    python benchmarks/bench_generation.py [--max-new-tokens 64] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from langchain_psa_guard import ChatPSAGuard
from psa_guard.loading import load_model

PROMPTS = [
    "Explain how rainbows form.",
    "Give me three tips for a job interview.",
    "What is the difference between a virus and a bacterium?",
    "Write a short poem about the sea.",
    "How do I make a cup of green tea?",
    "Why is the sky blue?",
    "Describe the water cycle for a child.",
    "What are good habits for learning a new language?",
]


def plain_generate(loaded, prompts: list[str], max_new_tokens: int) -> int:
    """Plain ``model.generate`` on a padded batch; returns generated tokens (to end of turn)."""
    tok = loaded.tokenizer
    ids = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                   tokenize=True)["input_ids"] for p in prompts]
    batch = tok.pad({"input_ids": ids}, return_tensors="pt")
    with torch.inference_mode():
        out = loaded.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                    temperature=None, top_p=None, top_k=None,
                                    pad_token_id=tok.pad_token_id)
    generated = out[:, batch["input_ids"].shape[1]:]
    total = 0
    for row in generated.tolist():
        total += next((i for i, t in enumerate(row) if t == tok.eos_token_id), len(row))
    return total


def guard_generate(llm: ChatPSAGuard, prompts: list[str]) -> int:
    """ChatPSAGuard: ``invoke`` for one prompt, ``batch`` for several; returns generated tokens."""
    if len(prompts) == 1:
        return llm.invoke(prompts[0]).usage_metadata["output_tokens"]
    return sum(m.usage_metadata["output_tokens"] for m in llm.batch(prompts))


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - start, tokens


def measure(batch_size: int, loaded, llm: ChatPSAGuard, max_new_tokens: int,
            repeats: int) -> tuple[float, float]:
    groups = [PROMPTS[i:i + batch_size] for i in range(0, len(PROMPTS), batch_size)]
    plain_rates, guard_rates = [], []

    def rate(run: Callable[[list[str]], int]) -> float:
        seconds = tokens = 0.0
        for group in groups:
            s, t = timed(lambda g=group: run(g))
            seconds, tokens = seconds + s, tokens + t
        return tokens / seconds

    sides = [(plain_rates, lambda g: plain_generate(loaded, g, max_new_tokens)),
             (guard_rates, lambda g: guard_generate(llm, g))]
    for repeat in range(repeats):
        # Alternate which side runs first, so neither always gets the warmer caches.
        for rates, run in (sides if repeat % 2 == 0 else sides[::-1]):
            rates.append(rate(run))
    return statistics.median(plain_rates), statistics.median(guard_rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    loaded = load_model(threads=args.threads)
    llm = ChatPSAGuard(max_tokens=args.max_new_tokens, threads=args.threads)
    guard_generate(llm, PROMPTS[:1])  # warm-up (loads weights, builds the generator)
    plain_generate(loaded, PROMPTS[:1], 4)
    print(f"model {loaded.name}, torch threads {torch.get_num_threads()}, "
          f"max_new_tokens {args.max_new_tokens}, median of {args.repeats}")
    print(f"{'batch':>5}  {'generate() tok/s':>16}  {'ChatPSAGuard tok/s':>18}  {'time ratio':>10}")
    for batch_size in args.batch_sizes:
        plain, guard = measure(batch_size, loaded, llm, args.max_new_tokens, args.repeats)
        print(f"{batch_size:>5}  {plain:>16.1f}  {guard:>18.1f}  {plain / guard:>10.3f}")


if __name__ == "__main__":
    main()
