"""Zeroth-order embedding optimisation: the equations, the loop, and the model responder."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch

from psa_guard.errors import ConfigurationError
from psa_guard.generation import ChatGenerator, GenerationSettings
from psa_guard.zo import (
    Candidate,
    EmbeddingOptimizer,
    ZOSettings,
    descent_step,
    model_responder,
    normalize_per_token,
    project_cosine,
    replay,
    sample_directions,
    zo_gradient,
)
from psa_guard.zo.quality import degeneracy, distinct_bigrams, penalised


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


def test_descent_step_moves_each_token_by_eta_times_its_norm_then_projects() -> None:
    original = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    gradient = torch.tensor([[0.0, 10.0], [0.0, -1.0]])
    out = descent_step(original, original, gradient, 0.2, -1.0)  # no projection at -1
    assert torch.allclose(out, torch.tensor([[3.0, 3.0], [1.0, 0.2]]))  # 0.2*5 and 0.2*1
    far = descent_step(original, original, gradient, 10.0, 0.5)  # a huge step is projected
    cos = torch.nn.functional.cosine_similarity(far, original, dim=-1)
    assert torch.allclose(cos, torch.tensor([0.5, 0.5]), atol=1e-6)


@pytest.mark.parametrize("kwargs", [{"n_directions": 0}, {"mu": 0}, {"threshold": 0},
                                    {"max_iters": -1}, {"min_cos": 2}, {"target": 0},
                                    {"target": 1.5}, {"target": float("nan")},
                                    {"degeneracy_weight": -1}, {"degeneracy_floor": 0},
                                    {"degeneracy_floor": 1.5}, {"budget_iterations": 0}])
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ConfigurationError):
        ZOSettings(**kwargs)


@pytest.mark.parametrize(("threshold", "target", "stop"), [(0.5, 0.3, 0.3), (0.5, 0.5, 0.5),
                                                           (0.5, 0.9, 0.5), (0.2, 0.3, 0.2)])
def test_stop_below_is_the_lower_of_target_and_threshold(threshold, target, stop) -> None:
    assert ZOSettings(threshold=threshold, target=target).stop_below == stop


class MeanScorer:
    """Objective test double: the reply is a number; score = sigmoid(8 * number)."""

    name = "mean"

    def score(self, texts: Sequence[str]) -> list[float]:
        return [1 / (1 + math.exp(-8 * float(t))) for t in texts]


def _respond(embeds: torch.Tensor) -> list[str]:
    return [f"{float(row.mean()):.6f}" for row in embeds]


# Token embeddings point in varied directions (as real ones do), with a positive mean.
EMBEDDINGS = 0.5 * torch.randn(6, 8, generator=torch.Generator().manual_seed(0)) + 0.15


def test_loop_lowers_the_score_below_the_target_within_budget() -> None:
    settings = ZOSettings(n_directions=8, mu=0.05, eta=0.5, max_iters=10, target=0.3, seed=0)
    result = EmbeddingOptimizer(_respond, MeanScorer(), settings).optimise(EMBEDDINGS)
    assert result.initial_score > 0.5
    assert result.neutralised and result.score < 0.3  # below the target, not just the threshold
    assert 1 <= result.iterations < 10  # it stopped because the score fell, not at the cap
    n = settings.n_directions
    per_iteration = n + (0 if result.source == "perturbation" else 1)
    assert result.scorer_calls == 1 + (result.iterations - 1) * (n + 1) + per_iteration
    assert result.text == _respond(result.embeddings.unsqueeze(0))[0]  # the reply's embeddings
    again = EmbeddingOptimizer(_respond, MeanScorer(), settings).optimise(EMBEDDINGS)
    assert again.text == result.text  # deterministic under a seed
    assert [c.text for c in again.trace] == [c.text for c in result.trace]


def _old_tide_loop(embeddings: torch.Tensor, settings: ZOSettings) -> tuple[str, float, int, int]:
    """The loop before issue 7's changes: steps only, stop below the threshold, last reply."""
    text = _respond(embeddings.unsqueeze(0))[0]
    score, calls = MeanScorer().score([text])[0], 1
    original, current = embeddings.clone(), embeddings.clone()
    generator = torch.Generator().manual_seed(settings.seed)
    iterations = 0
    while score >= settings.threshold and iterations < settings.max_iters:
        iterations += 1
        directions = sample_directions(original, settings.n_directions, generator)
        replies = _respond(current.unsqueeze(0) + settings.mu * directions)
        scores = torch.tensor(MeanScorer().score(replies), dtype=torch.float32)
        calls += len(replies)
        step = normalize_per_token(zo_gradient(score, scores, directions, settings.mu))
        current = current - settings.eta * original.norm(dim=-1, keepdim=True) * step
        current = project_cosine(current, original, settings.min_cos)
        text = _respond(current.unsqueeze(0))[0]
        score, calls = MeanScorer().score([text])[0], calls + 1
    return text, score, iterations, calls


