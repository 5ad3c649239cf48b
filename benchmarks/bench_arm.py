"""Cost of Pv-Arm guidance: ms per decoding step, guided versus unguided, and two baselines.

All four decode the same prompts greedily for exactly ``--steps`` steps (end-of-turn is masked so
every run does the same work), in one process, alternating which runs first:

* ``unguided``: :class:`~psa_guard.generation.ChatGenerator` on the default model.
* ``pvarm``: :class:`~psa_guard.arm.ArmGenerator` (the shipped adapter, or a fresh one with
  ``--random-adapter``): the reward model owns the top ``L`` layers, reuses the base forward's
  lower hidden state, keeps its own KV cache for its layers and scores only the safe candidates.
* ``separate_kv`` (PARM/GenARM style): a separate same-size reward model with its own KV cache,
  full-vocabulary logits every step.
* ``naive``: a separate same-size reward model without a KV cache (the whole sequence again at every
  step).

The two baselines apply the same lexicographic rule (:func:`psa_guard.arm.lexicographic_scores`)
to their full logits. Also reported: resident memory added by the reward model (``VmRSS``) for
``pvarm`` and ``separate_kv``, each read at the same point (:func:`added_rss`): after the reward
model is built *and* has guided the same batch-8 generation, with the unguided model's own working
memory for that generation already in the reading before.

Usage:
    python benchmarks/bench_arm.py [--steps 48] [--repeats 3] [--batch-sizes 1 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from bench_generation import PROMPTS  # the same eight prompts as the throughput benchmark
from transformers import LogitsProcessor
from transformers.cache_utils import DynamicCache

from psa_guard.arm import SHIPPED_ADAPTER, ArmConfig, ArmGenerator, PvArm, load_arm
from psa_guard.arm.guidance import lexicographic_scores, safe_candidates
from psa_guard.arm.model import positions_from_mask
from psa_guard.core.atomic import write_atomic
from psa_guard.direg.vector import base_checksum
from psa_guard.generation import ChatGenerator, GenerationSettings
from psa_guard.loading import load_model


def rss_mib() -> float:
    """Resident memory of this process in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def added_rss(stages: Mapping[str, Callable[[], Any]],
              rss: Callable[[], float] = rss_mib) -> tuple[dict[str, float], dict[str, Any]]:
    """Resident memory each stage adds, every stage read at the same point.

    Each stage builds its reward model *and* runs the measured workload with it before the reading,
    so the figures are comparable: each is the growth of ``VmRSS`` from the reading before the
    stage to the reading after it. Stages run in order and stay alive (a later stage's figure is
    what it adds on top of the earlier ones).

    Args:
        stages: ``{name: build and run}``; each returns what it built, for later use.
        rss: reads the resident memory in MiB (:func:`rss_mib`).

    Returns:
        ``({name: MiB added}, {name: what the stage returned})``.
    """
    added: dict[str, float] = {}
    built: dict[str, Any] = {}
    previous = rss()
    for name, stage in stages.items():
        built[name] = stage()
        now = rss()
        added[name] = now - previous
        previous = now
    return added, built


class NoEnd(LogitsProcessor):
    """Masks the end-of-turn token so every run decodes exactly the same number of steps."""

    def __init__(self, eos: int) -> None:
        self.eos = eos

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores[:, self.eos] = float("-inf")
        return scores


class SeparateModelGuidance(LogitsProcessor):
    """A separate same-size reward model: with its own KV cache (PARM/GenARM) or without (naive)."""

    def __init__(self, model: Any, prompt_mask: torch.Tensor, use_cache: bool,
                 top_p: float = 0.9, max_candidates: int = 20) -> None:
        self.model, self.use_cache = model, use_cache
        self.mask, self.cache = prompt_mask, DynamicCache() if use_cache else None
        self.seen = 0
        self.top_p, self.max_candidates = top_p, max_candidates

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, length = input_ids.shape
        mask = torch.cat((self.mask, self.mask.new_ones(batch, length - self.mask.shape[1])), 1)
        positions = positions_from_mask(mask)
        new = input_ids[:, self.seen:] if self.use_cache else input_ids
        out = self.model(input_ids=new, attention_mask=mask,
                         position_ids=positions[:, -new.shape[1]:],
                         past_key_values=self.cache, use_cache=self.use_cache)
        self.seen = length
        reward = out.logits[:, -1].float()
        ids, logprobs, allowed = safe_candidates(scores, self.top_p, self.max_candidates)
        combined = lexicographic_scores(logprobs, reward.gather(1, ids), allowed,
                                        torch.ones(batch))
        return torch.full_like(scores, float("-inf")).scatter(1, ids, combined)


