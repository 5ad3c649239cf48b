"""How often does the Pv-Arm risk gate close? The moderation score of each prompt, per prompt set.

The gate (docs/arm.md) switches guidance off for a prompt whose local moderation score exceeds
``--threshold`` (default: the shipped gate). This prints, per set, how many distinct prompts it
closes on: the training-side prompts of each attribute's preference pairs (where the gate takes
prosocial steering away) and the evaluation suites (harmful ones: where it should close; benign
ones: where closing costs steering but never safety). Only the scorer runs; no generation.

With ``--judged FILE`` (an evaluation's ``judged.jsonl`` holding base, direg, arm and full), it also
checks the gate's promise on those replies: on every prompt it closes on, ``full`` wrote exactly
what ``direg`` wrote and ``arm`` exactly what ``base`` wrote.

Usage:
    python benchmarks/arm_gate.py [--threshold 0.5] [--per-set 150] [--limit 40]
        [--data ~/.cache/psa-guard/arm-data/pairs.jsonl] [--judged docs/eval/arm/judged.jsonl]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from psa_guard.arm.generator import DEFAULT_RISK_THRESHOLD
from psa_guard.arm.pairs import read_pairs
from psa_guard.core.atomic import write_atomic
from psa_guard.datasets.suites import load_suite
from psa_guard.home import guard_home
from psa_guard.moderation import ModerationScorer, default_scorer

EVAL_SUITES = ("harmbench", "jbb_harmful", "jbb_benign", "xstest_safe", "xstest_unsafe",
               "donotanswer_bias")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold", type=float, default=DEFAULT_RISK_THRESHOLD)
    parser.add_argument("--per-set", type=int, default=150,
                        help="distinct training-side prompts per (attribute, source), sorted")
    parser.add_argument("--limit", type=int, default=40, help="prompts per evaluation suite (seed 0)")
    parser.add_argument("--data", type=Path, default=guard_home() / "arm-data" / "pairs.jsonl")
    parser.add_argument("--judged", type=Path, default=None,
                        help="an evaluation's judged.jsonl: check gated replies are unguided")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    scorer = default_scorer()
    sets: dict[str, list[str]] = defaultdict(list)
    for pair in read_pairs(args.data):
        sets[f"train: {pair.attribute}/{pair.source}"].append(pair.prompt)
    for name in EVAL_SUITES:
        sets[f"eval: {name}"] = [p.prompt for p in load_suite(name, limit=args.limit, seed=0)]
    rows = {}
    print(f"| prompt set | prompts | gate closes (score > {args.threshold:g}) | median score |")
    print("|---|---|---|---|")
    for name in sorted(sets):
        prompts = sorted(set(sets[name]))
        if name.startswith("train"):
            prompts = prompts[: args.per_set]
        scores = np.array(scorer.score(prompts))
        closed = int((scores > args.threshold).sum())
        rows[name] = {"prompts": len(prompts), "closed": closed,
                      "median": round(float(np.median(scores)), 3)}
        print(f"| {name} | {len(prompts)} | {closed} ({closed / len(prompts):.0%}) | "
              f"{np.median(scores):.3f} |")
    result: dict[str, object] = {"threshold": args.threshold, "sets": rows}
    if args.judged:
        result["judged"] = check_judged(args.judged, scorer, args.threshold)
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=1))


def check_judged(path: Path, scorer: ModerationScorer, threshold: float) -> dict[str, dict[str, int]]:
    """Per suite: prompts gated, and on how many of them full == direg and arm == base."""
    replies: dict[tuple[str, str, str], dict[str, object]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        replies[(row["config"], row["suite"], row["id"])] = row
    out = {}
    print(f"\n| suite ({path}) | gated | full == direg on them | arm == base on them |")
    print("|---|---|---|---|")
    for suite in sorted({s for _, s, _ in replies}):
        ids = sorted(i for c, s, i in replies if c == "direg" and s == suite)
        scores = scorer.score([str(replies[("direg", suite, i)]["prompt"]) for i in ids])
        gated = [i for i, score in zip(ids, scores, strict=True) if score > threshold]
        same = {pair: sum(replies[(pair[0], suite, i)]["response"]
                          == replies[(pair[1], suite, i)]["response"] for i in gated)
                for pair in (("full", "direg"), ("arm", "base"))}
        out[suite] = {"prompts": len(ids), "gated": len(gated),
                      "full_equals_direg": same[("full", "direg")],
                      "arm_equals_base": same[("arm", "base")]}
        print(f"| {suite} | {len(gated)}/{len(ids)} | {same[('full', 'direg')]} | "
              f"{same[('arm', 'base')]} |")
    return out


if __name__ == "__main__":
    main()