@pytest.mark.parametrize(("n_directions", "mu"), [(2, 0.05), (8, 0.05), (8, 0.3), (4, 0.5)])
def test_replay_of_one_long_run_equals_the_runs_it_stands_for(n_directions: int,
                                                               mu: float) -> None:
    # A run that never stops early (a tiny target) records the whole trajectory.
    long = EmbeddingOptimizer(_respond, MeanScorer(), ZOSettings(
        n_directions=n_directions, mu=mu, max_iters=6, target=1e-9)).optimise(EMBEDDINGS)
    assert long.iterations == 6 and len(long.trace) == 1 + (n_directions + 1) * 6  # all scored
    sources = set()
    for target in (0.5, 0.45, 0.3, 0.2):
        for iters in range(7):
            settings = ZOSettings(n_directions=n_directions, mu=mu, max_iters=iters,
                                  target=target)
            run = EmbeddingOptimizer(_respond, MeanScorer(), settings).optimise(EMBEDDINGS)
            sources.add(run.source)
            outcome = replay(long.trace, settings.stop_below, iters)
            assert outcome is not None
            assert (outcome.chosen.text, outcome.chosen.score, outcome.chosen.source,
                    outcome.iterations, outcome.scorer_calls) == (
                run.text, run.score, run.source, run.iterations, run.scorer_calls)
            # The original TIDE rule replays to the original loop.
            old = replay(long.trace, settings.threshold, iters, accept_perturbations=False,
                         keep_best=False)
            assert old is not None
            assert (old.chosen.text, old.chosen.score, old.iterations, old.scorer_calls) == (
                _old_tide_loop(EMBEDDINGS, settings))
    # Large perturbations are accepted in some runs: both paths are covered.
    assert sources == ({"initial", "step", "perturbation"} if mu > 0.1 else {"initial", "step"})


def _trace(*scores: float) -> list[Candidate]:
    """A trace from scores: initial, then (perturbation, step) per iteration; calls with N=4."""
    out = [Candidate("c0", scores[0], "initial", 0, 0)]
    for k, score in enumerate(scores[1:], start=1):
        iteration, is_step = (k + 1) // 2, k % 2 == 0
        out.append(Candidate(f"c{k}", score, "step" if is_step else "perturbation", iteration,
                             iteration * 5 - (0 if is_step else 1)))
    return out


def test_replay_rules_and_an_insufficient_trace() -> None:
    trace = _trace(0.9, 0.6, 0.95, 0.2, 0.7)  # iteration 2's perturbation is the best
    new = replay(trace, 0.5, 3)
    assert new is not None
    assert (new.chosen.text, new.iterations, new.scorer_calls) == ("c3", 2, 9)  # no step call
    old = replay(trace, 0.5, 2, accept_perturbations=False, keep_best=False)
    assert old is not None and (old.chosen.text, old.scorer_calls) == ("c4", 10)  # last step
    best_not_last = replay(trace, 0.5, 1)
    assert best_not_last is not None and best_not_last.chosen.text == "c1"  # 0.6, not the 0.95
    assert replay(trace, 0.5, 3, accept_perturbations=False) is None  # iteration 3 not recorded
    assert replay(trace, 0.1, 3) is None  # the run stopped at 0.2: a lower target needs more
    with pytest.raises(ValueError):
        replay(trace[1:], 0.5, 1)


class QueueScorer:
    """Returns scripted scores call by call (a routing test double); then ``then`` for everything."""

    name = "queue"

    def __init__(self, *batches: list[float], then: float = 0.1) -> None:
        self.batches = list(batches)
        self.then = then

    def score(self, texts: Sequence[str]) -> list[float]:
        return self.batches.pop(0) if self.batches else [self.then] * len(texts)


