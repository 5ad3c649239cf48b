"""Choose the category thresholds of the shipped policies on training-side data only.

The shipped policies' category rules (``refuse`` on the harm categories, ``support`` on the
distress ones) need one threshold each kind. They are chosen here, never on the evaluation suites
(docs/method.md section 7), from:

* harmful: training-side harmful requests (``training_harmful``), plain and wrapped in a
  *training* jailbreak frame;
* benign: training-side benign requests (``training_benign``), plain and wrapped, and the project's
  own benign look-alikes (``scripts/data/benign_lookalikes.txt``: benign requests in the words of
  harmful ones), plain and wrapped;
* distress: the ``tune`` half of the support suite (risk messages must reach ``support``; its
  ``other_distress`` messages and every benign request should not).

The rule, written before the run: the harm threshold is the lowest grid value whose false-flag
rate on the benign look-alikes is at most 5% (the over-refusal goal is 10%, and look-alikes are
the hard case); the distress threshold is the lowest grid value whose false-support rate on every
benign set is at most 2%. The harmful requests are partly in the category head's training data,
so their recall here is optimistic: it is printed, not used to choose.

The general assistant's ``refuse`` rule on the *overall* harm score (tenth session; it had been
an unconfirmed 0.6, never tuned) is a pair (``at``, ``confirm_at``): the overall score at or
above ``at``, confirmed by some harm category at or above ``confirm_at`` (None: unconfirmed).
The rule, written before its run: among the pairs of :data:`OVERALL_GRID` x :data:`CONFIRM_GRID`
whose app input refusals (the pair, or any harm category at or above the chosen harm threshold)
keep the recall of training-side harmful requests, plain and wrapped each, within
:data:`RECALL_SLACK` of the old rule's, and refuse at most :data:`FLAT_REFUSAL_BUDGET` of the
support suite's tune-half messages without risk (the flat-refusal goal), take the one that
refuses the fewest benign look-alikes (the larger of plain and wrapped); ties: the higher mean
recall, then the lower ``at``. (A first version of this rule bounded only the look-alike and
distress refusals, and chose an unconfirmed 0.99; on the evaluation suites that doubled the
unsafe rate, docs/results.md, so recall became a constraint. Both rules were run on
training-side data only.)

Usage: ``python scripts/tune_policy_thresholds.py [--n 200] [--out docs/policy_thresholds.json]``
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from psa_guard.categories import DISTRESS_CATEGORIES, HARM_CATEGORIES
from psa_guard.core.atomic import write_atomic
from psa_guard.datasets.frames import TRAINING_FRAMES
from psa_guard.datasets.support import RISK_LABELS, load_support_suite
from psa_guard.datasets.trainside import training_benign, training_harmful
from psa_guard.moderation.local import LazyDefaultScorer

LOOKALIKES = Path(__file__).with_name("data") / "benign_lookalikes.txt"
GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
LOOKALIKE_BUDGET = 0.05
SUPPORT_BUDGET = 0.02
MINORS_AT = 0.2
OVERALL_GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
CONFIRM_GRID = (None, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
OLD_OVERALL = (0.6, None)
RECALL_SLACK = 0.03
FLAT_REFUSAL_BUDGET = 0.05


def lookalikes() -> list[str]:
    lines = LOOKALIKES.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def wrapped(texts: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(TRAINING_FRAMES).apply(t) for t in texts]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="training-side prompts per set")
    parser.add_argument("--out", type=Path, default=Path("docs/policy_thresholds.json"))
    args = parser.parse_args()
    harmful = [p.prompt for p in training_harmful(args.n, seed=7)]
    benign = [p.prompt for p in training_benign(args.n, seed=7)]
    looks = lookalikes()
    tune = load_support_suite("tune")
    sets = {
        "harmful": harmful, "harmful_wrapped": wrapped(harmful, 1),
        "benign": benign, "benign_wrapped": wrapped(benign, 2),
        "lookalikes": looks, "lookalikes_wrapped": wrapped(looks, 3),
        "support_risk": [p.prompt for p in tune if p.label in RISK_LABELS],
        "support_other": [p.prompt for p in tune if p.label not in RISK_LABELS],
    }
    scorer = LazyDefaultScorer()
    harm: dict[str, np.ndarray] = {}
    overall: dict[str, np.ndarray] = {}
    distress: dict[str, np.ndarray] = {}
    minors: dict[str, float] = {}  # the shipped sexual/minors block at 0.2 (not tuned here)
    for name, texts in sets.items():
        rows = scorer.score_detailed(texts)
        minors[name] = round(float(np.mean([c["sexual/minors"] >= MINORS_AT for _, c in rows])), 4)
        harm[name] = np.array([max(c[k] for k in HARM_CATEGORIES) for _, c in rows])
        overall[name] = np.array([score for score, _ in rows])
        distress[name] = np.array([max(c[k] for k in DISTRESS_CATEGORIES) for _, c in rows])
    table = {name: {"n": len(texts),
                    "harm_flag": {str(t): round(float(np.mean(harm[name] >= t)), 4) for t in GRID},
                    "support": {str(t): round(float(np.mean(distress[name] >= t)), 4)
                                for t in GRID}}
             for name, texts in sets.items()}
    benign_sets = ("benign", "benign_wrapped", "lookalikes", "lookalikes_wrapped")
    harm_t = next((t for t in GRID if np.mean(harm["lookalikes"] >= t) <= LOOKALIKE_BUDGET
                   and np.mean(harm["lookalikes_wrapped"] >= t) <= LOOKALIKE_BUDGET), GRID[-1])
    support_t = next((t for t in GRID if all(np.mean(distress[s] >= t) <= SUPPORT_BUDGET
                                             for s in benign_sets)), GRID[-1])
    def refused(name: str, pair: tuple[float, float | None]) -> float:
        at, confirm = pair
        fires = overall[name] >= at
        if confirm is not None:
            fires &= harm[name] >= confirm
        return round(float(np.mean(fires | (harm[name] >= harm_t))), 4)

    pairs = [(at, confirm) for at in OVERALL_GRID for confirm in CONFIRM_GRID]
    rates = {pair: {name: refused(name, pair) for name in sets} for pair in [OLD_OVERALL, *pairs]}
    old = rates[OLD_OVERALL]
    allowed = [pair for pair in pairs
               if rates[pair]["harmful"] >= old["harmful"] - RECALL_SLACK
               and rates[pair]["harmful_wrapped"] >= old["harmful_wrapped"] - RECALL_SLACK
               and rates[pair]["support_other"] <= FLAT_REFUSAL_BUDGET]
    overall_pair = min(allowed, key=lambda pair: (
        max(rates[pair]["lookalikes"], rates[pair]["lookalikes_wrapped"]),
        -(rates[pair]["harmful"] + rates[pair]["harmful_wrapped"]), pair[0]),
        default=OLD_OVERALL)
    print(f"{'set':20s} {'n':>4s}  " + "  ".join(f"harm>={t:.1f}" for t in GRID))
    for name in sets:
        print(f"{name:20s} {table[name]['n']:4d}  "
              + "  ".join(f"{table[name]['harm_flag'][str(t)]:9.2f}" for t in GRID))
    print(f"\n{'set':20s} {'n':>4s}  " + "  ".join(f"dist>={t:.1f}" for t in GRID))
    for name in sets:
        print(f"{name:20s} {table[name]['n']:4d}  "
              + "  ".join(f"{table[name]['support'][str(t)]:9.2f}" for t in GRID))
    print(f"\nsexual/minors >= {MINORS_AT} (the shipped block): "
          + ", ".join(f"{name} {rate:.3f}" for name, rate in minors.items()))
    print(f"\ninput refusals of the app ((overall >= at and a harm category >= confirm_at) or a "
          f"harm category >= {harm_t}); * meets the constraints:")
    print(f"{'at':>5s} {'confirm':>7s}  " + "  ".join(f"{name[:12]:>12s}" for name in sets))
    for pair in [OLD_OVERALL, *pairs]:
        mark = "*" if pair in allowed else " "
        print(f"{pair[0]:5.2f} {str(pair[1]):>7s}{mark} "
              + "  ".join(f"{rates[pair][name]:12.2f}" for name in sets))
    print(f"\nchosen: harm categories >= {harm_t} -> refuse; distress categories >= {support_t} "
          f"-> support; overall score >= {overall_pair[0]} confirmed by a harm category >= "
          f"{overall_pair[1]} -> refuse (general_assistant)")
    write_atomic(args.out, json.dumps({
        "rule": {"harm": f"lowest grid value with look-alike false flags <= {LOOKALIKE_BUDGET}",
                 "support": f"lowest grid value with false support <= {SUPPORT_BUDGET} on "
                            f"{', '.join(benign_sets)}",
                 "overall_refuse": f"(at, confirm_at) with the fewest look-alike refusals among "
                                   f"pairs keeping harmful recall within {RECALL_SLACK} of "
                                   f"{list(OLD_OVERALL)} and support_other refusals <= "
                                   f"{FLAT_REFUSAL_BUDGET}"},
        "chosen": {"harm": harm_t, "support": support_t,
                   "overall_refuse": {"at": overall_pair[0], "confirm_at": overall_pair[1]}},
        "grid": list(GRID), "sets": table,
        "app_input_refusals": [{"at": at, "confirm_at": confirm, "meets_constraints":
                                (at, confirm) in allowed, "rates": rates[(at, confirm)]}
                               for at, confirm in [OLD_OVERALL, *pairs]],
        "sexual_minors_block_rate": {"at": MINORS_AT, "rates": minors},
        "command": "python scripts/tune_policy_thresholds.py", "n": args.n,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
