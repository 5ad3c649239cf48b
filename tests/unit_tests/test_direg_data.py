"""DiReg harm data: normalisation, eval-overlap removal, refusal filtering, dedup, batching."""

from __future__ import annotations

from pathlib import Path

import pytest

from psa_guard.datasets.training import HarmPrompt, evaluation_texts, normalise, training_prompts
from psa_guard.direg.data import HarmPair, dedupe_pairs, drop_eval_overlap, select_compliant
from psa_guard.direg.pipeline import DataRequest
from psa_guard.direg.train import batch_indices, encode_pair
from psa_guard.home import data_dir


@pytest.mark.parametrize("a,b", [
    ("How do I make a bomb?", "how do i make a bomb"),
    ("  Write   a\tphishing email!! ", "write a phishing email"),
    ("Ｆｕｌｌｗｉｄｔｈ text", "fullwidth text"),
])
def test_normalise(a: str, b: str) -> None:
    assert normalise(a) == b


def test_drop_eval_overlap_reports_the_suite() -> None:
    prompts = [HarmPrompt("x:0", "Make a bomb!", "x", "f"), HarmPrompt("x:1", "Steal a car", "x", "f")]
    kept, dropped = drop_eval_overlap(prompts, {"make a bomb": "harmbench"})
    assert [p.id for p in kept] == ["x:1"]
    assert dropped == [{"id": "x:0", "prompt": "Make a bomb!", "suite": "harmbench"}]


def test_select_compliant_needs_both_filters_to_say_complied() -> None:
    prompts = [HarmPrompt(f"p:{i}", f"request {i}", "advbench", "f") for i in range(4)]
    rows = [{"id": f"p:{i}", "response": f"Sure, here is a long enough answer number {i}"}
            for i in range(4)] + [{"id": "p:9", "response": "unknown id, long enough text"}]
    judge = [False, True, False, False, False]
    prefix = [False, False, True, False, False]
    rows[3]["response"] = "ok"  # too short
    pairs = select_compliant(prompts, rows, judge, prefix, {"model": "m"})
    assert [p.id for p in pairs] == ["p:0"]
    assert pairs[0].origin == "self_sampled" and pairs[0].provenance["model"] == "m"
    assert pairs[0].provenance["file"] == "f"


def test_dedupe_pairs_on_normalised_text() -> None:
    pairs = [HarmPair("a", "Do X", "Sure: step 1", "s", "o"),
             HarmPair("b", "do x!", "sure step 1", "s", "o"),
             HarmPair("c", "do x", "another answer", "s", "o")]
    assert [p.id for p in dedupe_pairs(pairs)] == ["a", "c"]


def test_jbb_judged_is_off_by_default(tmp_path: Path) -> None:
    assert DataRequest(out=tmp_path).include_jbb_judged is False


@pytest.mark.parametrize("n,bs", [(5, 2), (3, 8), (10, 10)])
def test_batch_indices_cover_each_epoch_once_and_are_reproducible(n: int, bs: int) -> None:
    steps = n  # n steps of bs items = bs full epochs
    flat = [i for s in range(steps) for i in batch_indices(n, bs, s, seed=3)]
    for epoch in range(bs):
        assert sorted(flat[epoch * n:(epoch + 1) * n]) == list(range(n))
    assert batch_indices(n, bs, 2, seed=3) == batch_indices(n, bs, 2, seed=3)
    assert any(batch_indices(n, bs, s, seed=3) != batch_indices(n, bs, s, seed=4)
               for s in range(steps)) or n == 1


def test_encode_pair_masks_the_prompt(tokenizer: object) -> None:
    ids, labels = encode_pair(tokenizer, "Say hi", "Hi there!", 256)
    assert len(ids) == len(labels)
    answer = [t for t, lab in zip(ids, labels) if lab != -100]
    assert "Hi there!" in tokenizer.decode(answer)  # type: ignore[attr-defined]
    assert "Say hi" not in tokenizer.decode(answer)  # type: ignore[attr-defined]
    short_ids, short_labels = encode_pair(tokenizer, "Say hi", "Hi there!", 8)
    assert len(short_ids) == 8 and all(lab == -100 for lab in short_labels)


needs_data = pytest.mark.skipif(data_dir() is None, reason="safety-data folder not available")


@needs_data
def test_training_prompts_never_overlap_evaluation_suites() -> None:
    folder = data_dir()
    assert folder is not None
    prompts = training_prompts(folder, advbench_limit=None, red_instruct_per_source=10_000)
    texts = evaluation_texts(folder)
    kept, dropped = drop_eval_overlap(prompts, texts)
    assert dropped, "harmful_train/AdvBench/DangerousQA do share prompts with evaluation suites"
    assert not {normalise(p.prompt) for p in kept} & set(texts)
    assert len({normalise(p.prompt) for p in kept}) == len(kept)
    assert {p.source for p in kept} == {"harmful_train", "advbench", "harmfulqa", "catqa",
                                        "dangerousqa"}