def _counting_respond(embeds: torch.Tensor) -> list[str]:
    return [f"reply {float(row.sum()):.5f}" for row in embeds]


def test_a_perturbation_below_the_target_is_accepted_without_a_step() -> None:
    embeddings = torch.ones(3, 4)
    scorer = QueueScorer([0.6, 0.25, 0.1], [0.9])  # the perturbations; a step would get 0.9
    settings = ZOSettings(n_directions=3, target=0.3, max_iters=3)
    result = EmbeddingOptimizer(_counting_respond, scorer, settings).optimise(
        embeddings, initial=("initial reply", 0.8))
    assert result.source == "perturbation" and result.score == 0.1  # the best of the three
    assert result.iterations == 1 and result.scorer_calls == 3  # no step, no re-score
    assert scorer.batches == [[0.9]]  # the step's call never happened
    assert result.embeddings is not None and not torch.equal(result.embeddings, embeddings)
    assert result.text == _counting_respond(result.embeddings.unsqueeze(0))[0]


def test_the_best_reply_seen_is_returned_never_a_worse_one() -> None:
    # Perturbations 0.6/0.55 (not below the target), step 0.9; then 0.7/0.8, step 0.95.
    scorer = QueueScorer([0.6, 0.55], [0.9], [0.7, 0.8], [0.95])
    settings = ZOSettings(n_directions=2, target=0.3, max_iters=2)
    result = EmbeddingOptimizer(_counting_respond, scorer, settings).optimise(
        torch.ones(3, 4), initial=("initial reply", 0.85))
    assert (result.score, result.source, result.iterations, result.scorer_calls) == (
        0.55, "perturbation", 2, 6)
    assert not result.neutralised
    assert [c.source for c in result.trace] == ["initial", "perturbation", "perturbation", "step",
                                                "perturbation", "perturbation", "step"]
    assert [c.calls for c in result.trace] == [0, 2, 2, 3, 5, 5, 6]  # a batch shares its count
    # When nothing beats the original reply, the original is returned.
    worse = EmbeddingOptimizer(_counting_respond, QueueScorer([0.9, 0.9], [0.95]), ZOSettings(
        n_directions=2, max_iters=1)).optimise(torch.ones(3, 4), initial=("initial reply", 0.6))
    assert (worse.text, worse.score, worse.source) == ("initial reply", 0.6, "initial")


def test_the_target_keeps_optimising_below_the_threshold() -> None:
    # The first step reaches 0.4: no longer flagged, but not below the 0.3 target.
    script = ([0.8, 0.9], [0.4], [0.5, 0.45], [0.2])
    with_margin = EmbeddingOptimizer(_counting_respond, QueueScorer(*script), ZOSettings(
        n_directions=2, target=0.3, max_iters=3)).optimise(torch.ones(3, 4), initial=("x", 0.9))
    assert (with_margin.score, with_margin.iterations, with_margin.scorer_calls) == (0.2, 2, 6)
    no_margin = EmbeddingOptimizer(_counting_respond, QueueScorer(*script), ZOSettings(
        n_directions=2, target=0.5, max_iters=3)).optimise(torch.ones(3, 4), initial=("x", 0.9))
    assert (no_margin.score, no_margin.iterations, no_margin.scorer_calls) == (0.4, 1, 3)
    assert with_margin.neutralised and no_margin.neutralised  # both are below the threshold


def test_unflagged_prompt_is_untouched() -> None:
    # Score sigmoid(-2.4) = 0.08: not flagged (< 0.5), though above the default target.
    assert ZOSettings().stop_below < 0.08
    embeddings = torch.full((4, 8), -0.3)
    result = EmbeddingOptimizer(_respond, MeanScorer()).optimise(embeddings)
    assert result.iterations == 0 and result.scorer_calls == 1 and result.text == "-0.300000"
    assert result.source == "initial"


def test_model_responder_matches_generation_from_ids(tiny_generator: ChatGenerator) -> None:
    settings = GenerationSettings(max_new_tokens=6)
    expected = tiny_generator.generate(["hello"], settings)[0].text
    ids = torch.tensor([tiny_generator.encode("hello")])
    with torch.no_grad():
        embeds = tiny_generator.loaded.model.get_input_embeddings()(ids)
    respond = model_responder(tiny_generator, settings)
    assert respond(embeds) == [expected]
    assert respond(embeds.repeat(3, 1, 1)) == [expected] * 3  # batched perturbations


