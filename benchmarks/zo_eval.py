"""Does zeroth-order embedding optimisation neutralise flagged replies? (issue 7 goals)

For a seeded sample of harmful evaluation prompts, the base model answers; the local moderation
scorer (the optimisation's objective) flags some replies; the ``zo`` configuration repairs those.
Neutralisation is then counted twice: by the scorer itself (optimistic: it is the objective) and
by the evaluation's independent judges (unsafe compliance = not refused and judged unsafe).
On benign prompts, replies the scorer does not flag must come back identical.

Usage:
    python benchmarks/zo_eval.py [--limit 15] [--max-new-tokens 48] [--n 8] [--iters 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from psa_guard.evaluation.judges import load_judges
from psa_guard.evaluation.suites import load_suite
from psa_guard.generation import ChatGenerator, GenerationSettings
from psa_guard.loading import load_model
from psa_guard.moderation import default_scorer
from psa_guard.zo import ZOSettings
from psa_guard.zo.config import ZOGenerator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--harmful", nargs="+", default=["harmbench", "jbb_harmful"])
    parser.add_argument("--benign", nargs="+", default=["xstest_safe"])
    parser.add_argument("--limit", type=int, default=15, help="prompts per suite (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--n", type=int, default=8, help="directions per iteration")
    parser.add_argument("--mu", type=float, default=0.05)
    parser.add_argument("--eta", type=float, default=0.5)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()

    loaded = load_model(threads=1)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    scorer = default_scorer()
    zo_settings = ZOSettings(n_directions=args.n, mu=args.mu, eta=args.eta,
                             max_iters=args.iters, threshold=args.threshold, seed=args.seed)
    base = ChatGenerator(loaded)
    zo = ZOGenerator(loaded, scorer=scorer, zo_settings=zo_settings)
    judges = load_judges()

    harmful = [p for name in args.harmful for p in load_suite(name, args.limit, args.seed)]
    prompts = [p.prompt for p in harmful]
    start = time.perf_counter()
    base_out = base.generate(prompts, settings)
    zo_out = zo.generate(prompts, settings)
    seconds = time.perf_counter() - start
    flagged = [i for i, c in enumerate(zo_out) if c.extra["zo"]["flagged"]]
    print(f"harmful prompts: {len(prompts)} ({', '.join(args.harmful)}, limit {args.limit} "
          f"each, seed {args.seed}); max_new_tokens {args.max_new_tokens}; ZO N={args.n} "
          f"mu={args.mu} eta={args.eta} iters<={args.iters} threshold={args.threshold}")
    print(f"flagged by the scorer under base: {len(flagged)}/{len(prompts)}")
    if flagged:
        by_scorer = sum(zo_out[i].extra["zo"]["neutralised"] for i in flagged)
        before = judges.judge([prompts[i] for i in flagged], [base_out[i].text for i in flagged])
        after = judges.judge([prompts[i] for i in flagged], [zo_out[i].text for i in flagged])
        unsafe_before = sum((not v.refused) and v.unsafe for v in before)
        unsafe_after = sum((not v.refused) and v.unsafe for v in after)
        calls = [zo_out[i].extra["zo"]["scorer_calls"] for i in flagged]
        iters = [zo_out[i].extra["zo"]["iterations"] for i in flagged]
        per_prompt = [zo_out[i].extra["zo"]["seconds"] for i in flagged]
        print(f"neutralised by the scorer (objective): {by_scorer}/{len(flagged)} "
              f"({100 * by_scorer / len(flagged):.0f}%)")
        print(f"independent judges, unsafe compliance among flagged: before {unsafe_before}/"
              f"{len(flagged)}, after {unsafe_after}/{len(flagged)}")
        if unsafe_before:
            fixed = sum(((not b.refused) and b.unsafe) and not ((not a.refused) and a.unsafe)
                        for b, a in zip(before, after))
            print(f"neutralised by the judges (of those unsafe before): {fixed}/{unsafe_before} "
                  f"({100 * fixed / unsafe_before:.0f}%)")
        print(f"scorer calls per repaired prompt: mean {statistics.mean(calls):.1f}, "
              f"min {min(calls)}, median {statistics.median(calls)}, max {max(calls)} "
              f"(cap (N+1) x iters + 1 = {(args.n + 1) * args.iters + 1})")
        print(f"iterations: {sorted(iters)}; seconds per repaired prompt: mean "
              f"{statistics.mean(per_prompt):.1f}")
    print(f"wall time (base + zo on harmful): {seconds:.0f} s")

    benign = [p.prompt for name in args.benign for p in load_suite(name, args.limit, args.seed)]
    base_benign = base.generate(benign, settings)
    zo_benign = zo.generate(benign, settings)
    untouched = [i for i, c in enumerate(zo_benign) if not c.extra["zo"]["flagged"]]
    identical = sum(zo_benign[i].text == base_benign[i].text for i in untouched)
    print(f"benign prompts ({', '.join(args.benign)}): {len(benign)}, not flagged "
          f"{len(untouched)}, identical output {identical}/{len(untouched)}")


if __name__ == "__main__":
    main()
