#!/usr/bin/env python
"""Build the attribute preference pairs for the Pv-Arm reward model (docs/arm_data.md).

Reads the training side of the safety data only (docs/method.md section 7) and writes one JSONL
file of :class:`psa_guard.arm.data.PreferencePair` rows plus a ``*.manifest.json`` sidecar (counts per
attribute, split and source, input sha256s, seed, command line, RLCD model and settings).

RLCD pairs are generated with the embedded default model (greedy, one torch thread); replies are
cached in ``rlcd-cache.jsonl`` beside the output, so a rerun or an interrupted run skips finished
generations.

Usage (from the repository root; generation is a heavy job)::

    python scripts/build_arm_data.py
    python scripts/build_arm_data.py --no-rlcd          # labelled sets only, no model needed
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from psa_guard.arm.data import (
    DATA_FILES,
    HELDOUT_FRACTION,
    MAX_CHARS,
    RLCD_INSTRUCTIONS,
    GenerationCache,
    PreferencePair,
    count_pairs,
    esconv_empathy_pairs,
    rlcd_conversations,
    rlcd_pairs,
    rlcd_prompt_pools,
    static_pairs,
    write_pairs,
    xstest_eval_prompts,
)
from psa_guard.attributes import ATTRIBUTES
from psa_guard.core.checksums import file_sha256
from psa_guard.datasets.folder import require_data_dir
from psa_guard.generation import GenerationSettings
from psa_guard.home import guard_home
from psa_guard.loading import ModelSource

XSTEST_PROMPTS = "over_refusal/xstest/xstest_prompts.csv"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", default=None,
                        help="safety-data folder (default: $PSA_GUARD_DATA or ../shared/safety-data)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output JSONL (default: <psa-guard home>/arm-data/pairs.jsonl)")
    parser.add_argument("--rlcd-per-attribute", type=int, default=96,
                        help="RLCD prompts per attribute (empathy, sensitivity, non_judgmental, "
                             "helpfulness); two generations each")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="RLCD reply budget")
    parser.add_argument("--batch-size", type=int, default=8, help="RLCD generation batch size")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of every seeded choice")
    parser.add_argument("--no-rlcd", action="store_true", help="skip RLCD generation")
    args = parser.parse_args(argv)
    if args.rlcd_per_attribute < 1 or args.batch_size < 1:
        parser.error("--rlcd-per-attribute and --batch-size must be positive")
    return args


def input_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every data file read, keyed by its path relative to the data folder."""
    paths = [folder / XSTEST_PROMPTS]
    for relative in DATA_FILES.values():
        path = folder / relative
        paths += sorted(path.glob("*.csv")) if path.is_dir() else [path]
    return {str(p.relative_to(folder)): file_sha256(p) for p in paths}


def generate_rlcd(pools: dict[str, list[str]], cache: GenerationCache, model_name: str,
                  settings: GenerationSettings, batch_size: int) -> int:
    """Generate every uncached RLCD reply into ``cache``; returns how many were generated."""
    settings_key = asdict(settings)
    todo: dict[str, tuple[str, str]] = {}
    for attribute, prompts in pools.items():
        for prompt in prompts:
            for conversation in rlcd_conversations(attribute, prompt):
                system, user = conversation[0]["content"], conversation[1]["content"]
                key = GenerationCache.key(model_name, system, user, settings_key)
                if cache.get(key) is None:
                    todo[key] = (system, user)
    if not todo:
        return 0
    from psa_guard.generation import ChatGenerator
    from psa_guard.loading import load_model

    generator = ChatGenerator(load_model(None, threads=1))
    # Similar lengths share a batch (less padding); order does not change the cache keys.
    items = sorted(todo.items(), key=lambda item: len(item[1][0]) + len(item[1][1]))
    with tqdm(total=len(items), desc="RLCD generations", unit="reply") as bar:
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            replies = generator.generate(
                [[{"role": "system", "content": s}, {"role": "user", "content": u}]
                 for _, (s, u) in batch], settings)
            cache.add([{"key": key, "model": model_name, "system": s, "user": u,
                        "settings": settings_key, "text": r.text, "finish_reason": r.finish_reason,
                        "completion_tokens": r.completion_tokens}
                       for (key, (s, u)), r in zip(batch, replies)])
            bar.update(len(batch))
    return len(items)


def build_rlcd(folder: Path, args: argparse.Namespace, out: Path) -> tuple[list[PreferencePair],
                                                                          dict[str, Any]]:
    """The RLCD-based pairs (generating what the cache lacks) and their manifest section."""
    pools, exchanges = rlcd_prompt_pools(folder, args.rlcd_per_attribute, seed=args.seed)
    model_name = ModelSource.parse(None).name
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, temperature=0.0)
    cache = GenerationCache(out.parent / "rlcd-cache.jsonl")
    generated = generate_rlcd(pools, cache, model_name, settings, args.batch_size)

    def reply(system: str, user: str) -> str | None:
        return cache.get(GenerationCache.key(model_name, system, user, asdict(settings)))

    pairs: list[PreferencePair] = []
    for attribute, prompts in pools.items():
        pairs += rlcd_pairs(attribute, prompts, reply)
    cold = RLCD_INSTRUCTIONS["empathy"][1]
    negatives = {p: text for p in pools["empathy"] if (text := reply(cold, p)) is not None}
    pairs += esconv_empathy_pairs(exchanges, negatives)
    section = {
        "model": model_name,
        "settings": asdict(settings),
        "instructions": {a: {"positive": p, "negative": n} for a, (p, n) in RLCD_INSTRUCTIONS.items()},
        "prompts_per_attribute": {a: len(p) for a, p in pools.items()},
        "pairs_per_attribute": {a: sum(1 for p in pairs if p.attribute == a and p.source == "rlcd")
                                for a in pools},
        "generated_this_run": generated,
        "cache": str(cache.path),
        "batch_size": args.batch_size,
    }
    return pairs, section


def main(argv: list[str] | None = None) -> int:
    """Build the pairs and write them with their manifest."""
    given = sys.argv[1:] if argv is None else argv
    args = parse_args(given)
    start = time.time()
    folder = require_data_dir(args.data_dir)
    out: Path = args.out or guard_home() / "arm-data" / "pairs.jsonl"
    pairs = static_pairs(folder, seed=args.seed)
    manifest: dict[str, Any] = {
        "created_by": "scripts/build_arm_data.py",
        "command": " ".join(["python", "scripts/build_arm_data.py", *given]),
        "seed": args.seed,
        "data_dir": str(folder),
        "input_sha256": input_hashes(folder),
        "heldout_fraction": HELDOUT_FRACTION,
        "max_chars": MAX_CHARS,
        "xstest_excluded": {
            "rule": "prompts of load_suite('xstest_safe' and 'xstest_unsafe', limit=60, seed=0)",
            "prompts": len(xstest_eval_prompts(folder)),
        },
        "rlcd": None,
    }
    if not args.no_rlcd:
        rlcd, manifest["rlcd"] = build_rlcd(folder, args, out)
        pairs += rlcd
    pairs.sort(key=lambda p: ATTRIBUTES.index(p.attribute))
    manifest["seconds"] = round(time.time() - start, 1)
    write_pairs(out, pairs, manifest)
    print(f"wrote {len(pairs)} pairs to {out} in {manifest['seconds']:.0f}s")
    for attribute, splits in count_pairs(pairs).items():
        parts = [f"{split} {c['total']} ("
                 + ", ".join(f"{s} {n}" for s, n in sorted(c.items()) if s != "total") + ")"
                 for split, c in splits.items()]
        print(f"  {attribute:15s} " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