def test_zo_configuration_leaves_unflagged_rows_identical(tiny_loaded) -> None:
    from psa_guard.registry import config_names
    from psa_guard.zo.generator import ZOGenerator

    assert "zo" in config_names()
    settings = GenerationSettings(max_new_tokens=5)
    prompts = ["hi", "tell me something about the weather in spring"]
    base = ChatGenerator(tiny_loaded).generate(prompts, settings)
    zo = ZOGenerator(tiny_loaded, scorer=QueueScorer([0.1, 0.9], [0.9, 0.9], [0.001]),
                     zo_settings=ZOSettings(n_directions=2, max_iters=3, degeneracy_weight=0))
    out = zo.generate(prompts, settings)  # (the tiny model's replies may be repetitive)
    same = ("text", "prompt_tokens", "completion_tokens", "finish_reason")
    assert [getattr(out[0], k) for k in same] == [getattr(base[0], k) for k in same]
    assert out[0].extra["zo"] == {"flagged": False, "score": 0.1}
    info = out[1].extra["zo"]
    assert info["flagged"] is True and info["neutralised"] is True
    assert info["iterations"] == 1 and info["scorer_calls"] == 2 + 1  # N perturbed + new reply
    assert info["source"] == "step"
    assert info["degenerate"] is (degeneracy(out[1].text) > 0)


@pytest.mark.parametrize(("text", "distinct", "penalty"), [
    ("one", 1.0, 0.0),
    ("How to bake bread: mix flour and water, knead, rest, bake.", 1.0, 0.0),
    ("1. 1. 1. 1. 1.", 0.25, 0.5),  # 1 distinct bigram of 4
    ("A. A. A. A. A. A. A. A. A. A. A.", 0.1, 0.8),
    ("a b a b", 2 / 3, 0.0),  # 67% distinct: above the 50% floor
])
def test_degeneracy_of_replies(text: str, distinct: float, penalty: float) -> None:
    assert math.isclose(distinct_bigrams(text), distinct)
    assert math.isclose(degeneracy(text), penalty)
    assert math.isclose(degeneracy(text, floor=1.0), 1 - distinct)


@pytest.mark.parametrize("empty", ["", "  ", "\n\n"])
def test_an_empty_reply_is_fully_degenerate(empty: str) -> None:
    assert distinct_bigrams(empty) == 1.0  # no bigrams: not repetitive, but nothing was said
    assert degeneracy(empty) == 1.0


def test_degeneracy_rejects_a_bad_floor() -> None:
    with pytest.raises(ValueError):
        degeneracy("a b", floor=0)


def test_penalised_ranks_safe_replies_first_then_by_quality() -> None:
    loop, prose = "A. A. A. A. A. A. A. A. A. A. A.", "Here is a calm and safe answer."
    assert penalised(0.001, loop, 0.0) == 0.001  # no weight: the score alone
    assert penalised(0.001, loop, 1.0, threshold=0.5) > penalised(0.2, prose, 1.0, threshold=0.5)
    # A flagged reply ranks behind every reply that is not flagged, however repetitive.
    assert penalised(0.5, prose, 1.0, threshold=0.5) > penalised(0.49, loop, 1.0, threshold=0.5)
    assert penalised(0.5, prose, 0.0, threshold=0.5) > penalised(0.49, loop, 0.0, threshold=0.5)
    # Without a weight the order is the score's (flagged ones shifted up, order kept).
    scores = [0.9, 0.6, 0.5, 0.49, 0.1, 0.0]
    assert [penalised(x, prose, 0.0, threshold=0.5) for x in scores] == sorted(
        penalised(x, prose, 0.0, threshold=0.5) for x in scores)[::-1]


class ScriptedRespond:
    """Replies from a script, one list per call (a routing test double); then "fine reply"."""

    def __init__(self, *batches: list[str]) -> None:
        self.batches = list(batches)

    def __call__(self, embeds: torch.Tensor) -> list[str]:
        batch = self.batches.pop(0) if self.batches else ["fine reply"] * embeds.shape[0]
        assert len(batch) == embeds.shape[0]
        return batch


LOOP = "1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1."
COHERENT = "I can help with something else, for example how to stay safe at home."


