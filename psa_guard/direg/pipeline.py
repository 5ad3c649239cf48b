"""The ``direg data`` pipeline: prompts -> sampled completions -> refusal filter -> harm pairs.

Resumable: the prompt list is rebuilt deterministically, generation appends to
``completions.jsonl`` and skips finished ids (:mod:`psa_guard.jobs`), and the final files are
rewritten atomically from what is on disk.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psa_guard.core.atomic import write_atomic
from psa_guard.core.checksums import file_sha256
from psa_guard.core.jsonl import read_jsonl, write_jsonl
from psa_guard.datasets.folder import require_data_dir
from psa_guard.datasets.training import evaluation_texts, training_prompts
from psa_guard.direg.data import dedupe_pairs, drop_eval_overlap, jbb_judged_pairs, select_compliant
from psa_guard.generation import GenerationSettings
from psa_guard.jobs import PromptRecord, run_generate_job

__all__ = ["DataRequest", "build_harm_data"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataRequest:
    """Settings of the harm-data pipeline (written into ``data.json``)."""

    out: Path
    data: str | Path | None = None
    model: str = "default"
    advbench_limit: int | None = 100
    red_instruct_per_source: int = 30
    seed: int = 0
    max_new_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.95
    batch_size: int = 8
    include_jbb_judged: bool = False
    max_prompts: int | None = 240


def _refusal_judge_sha256() -> str:
    from psa_guard.evaluation.judges import ARTIFACTS_DIR

    return file_sha256(ARTIFACTS_DIR / "refusal.safetensors")


def _count(keys: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for key in keys:
        out[key] = out.get(key, 0) + 1
    return out


def build_harm_data(request: DataRequest, progress: bool = True) -> dict[str, Any]:
    """Run the whole pipeline; returns the summary written to ``OUT/data.json``."""
    from psa_guard.evaluation.judges import load_judges, response_features
    from psa_guard.evaluation.refusal_prefix import is_refusal_prefix
    from psa_guard.loading import load_model
    from psa_guard.pipeline import RequestPipeline

    folder = require_data_dir(request.data)
    out = request.out
    out.mkdir(parents=True, exist_ok=True)
    prompts = training_prompts(folder, advbench_limit=request.advbench_limit,
                               red_instruct_per_source=request.red_instruct_per_source,
                               seed=request.seed)
    eval_texts = evaluation_texts(folder)
    kept, dropped = drop_eval_overlap(prompts, eval_texts)
    after_overlap = len(kept)
    # For the record: the overlap if every prompt of every training source were used.
    _, dropped_all = drop_eval_overlap(
        training_prompts(folder, advbench_limit=None, red_instruct_per_source=1_000_000), eval_texts)
    if request.max_prompts is not None and request.max_prompts < len(kept):
        chosen = sorted(random.Random(request.seed).sample(range(len(kept)), request.max_prompts))
        kept = [kept[i] for i in chosen]
    write_jsonl(out / "prompts.jsonl", ({"id": p.id, "prompt": p.prompt, "source": p.source,
                                         "file": p.file} for p in kept))
    write_jsonl(out / "dropped_overlap.jsonl", dropped)
    logger.info("%d training prompts, %d dropped for overlap with evaluation suites",
                len(kept), len(dropped))

    settings = GenerationSettings(max_new_tokens=request.max_new_tokens,
                                  temperature=request.temperature, top_p=request.top_p,
                                  seed=request.seed)
    loaded = load_model(request.model, threads=1)
    pipeline = RequestPipeline("base", loader=lambda _: loaded)
    records = [PromptRecord(p.id, p.prompt, i + 1) for i, p in enumerate(kept)]
    completions_path = out / "completions.jsonl"
    summary = run_generate_job(records, completions_path, pipeline, settings,
                               config_name="base", batch_size=request.batch_size,
                               progress=progress)
    if summary.errors:
        logger.warning("%d prompts could not be generated", len(summary.errors))

    wanted = {p.id for p in kept}
    rows = [r for r in read_jsonl(completions_path) if str(r["id"]) in wanted]
    responses = [str(r.get("response", "")) for r in rows]
    panel = load_judges()
    # Only the refusal head is used to select data; the harm judge never sees training data.
    p_refused = panel.refusal.predict_proba(
        response_features(panel.embedder.encode(responses, progress=progress)))
    judge_refused = [bool(p >= 0.5) for p in p_refused]
    prefix_refused = [is_refusal_prefix(t) for t in responses]
    provenance = {"model": loaded.name, "temperature": request.temperature,
                  "top_p": request.top_p, "max_new_tokens": request.max_new_tokens,
                  "seed": request.seed, "filter": "refusal judge AND refusal-prefix matcher"}
    pairs = select_compliant(kept, rows, judge_refused, prefix_refused, provenance)
    jbb = jbb_judged_pairs(folder) if request.include_jbb_judged else []
    final = dedupe_pairs([*pairs, *jbb])
    pairs_path = out / "harm_pairs.jsonl"
    write_jsonl(pairs_path, (p.to_dict() for p in final))

    by_source: dict[str, int] = {}
    for item in final:
        by_source[item.source] = by_source.get(item.source, 0) + 1
    prompt_sources: dict[str, int] = {}
    for prompt in kept:
        prompt_sources[prompt.source] = prompt_sources.get(prompt.source, 0) + 1
    dropped_by_suite: dict[str, int] = {}
    for d in dropped:
        dropped_by_suite[d["suite"]] = dropped_by_suite.get(d["suite"], 0) + 1
    result: dict[str, Any] = {
        "request": {k: (str(v) if isinstance(v, Path) else v)
                    for k, v in request.__dict__.items()},
        "data_folder": str(folder),
        "prompts": {"read_after_dedup": len(prompts), "after_overlap_removal": after_overlap,
                    "kept": len(kept), "by_source": prompt_sources,
                    "dropped_eval_overlap": len(dropped), "dropped_by_suite": dropped_by_suite,
                    "dropped_eval_overlap_if_all_sources_used": len(dropped_all),
                    "dropped_by_source_if_all_sources_used": _count(
                        d["id"].split(":")[0] for d in dropped_all)},
        "completions": {"generated": len(rows),
                        "refused_by_judge": sum(judge_refused),
                        "refused_by_prefix": sum(prefix_refused),
                        "refused_by_either": sum(a or b for a, b in
                                                 zip(judge_refused, prefix_refused)),
                        "kept_compliant": len(pairs)},
        "jbb_judged_included": len(jbb),
        "pairs": {"total": len(final), "by_source": by_source,
                  "duplicates_removed": len(pairs) + len(jbb) - len(final)},
        "harm_pairs_sha256": file_sha256(pairs_path),
        "refusal_judge_sha256": _refusal_judge_sha256(),
        "selection": "kept only completions that the refusal judge (MiniLM head) and the XSTest "
                     "refusal-prefix matcher both call complied; the harm judge is not used",
    }
    write_atomic(out / "data.json", json.dumps(result, indent=2) + "\n")
    return result