def run(generator: ChatGenerator, prompts: list[str], steps: int,
        extra: Callable[[torch.Tensor], list[Any]] | None = None) -> float:
    """Seconds for one greedy generation of exactly ``steps`` tokens per row."""
    tok = generator.loaded.tokenizer
    batch = tok.pad({"input_ids": [generator.encode(p) for p in prompts]}, return_tensors="pt")
    settings = GenerationSettings(max_new_tokens=steps, temperature=0)
    processors = [NoEnd(tok.eos_token_id), *(extra(batch["attention_mask"]) if extra else [])]
    start = time.perf_counter()
    with generator.loaded.lock, torch.inference_mode():
        out = generator._generate_call(batch["input_ids"], batch["attention_mask"], settings,
                                       extra_processors=processors)
    seconds = time.perf_counter() - start
    assert out.shape[1] - batch["input_ids"].shape[1] == steps
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--random-adapter", action="store_true",
                        help="a fresh adapter instead of the shipped one (same cost)")
    parser.add_argument("--no-naive", action="store_true", help="skip the slow no-cache baseline")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    loaded = load_model(threads=args.threads)
    base = ChatGenerator(loaded)
    workload = PROMPTS[:8]  # the memory workload: batch 8, 4 steps, the same for every variant
    run(base, workload, 4)  # warm-up at that workload: the unguided working memory is in model_rss
    model_rss = rss_mib()
    shipped = SHIPPED_ADAPTER.is_file() and not args.random_adapter
    adapter = SHIPPED_ADAPTER.name if shipped else "random (fresh) adapter"

    def guidance(model: Any, use_cache: bool) -> Callable[[torch.Tensor], list[Any]]:
        return lambda mask: [SeparateModelGuidance(model, mask, use_cache)]

    def build_pvarm() -> ArmGenerator:
        if shipped:
            arm = load_arm(loaded.model, SHIPPED_ADAPTER, checksum=base_checksum(loaded))
        else:
            arm = PvArm(loaded.model, ArmConfig())
            arm.requires_grad_(False)
        generator = ArmGenerator(loaded, arm=arm)
        run(generator, workload, 4)
        return generator

    def build_separate() -> Any:
        model = copy.deepcopy(loaded.model).eval()
        run(base, workload, 4, guidance(model, True))
        return model

    added, built = added_rss({"pvarm": build_pvarm, "separate_model": build_separate})
    guided, separate = built["pvarm"], built["separate_model"]
    arm = guided.arm
    pvarm_rss, separate_rss = added["pvarm"], added["separate_model"]

    variants: dict[str, Callable[[list[str]], float]] = {
        "unguided": lambda p: run(base, p, args.steps),
        "pvarm": lambda p: run(guided, p, args.steps),
        "separate_kv": lambda p: run(base, p, args.steps, guidance(separate, True)),
    }
    if not args.no_naive:
        variants["naive"] = lambda p: run(base, p, args.steps, guidance(separate, False))
    results: dict[str, Any] = {"steps": args.steps, "repeats": args.repeats,
                               "threads": args.threads, "adapter": adapter,
                               "arm_layers": arm.config.layers,
                               "adapter_parameters": sum(p.numel() for p in arm.adapter_parameters()),
                               "rss_mib": {"process_with_model": round(model_rss, 1),
                                           "pvarm_added": round(pvarm_rss, 1),
                                           "separate_model_added": round(separate_rss, 1)},
                               "ms_per_step": {}}
    names = list(variants)
    for size in args.batch_sizes:
        prompts = (PROMPTS * ((size + len(PROMPTS) - 1) // len(PROMPTS)))[:size]
        times: dict[str, list[float]] = {n: [] for n in names}
        for repeat in range(args.repeats):
            order = names if repeat % 2 == 0 else names[::-1]
            for name in order:
                times[name].append(variants[name](prompts) / args.steps * 1000)
        medians = {n: round(statistics.median(v), 1) for n, v in times.items()}
        results["ms_per_step"][str(size)] = medians
        line = ", ".join(f"{n} {m} ms" + ("" if n == "unguided" else
                                           f" ({m / medians['unguided']:.2f}x)")
                         for n, m in medians.items())
        print(f"batch {size}: {line}")
    print(f"resident memory: process with the model {model_rss:.0f} MiB; Pv-Arm adds "
          f"{pvarm_rss:.1f} MiB ({pvarm_rss / model_rss:.1%}); a separate reward model adds "
          f"{separate_rss:.0f} MiB ({separate_rss / model_rss:.1%})")
    print(f"adapter: {adapter}, L={arm.config.layers}, "
          f"{results['adapter_parameters']} adapter parameters")
    if args.json:
        write_atomic(args.json, json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