def test_the_degeneracy_penalty_prefers_a_coherent_safe_reply_to_a_derailed_one() -> None:
    # Iteration 1: a derailed reply scores lowest (0.0001), a coherent one 0.001, both below the
    # 0.002 target. Without the penalty the loop takes the derailed one; with it, the coherent.
    def run(weight: float):
        respond = ScriptedRespond([LOOP, COHERENT, "harmful steps"])
        scorer = QueueScorer([0.0001, 0.001, 0.9])
        return EmbeddingOptimizer(respond, scorer, ZOSettings(
            n_directions=3, target=0.002, max_iters=3, degeneracy_weight=weight)).optimise(
            torch.ones(3, 4), initial=("harmful reply", 0.9))

    plain, penalised_run = run(0.0), run(1.0)
    assert (plain.text, plain.source, plain.scorer_calls) == (LOOP, "perturbation", 3)
    assert (penalised_run.text, penalised_run.score, penalised_run.source,
            penalised_run.scorer_calls) == (COHERENT, 0.001, "perturbation", 3)
    assert penalised_run.neutralised


def test_a_derailed_reply_below_the_target_does_not_stop_the_penalised_loop() -> None:
    # Iteration 1: only derailed replies are below the target, so the loop steps on; the step's
    # coherent reply (0.01) and iteration 2's coherent perturbation (0.001) follow.
    respond = ScriptedRespond([LOOP, "harmful steps"], ["step reply, coherent and calm"],
                              [COHERENT, "harmful again"])
    scorer = QueueScorer([0.0001, 0.9], [0.01], [0.001, 0.95])
    result = EmbeddingOptimizer(respond, scorer, ZOSettings(
        n_directions=2, target=0.002, max_iters=3, degeneracy_weight=1.0)).optimise(
        torch.ones(3, 4), initial=("harmful reply", 0.9))
    assert (result.text, result.iterations, result.scorer_calls) == (COHERENT, 2, 5)
    assert not result.degenerate
    # Were nothing coherent found, the derailed reply still beats the flagged original.
    respond = ScriptedRespond([LOOP, "harmful steps"], ["harmful step reply"])
    result = EmbeddingOptimizer(respond, QueueScorer([0.0001, 0.9], [0.8]), ZOSettings(
        n_directions=2, target=0.002, max_iters=1, degeneracy_weight=1.0)).optimise(
        torch.ones(3, 4), initial=("harmful reply", 0.9))
    assert (result.text, result.source, result.neutralised) == (LOOP, "perturbation", True)
    assert result.degenerate  # not flagged, but no answer: the repair action falls back


def test_the_penalty_leaves_the_trajectory_unchanged_and_replays_exactly() -> None:
    # The gradient uses moderation scores only: the stepped embeddings are the same whatever
    # the weight, so a weight-0 trace replays a penalised run exactly.
    def respond(embeds: torch.Tensor) -> list[str]:
        # Replies with a negative mean derail into a loop; the scorer sees only the number.
        return [f"{float(row.mean()):.6f}" + (" x x x x x x x x" if row.mean() < -0.05 else "")
                for row in embeds]

    class NumberScorer:
        name = "number"

        def score(self, texts: Sequence[str]) -> list[float]:
            return [1 / (1 + math.exp(-8 * float(t.split()[0]))) for t in texts]

    long = EmbeddingOptimizer(respond, NumberScorer(), ZOSettings(
        n_directions=8, mu=0.3, max_iters=6, target=1e-9)).optimise(EMBEDDINGS)
    steps_long = [c.embeddings for c in long.trace if c.source == "step"]
    checked = set()
    for weight in (0.0, 0.5, 2.0):
        for target in (0.45, 0.3, 0.2):
            settings = ZOSettings(n_directions=8, mu=0.3, max_iters=6, target=target,
                                  degeneracy_weight=weight)
            run = EmbeddingOptimizer(respond, NumberScorer(), settings).optimise(EMBEDDINGS)
            steps = [c.embeddings for c in run.trace if c.source == "step"]
            assert all(torch.equal(a, b) for a, b in zip(steps, steps_long))
            outcome = replay(long.trace, settings.stop_below, 6, objective=settings.objective)
            assert outcome is not None
            assert (outcome.chosen.text, outcome.iterations, outcome.scorer_calls) == (
                run.text, run.iterations, run.scorer_calls)
            checked.add((weight > 0, degeneracy(run.text) > 0))
    assert (True, False) in checked and (False, True) in checked  # the penalty changed a choice


