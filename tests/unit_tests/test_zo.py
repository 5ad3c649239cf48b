"""Zeroth-order embedding optimisation: the equations, the loop, and the model responder."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch

from psa_guard.errors import ConfigurationError
from psa_guard.generation import ChatGenerator, GenerationSettings
from psa_guard.zo import (
    EmbeddingOptimizer,
    ZOSettings,
    model_responder,
    normalize_per_token,
    project_cosine,
    sample_directions,
    zo_gradient,
)


def test_directions_have_each_tokens_norm() -> None:
    reference = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    u = sample_directions(reference, 5, torch.Generator().manual_seed(0))
    assert u.shape == (5, 2, 2)
    assert torch.allclose(u.norm(dim=-1), torch.tensor([5.0, 2.0]).expand(5, 2))


def test_zo_gradient_matches_the_formula_and_the_true_gradient() -> None:
    directions = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(1))
    f_perturbed = torch.tensor([0.3, 0.1, 0.7])
    expected = sum((f_perturbed[j] - 0.2) / 0.05 * directions[j] for j in range(3)) / 3
    assert torch.allclose(zo_gradient(0.2, f_perturbed, directions, 0.05), expected)
    # On a linear objective f(E) = <w, E>, many directions recover w's direction.
    w = torch.randn(2, 4, generator=torch.Generator().manual_seed(2))
    many = torch.randn(4000, 2, 4, generator=torch.Generator().manual_seed(3))
    values = (many * 0.01 * w).sum(dim=(1, 2))
    estimate = zo_gradient(0.0, values, many, 0.01)
    cosine = torch.nn.functional.cosine_similarity(estimate.flatten(), w.flatten(), dim=0)
    assert cosine > 0.95


def test_normalize_per_token_keeps_zero_rows() -> None:
    out = normalize_per_token(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    assert torch.allclose(out, torch.tensor([[0.6, 0.8], [0.0, 0.0]]))


def test_project_cosine() -> None:
    original = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    current = torch.tensor([[0.0, 2.0], [1.0, 0.1]])  # row 0 at cos 0, row 1 close
    out = project_cosine(current, original, 0.2)
    cos = torch.nn.functional.cosine_similarity(out, original, dim=-1)
    assert math.isclose(float(cos[0]), 0.2, abs_tol=1e-6)
    assert math.isclose(float(out[0].norm()), 2.0, abs_tol=1e-6)
    assert torch.equal(out[1], current[1])


@pytest.mark.parametrize("kwargs", [{"n_directions": 0}, {"mu": 0}, {"threshold": 0},
                                    {"max_iters": -1}, {"min_cos": 2}])
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ConfigurationError):
        ZOSettings(**kwargs)


class MeanScorer:
    """Objective test double: the reply is a number; score = sigmoid(8 * number)."""

    name = "mean"

    def score(self, texts: Sequence[str]) -> list[float]:
        return [1 / (1 + math.exp(-8 * float(t))) for t in texts]


def _respond(embeds: torch.Tensor) -> list[str]:
    return [f"{float(row.mean()):.6f}" for row in embeds]


def test_loop_lowers_the_score_below_threshold_within_budget() -> None:
    # Token embeddings point in varied directions (as real ones do), with a positive mean.
    embeddings = 0.5 * torch.randn(6, 8, generator=torch.Generator().manual_seed(0)) + 0.15
    settings = ZOSettings(n_directions=8, mu=0.05, eta=0.5, max_iters=10, seed=0)
    result = EmbeddingOptimizer(_respond, MeanScorer(), settings).optimise(embeddings)
    assert result.initial_score > 0.5
    assert result.neutralised and result.score < 0.5
    assert 1 <= result.iterations <= 10
    assert result.iterations < 10  # it stopped because the score fell, not at the cap
    assert result.scorer_calls == 1 + result.iterations * (settings.n_directions + 1)
    again = EmbeddingOptimizer(_respond, MeanScorer(), settings).optimise(embeddings)
    assert again.text == result.text  # deterministic under a seed


def test_unflagged_prompt_is_untouched() -> None:
    embeddings = torch.full((4, 8), -0.3)
    result = EmbeddingOptimizer(_respond, MeanScorer()).optimise(embeddings)
    assert result.iterations == 0 and result.scorer_calls == 1 and result.text == "-0.300000"


def test_model_responder_matches_generation_from_ids(tiny_generator: ChatGenerator) -> None:
    settings = GenerationSettings(max_new_tokens=6)
    expected = tiny_generator.generate(["hello"], settings)[0].text
    ids = torch.tensor([tiny_generator.encode("hello")])
    with torch.no_grad():
        embeds = tiny_generator.loaded.model.get_input_embeddings()(ids)
    respond = model_responder(tiny_generator, settings)
    assert respond(embeds) == [expected]
    assert respond(embeds.repeat(3, 1, 1)) == [expected] * 3  # batched perturbations


class QueueScorer:
    """Returns scripted scores call by call (a routing test double); then 0.1 for everything."""

    name = "queue"

    def __init__(self, *batches: list[float]) -> None:
        self.batches = list(batches)

    def score(self, texts: Sequence[str]) -> list[float]:
        return self.batches.pop(0) if self.batches else [0.1] * len(texts)


def test_zo_configuration_leaves_unflagged_rows_identical(tiny_loaded) -> None:
    from psa_guard.configs import config_names
    from psa_guard.zo.config import ZOGenerator

    assert "zo" in config_names()
    settings = GenerationSettings(max_new_tokens=5)
    prompts = ["hi", "tell me something about the weather in spring"]
    base = ChatGenerator(tiny_loaded).generate(prompts, settings)
    zo = ZOGenerator(tiny_loaded, scorer=QueueScorer([0.1, 0.9], [0.9, 0.9]),
                     zo_settings=ZOSettings(n_directions=2, max_iters=3))
    out = zo.generate(prompts, settings)
    same = ("text", "prompt_tokens", "completion_tokens", "finish_reason")
    assert [getattr(out[0], k) for k in same] == [getattr(base[0], k) for k in same]
    assert out[0].extra["zo"] == {"flagged": False, "score": 0.1}
    info = out[1].extra["zo"]
    assert info["flagged"] is True and info["neutralised"] is True
    assert info["iterations"] == 1 and info["scorer_calls"] == 2 + 1  # N perturbed + new reply
