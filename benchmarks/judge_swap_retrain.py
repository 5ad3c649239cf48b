"""Would a harm judge taught that harmless off-topic replies are safe pass the swap check? A probe.

``benchmarks/judge_swap.py`` finds that the committed harm judge calls about half of harmless,
unrelated replies unsafe. This probe retrains the harm head the way ``scripts/train_judges.py``
does (same features, same L2 selection by leave-one-group-out, the committed judge's held-out
models), once on the committed data and once with two kinds of extra negatives taken from the same
models' replies to harmless prompts (``judged_completions/*/harmless_*_evaluations.json``):

* ``swap``: a harmless reply paired with a JailbreakBench prompt (seeded draw), label safe;
* ``harmless``: the same reply with its own harmless prompt, label safe.

It prints held-out accuracy on the real LlamaGuard-labelled replies of the held-out models (what
the judge is for) and the swap check of ``judge_swap.py`` (TruthfulQA answers, other text than the
new negatives). Nothing is saved: the committed judge is not changed by this script.

Usage (from the repository root):
    python benchmarks/judge_swap_retrain.py [--limit 100] [--embedding-cache /tmp/psa-judge-emb]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

from psa_guard.core.embedder import encode_cached, load_embedder
from psa_guard.core.heads import fit_logistic
from psa_guard.datasets.folder import require_data_dir
from psa_guard.evaluation.judge_data import JUDGED, harm_training_set
from psa_guard.evaluation.judges import harm_features, load_judges

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import judge_swap  # noqa: E402  (same folder)
from train_judges import choose_l2, predict, scores  # noqa: E402  (the judges' own recipe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100, help="swap-check prompts per suite")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="safety-data folder (default: PSA_GUARD_DATA)")
    parser.add_argument("--embedding-cache", default=None, help="folder for cached embeddings")
    args = parser.parse_args(argv)
    folder = require_data_dir(args.data)
    panel = load_judges()
    held_out = panel.provenance["harm"]["split"]["held_out_groups"]

    data = harm_training_set(folder)
    jbb_prompts = sorted(set(data.prompts))
    for model in sorted(set(data.groups)):
        for path in sorted((folder / JUDGED / model).glob("harmless_*_evaluations.json")):
            draw = random.Random(f"{args.seed}|{model}|{path.name}")
            for record in json.loads(path.read_text(encoding="utf-8"))["completions"]:
                reply = record["response"] or ""
                data.add(reply, draw.choice(jbb_prompts), 0, model, "swap")
                data.add(reply, record["prompt"], 0, model, "harmless")

    embedder = load_embedder()
    x = harm_features(encode_cached(embedder, data.prompts, args.embedding_cache),
                      encode_cached(embedder, data.responses, args.embedding_cache))
    y, groups, sources = data.y, np.asarray(data.groups), np.asarray(data.sources)
    test = np.isin(groups, held_out)
    harmful = judge_swap.prompts_of(judge_swap.HARMFUL_SUITES, args.limit, args.seed, folder)
    benign = judge_swap.prompts_of(judge_swap.BENIGN_SUITES, args.limit, args.seed, folder)
    n = min(len(harmful), len(benign))
    answers = judge_swap.unrelated_answers(folder, n, args.seed)

    print(f"held-out models: {', '.join(held_out)}")
    for name, train in (("committed data", ~test & (sources == "judged")),
                        ("+ harmless negatives", ~test)):
        l2, _ = choose_l2(x[train], y[train], groups[train])
        panel.harm = fit_logistic(x[train], y[train], l2=l2)
        held = scores(y[test & (sources == "judged")],
                      predict(panel.harm, x[test & (sources == "judged")]))
        unsafe_after = [judge_swap.rates(panel, prompts[:n], answers)["unsafe_compliance"]
                        for prompts in (harmful, benign)]
        print(f"{name:22s} l2={l2:g}  held-out LlamaGuard replies: accuracy "
              f"{held['accuracy']:.3f}, balanced {held['balanced_accuracy']:.3f} (n={held['n']}); "
              f"swap check, unsafe compliance after harmful / benign prompts: "
              f"{unsafe_after[0]:.3f} / {unsafe_after[1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
