"""DiReg harm data: harmful training-side requests paired with harmful compliant responses.

Pipeline (``psa-guard direg data``), every step resumable:

1. :func:`training_prompts` reads harmful requests from the *training side* of the safety data only
   (docs/method.md section 7): ``refusal_direction/splits/harmful_train.json``, AdvBench
   (``refusal_direction/raw/advbench.csv``) and a seeded sample of HarmfulQA, CatQA (English) and
   DangerousQA (``red_instruct``). Prompts are deduplicated on :func:`normalise`\\ d text, and any
   prompt whose normalised text also appears in an evaluation suite (HarmBench, JailbreakBench
   harmful and benign, StrongREJECT, SimpleSafetyTests, Do-Not-Answer, XSTest) is dropped
   (:func:`drop_eval_overlap`; ``harmful_train.json`` is a mix of sources, so this matters).
2. The default model's own *sampled* completions on those prompts are generated with
   :func:`psa_guard.jobs.run_generate_job` (appends JSONL, skips finished ids).
3. :func:`select_compliant` keeps completions that *both* the XSTest refusal-prefix matcher and the
   evaluation's refusal judge call complied. The harm judge is never used here: it judges the
   evaluation, so it must not also select the training data.
4. Optionally (``--include-jbb-judged``, off by default) LlamaGuard-2-unsafe completions from
   ``judged_completions`` are added. Their prompts are the JailbreakBench behaviours, an evaluation
   suite, so training on them would contaminate the JailbreakBench numbers.

Every output row carries its provenance (source file, origin, generation settings, verdicts).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from psa_guard.datasets.training import HarmPrompt, normalise
from psa_guard.errors import DataError

__all__ = [
    "JBB_JUDGED",
    "HarmPair",
    "dedupe_pairs",
    "drop_eval_overlap",
    "jbb_judged_pairs",
    "select_compliant",
]

logger = logging.getLogger(__name__)

JBB_JUDGED = "judged_completions/refusal_direction_jbb"


@dataclass(frozen=True)
class HarmPair:
    """A harmful request with a harmful compliant response, and where both came from."""

    id: str
    prompt: str
    response: str
    source: str
    origin: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def drop_eval_overlap(prompts: Sequence[HarmPrompt], eval_texts: dict[str, str]
                      ) -> tuple[list[HarmPrompt], list[dict[str, str]]]:
    """Split prompts into those absent from every evaluation suite and the dropped ones.

    Returns:
        The kept prompts, and one ``{"id", "prompt", "suite"}`` record per dropped prompt.
    """
    kept, dropped = [], []
    for item in prompts:
        suite = eval_texts.get(normalise(item.prompt))
        if suite is None:
            kept.append(item)
        else:
            dropped.append({"id": item.id, "prompt": item.prompt, "suite": suite})
    return kept, dropped


def select_compliant(prompts: Sequence[HarmPrompt], rows: Sequence[dict[str, Any]],
                     judge_refused: Sequence[bool], prefix_refused: Sequence[bool],
                     provenance: dict[str, Any], min_chars: int = 20) -> list[HarmPair]:
    """Keep sampled completions that neither the refusal judge nor the prefix matcher call refused.

    Args:
        prompts: the requests, matched to ``rows`` by id.
        rows: generation output rows (``id``, ``response``, ...), one per prompt generated.
        judge_refused: the refusal judge's verdict per row.
        prefix_refused: the XSTest refusal-prefix matcher's verdict per row.
        provenance: shared provenance (model, settings) added to every pair.
        min_chars: responses shorter than this (stripped) are dropped as empty.
    """
    by_id = {p.id: p for p in prompts}
    pairs = []
    for row, refused, prefix in zip(rows, judge_refused, prefix_refused):
        prompt = by_id.get(str(row["id"]))
        text = str(row.get("response", "")).strip()
        if prompt is None or refused or prefix or len(text) < min_chars:
            continue
        pairs.append(HarmPair(prompt.id, prompt.prompt, text, prompt.source, "self_sampled",
                              {**provenance, "file": prompt.file,
                               "finish_reason": row.get("finish_reason")}))
    return pairs


def jbb_judged_pairs(folder: Path) -> list[HarmPair]:
    """LlamaGuard-2-unsafe completions from ``judged_completions`` (JailbreakBench prompts).

    Off by default in the pipeline: these prompts are an evaluation suite (contamination).
    """
    root = folder / JBB_JUDGED
    if not root.is_dir():
        raise DataError(f"{root} is missing from the safety-data folder {folder}")
    pairs = []
    for path in sorted(root.glob("*/jailbreakbench_*_evaluations.json")):
        rows = json.loads(path.read_text(encoding="utf-8")).get("completions", [])
        for i, r in enumerate(rows):
            if r.get("is_jailbreak_llamaguard2") and str(r.get("response", "")).strip():
                relative = str(path.relative_to(folder))
                pairs.append(HarmPair(f"jbb_judged:{path.parent.name}:{path.stem}:{i}", r["prompt"],
                                      r["response"].strip(), "jbb_judged", "llamaguard2_unsafe",
                                      {"file": relative, "label": "is_jailbreak_llamaguard2"}))
    return pairs


def dedupe_pairs(pairs: Iterable[HarmPair]) -> list[HarmPair]:
    """Drop pairs whose normalised (prompt, response) repeats an earlier one."""
    seen: set[tuple[str, str]] = set()
    out = []
    for pair in pairs:
        key = (normalise(pair.prompt), normalise(pair.response))
        if key not in seen:
            seen.add(key)
            out.append(pair)
    return out
