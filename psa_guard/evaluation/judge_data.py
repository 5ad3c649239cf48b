"""Training sets of the judges, read from the safety-data folder (training-side data only).

* refusal: XSTest human-labelled completions (5 model runs x 450); refused = ``2_full_refusal`` or
  ``3_partial_refusal``, complied = ``1_full_compliance``. Group: the model family that wrote the
  completion (``llama2new``/``llama2orig`` are one model with two system prompts, and
  ``mistralguard``/``mistralinstruct`` another, so each pair is one group).
  With ``include_judged_unsafe`` (the default), the JailbreakBench replies of
  ``judged_completions`` that LlamaGuard-2 judged *unsafe* are added as *complied* (a reply that
  carries unsafe content did not refuse, for the purpose of unsafe compliance): XSTest alone
  teaches the head that a harmful topic means a refusal, and it then calls a quarter of those
  compliant replies refusals. Their group is the writing model's family (``llama-2-7b-chat-hf`` is
  the ``llama2`` family of XSTest).
* harm: ``judged_completions/refusal_direction_jbb/<model>/jailbreakbench_*_evaluations.json``;
  unsafe = ``is_jailbreak_llamaguard2 == 1``. Group: the model folder.
* toxicity: ToxiGen human-written statements (hate vs neutral; group: target group) and a seeded
  random sample of Davidson tweets (hate or offensive vs neither; 8,000 of 24,783 by default, to
  keep embedding time on a 2-core CPU to minutes; group: one of five seeded random folds, since
  tweets carry no author or model).
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from psa_guard.core.jsonl import read_jsonl
from psa_guard.datasets.folder import data_file

__all__ = [
    "JUDGED_FAMILIES",
    "XSTEST_COMPLETIONS",
    "XSTEST_FAMILIES",
    "LabelledSet",
    "harm_training_set",
    "refusal_training_set",
    "toxicity_training_set",
]

XSTEST_COMPLETIONS = "over_refusal/xstest/human_labeled_completions"
#: XSTest completion file stem suffix -> model family (the group of the split).
XSTEST_FAMILIES = {
    "gpt4": "gpt4",
    "llama2new": "llama2",
    "llama2orig": "llama2",
    "mistralguard": "mistral",
    "mistralinstruct": "mistral",
}
JUDGED = "judged_completions/refusal_direction_jbb"
TOXIGEN = "toxicity/toxigen/toxigen_demonstration_statements.jsonl"
DAVIDSON = "toxicity/davidson_hatesonar/labeled_data.csv"


@dataclass
class LabelledSet:
    """Texts with 0/1 labels and a group per row (the unit of the held-out split).

    Attributes:
        responses: the text the head reads (a model response, a statement or a tweet).
        prompts: the prompt of each row ("" when there is none).
        labels: int array ``(n,)`` of 0/1.
        groups: group name per row.
        files: data files read (relative to the data folder).
        sources: where each row comes from (``"xstest"``, ``"judged_unsafe"``, ...).
    """

    responses: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add(self, response: str, prompt: str, label: int, group: str, source: str = "") -> None:
        self.responses.append(response)
        self.prompts.append(prompt)
        self.labels.append(int(label))
        self.groups.append(group)
        self.sources.append(source)

    @property
    def y(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=np.int64)


#: ``judged_completions`` model folder -> model family (shared with the XSTest groups).
JUDGED_FAMILIES = {"llama-2-7b-chat-hf": "llama2"}


def refusal_training_set(folder: Path, include_judged_unsafe: bool = True) -> LabelledSet:
    """XSTest human-labelled completions -> refused (1) / complied (0), grouped by model family.

    With ``include_judged_unsafe``, LlamaGuard-2-unsafe JailbreakBench replies are added as
    complied (source ``"judged_unsafe"``); see the module docstring.
    """
    out = LabelledSet()
    labels = {"1_full_compliance": 0, "2_full_refusal": 1, "3_partial_refusal": 1}
    for stem, family in sorted(XSTEST_FAMILIES.items()):
        relative = f"{XSTEST_COMPLETIONS}/xstest_v2_completions_{stem}.csv"
        path = data_file(folder, relative)
        out.files.append(relative)
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                out.add(row["completion"] or "", row["prompt"], labels[row["final_label"]], family,
                        "xstest")
    if include_judged_unsafe:
        judged = harm_training_set(folder)
        out.files.extend(judged.files)
        for response, prompt, label, model in zip(judged.responses, judged.prompts,
                                                  judged.labels, judged.groups):
            if label == 1:
                out.add(response, prompt, 0, JUDGED_FAMILIES.get(model, model), "judged_unsafe")
    return out


def harm_training_set(folder: Path) -> LabelledSet:
    """LlamaGuard-2-labelled JailbreakBench completions -> unsafe (1) / safe (0), by model."""
    out = LabelledSet()
    root = folder / JUDGED
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(model_dir.glob("jailbreakbench_*_evaluations.json")):
            relative = str(path.relative_to(folder))
            out.files.append(relative)
            records = json.loads(path.read_text(encoding="utf-8"))["completions"]
            for record in records:
                out.add(record["response"] or "", record["prompt"],
                        int(record["is_jailbreak_llamaguard2"]), model_dir.name, "judged")
    return out


def toxicity_training_set(folder: Path, seed: int = 0, davidson_folds: int = 5,
                          davidson_sample: int | None = 8000) -> LabelledSet:
    """ToxiGen statements and (a seeded sample of) Davidson tweets -> toxic (1) / not toxic (0)."""
    out = LabelledSet()
    out.files.append(TOXIGEN)
    for row in read_jsonl(data_file(folder, TOXIGEN)):
        out.add(row["text"], "", int(row["label"] == "hate"), f"toxigen:{row['target_group']}",
                "toxigen")
    out.files.append(DAVIDSON)
    rng = random.Random(seed)
    with open(data_file(folder, DAVIDSON), encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if davidson_sample is not None and davidson_sample < len(rows):
        rows = [rows[i] for i in sorted(rng.sample(range(len(rows)), davidson_sample))]
    for row in rows:
        fold = rng.randrange(davidson_folds)
        out.add(row["tweet"], "", int(row["class"] in ("0", "1")), f"davidson:fold{fold}",
                "davidson")
    return out
