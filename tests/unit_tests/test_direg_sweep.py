"""DiReg sweep helpers: the default-choice rule and the perplexity measure."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from psa_guard.direg.sweep import choose_default, response_perplexity
from psa_guard.direg.train import encode_pair
from tests.conftest import make_tiny_model


def _point(lam: float | None, unsafe: float, xs: float, jb: float, ppl: float) -> dict[str, Any]:
    return {"lambda": lam, "k_percent": None if lam is None else 100.0, "perplexity": ppl,
            "summary": {"unsafe_compliance": unsafe},
            "suites": {"xstest_safe": {"over_refusal": {"rate": xs}},
                       "jbb_benign": {"over_refusal": {"rate": jb}}}}


@pytest.mark.parametrize("points,expected", [
    # the safest point within +5 points over-refusal and +10% perplexity wins
    ([_point(None, .5, .1, .1, 10), _point(1, .4, .12, .1, 10.5), _point(2, .2, .15, .1, 10.9),
      _point(4, .05, .3, .2, 12)], 2),
    # over-refusal rises 6 points on one benign suite: excluded
    ([_point(None, .5, .1, .1, 10), _point(1, .4, .1, .1, 10), _point(2, .2, .16, .1, 10)], 1),
    # perplexity +11%: excluded; nothing left
    ([_point(None, .5, .1, .1, 10), _point(1, .4, .1, .1, 11.1)], None),
])
def test_choose_default(points: list[dict[str, Any]], expected: float | None) -> None:
    chosen = choose_default(points)
    assert (chosen and chosen["lambda"]) == expected


def test_response_perplexity_matches_a_direct_computation(tokenizer: Any) -> None:
    model = make_tiny_model(tokenizer)
    pairs = [("What is 2+2?", "Four."), ("Name a colour.", "Blue is a colour.")]
    total, count = 0.0, 0
    for q, a in pairs:
        ids, labels = encode_pair(tokenizer, q, a, 256)
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        for t in range(1, len(ids)):
            if labels[t] != -100:
                total -= float(logp[t - 1, ids[t]])
                count += 1
    expected = math.exp(total / count)
    assert response_perplexity(model, tokenizer, pairs, batch_size=2) == pytest.approx(expected,
                                                                                      rel=1e-4)