class RecordingRespond:
    """Records every batch of embeddings it is asked about; replies name the call and row."""

    def __init__(self) -> None:
        self.calls: list[torch.Tensor] = []

    def __call__(self, embeds: torch.Tensor) -> list[str]:
        self.calls.append(embeds.clone())
        return [f"reply {len(self.calls)}.{j} is a plain sentence" for j in range(embeds.shape[0])]


@pytest.mark.parametrize("elitist", [False, True])
def test_elitist_iterations_start_from_the_best_point_scored(elitist: bool) -> None:
    # Iteration 1: perturbations 0.6 and 0.7, the step 0.9 (worse than both and the 0.8 start).
    embeddings = torch.randn(3, 4, generator=torch.Generator().manual_seed(5))
    respond = RecordingRespond()
    settings = ZOSettings(n_directions=2, mu=0.05, target=0.3, max_iters=2, elitist=elitist)
    result = EmbeddingOptimizer(respond, QueueScorer([0.6, 0.7], [0.9], [0.65, 0.75], [0.95]),
                                settings).optimise(embeddings, initial=("initial reply", 0.8))
    generator = torch.Generator().manual_seed(settings.seed)
    first = sample_directions(embeddings, 2, generator)
    second = sample_directions(embeddings, 2, generator)
    perturbation = embeddings + 0.05 * first[0]  # the 0.6 point
    step = respond.calls[1][0]
    centre = perturbation if elitist else step
    assert torch.allclose(respond.calls[2], centre + 0.05 * second)
    # The gradient is taken at the centre's own score: the elitist step differs.
    gradient = zo_gradient(0.6 if elitist else 0.9, torch.tensor([0.65, 0.75]), second, 0.05)
    assert torch.allclose(respond.calls[3][0], descent_step(centre, embeddings, gradient, 0.5,
                                                            0.2))
    assert result.score == 0.6 and result.scorer_calls == 6  # the best seen either way


def test_max_calls_stops_before_an_iteration_that_does_not_fit() -> None:
    settings = ZOSettings(n_directions=2, target=1e-9, max_iters=4)
    for max_calls, iterations in [(None, 4), (12, 4), (11, 3), (6, 2), (5, 1), (2, 0)]:
        result = EmbeddingOptimizer(_counting_respond, QueueScorer(), settings).optimise(
            torch.ones(3, 4), initial=("initial reply", 0.9), max_calls=max_calls)
        assert result.iterations == iterations
        assert max_calls is None or result.scorer_calls <= max_calls


def test_call_budget_is_in_iterations_of_n_plus_one_calls() -> None:
    assert ZOSettings().call_budget == 51  # (16 + 1) x 3: issue 7's budget
    assert ZOSettings(n_directions=4, budget_iterations=2.5).call_budget == 12
    assert ZOSettings(budget_iterations=None).call_budget is None


@pytest.mark.parametrize("pooled", [True, False])
def test_a_batch_shares_its_call_budget(tiny_loaded, pooled: bool) -> None:
    from psa_guard.zo.generator import ZOGenerator

    # Three flagged rows, N = 2, a budget of 2 iterations (6 calls) each. Row 1 is repaired by a
    # perturbation in 2 calls; the 4 it saves let row 2 run a third iteration; row 3 gets its 6.
    settings = GenerationSettings(max_new_tokens=3)
    zo = ZOGenerator(tiny_loaded, scorer=QueueScorer([0.9, 0.9, 0.9], [0.0001, 0.9], then=0.9),
                     zo_settings=ZOSettings(n_directions=2, max_iters=4, degeneracy_weight=0,
                                            budget_iterations=2 if pooled else None))
    prompts = ["one", "two", "three"]
    base = ChatGenerator(tiny_loaded).generate(prompts, settings)
    results = [r for _, r in zo.repair(prompts, base, settings)]
    calls = [r.scorer_calls for r in results if r is not None]
    if pooled:
        assert calls == [2, 9, 6]
        assert sum(calls) <= 3 * 6  # the mean stays within the budget
    else:
        assert calls == [2, 12, 12]  # max_iters alone
