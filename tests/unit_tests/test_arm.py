"""Pv-Arm on a tiny in-process Llama: PBLoRA equations, the shared-weight reward model, guided
decoding (the lexicographic rule), training objectives, artifacts and configurations."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from psa_guard.arm import (
    ArmConfig,
    ArmGenerator,
    PBLoRALinear,
    PvArm,
    TermVeto,
    dense_delta_weight,
    lexicographic_scores,
    load_arm,
    pblora_delta,
    safe_candidates,
    save_arm,
)
from psa_guard.arm.config import ArmSettings
from psa_guard.arm.evaluate import (
    grid_preference,
    heldout_accuracy,
    pair_margins,
    spearman,
)
from psa_guard.arm.guidance import ArmGuidance
from psa_guard.arm.model import positions_from_mask
from psa_guard.arm.objectives import (
    bradley_terry_loss,
    combine,
    conflicts,
    pcgrad,
    without_attribute,
)
from psa_guard.arm.pairs import PreferencePair
from psa_guard.arm.pipeline import planned_runs
from psa_guard.arm.train import LowerStates, TrainSettings, encode_pair, train_arm
from psa_guard.attributes import ATTRIBUTES, format_preference, parse_preference
from psa_guard.errors import ArmAdapterError, ConfigurationError
from psa_guard.evaluation.labels import config_label
from psa_guard.generation import ChatGenerator, GenerationSettings
from psa_guard.loading import LoadedModel
from psa_guard.steering import Steering
from tests.conftest import make_tiny_model

K = len(ATTRIBUTES)
GREEDY = GenerationSettings(max_new_tokens=12, temperature=0)


def _randomise(arm: PvArm, seed: int = 0, scale: float = 0.5) -> PvArm:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in arm.adapter_parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * scale)
    return arm


@pytest.fixture()
def loaded(tokenizer: Any) -> LoadedModel:
    return LoadedModel(make_tiny_model(tokenizer, seed=3), tokenizer, "tiny-llama")


# ---- PBLoRA ----------------------------------------------------------------------------------------
def _factors(seed: int = 0, d_in: int = 6, d_out: int = 5, r1: int = 2, r2: int = 3, k: int = K):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(r1 + r2, d_in, generator=g), torch.randn(d_out, r1 + r2, generator=g),
            torch.randn(r1, r1, generator=g), torch.randn(k, r2, r2, generator=g))


def test_pblora_matches_the_dense_update_row_by_row() -> None:
    # float64 and a seeded input: in float32 the two contraction orders differ by ~2e-5 on some
    # inputs, over assert_close's float32 tolerance (this test failed once on an unseeded x).
    a, b, w1, cores = (t.double() for t in _factors())
    alpha = torch.tensor([[1.0, 0, 0, 0, 0], [0.2, 0.3, 0.1, 0.25, 0.15]], dtype=torch.float64)
    x = torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = pblora_delta(x, a, b, w1, cores, alpha, scale=1.5)
    for row in range(2):
        dense = dense_delta_weight(a, b, w1, cores, alpha[row], scale=1.5)
        torch.testing.assert_close(out[row], x[row] @ dense.t())


@pytest.mark.parametrize("i", range(K))
def test_a_vertex_preference_uses_only_its_core(i: int) -> None:
    a, b, w1, cores = _factors(seed=i)
    alpha = torch.zeros(1, K)
    alpha[0, i] = 1.0
    x = torch.randn(1, 3, 6)
    before = pblora_delta(x, a, b, w1, cores, alpha, 2.0)
    others = cores.clone()
    others[[j for j in range(K) if j != i]] += 10.0
    torch.testing.assert_close(pblora_delta(x, a, b, w1, others, alpha, 2.0), before)
    own = cores.clone()
    own[i] += 1.0
    assert not torch.allclose(pblora_delta(x, a, b, w1, own, alpha, 2.0), before)


def test_pblora_linear_starts_as_the_frozen_layer_and_needs_alpha() -> None:
    base = torch.nn.Linear(6, 4)
    layer = PBLoRALinear(base, k=K)
    x = torch.randn(2, 3, 6)
    with pytest.raises(RuntimeError, match="preference"):
        layer(x)
    layer.alpha = torch.full((2, K), 1 / K)
    torch.testing.assert_close(layer(x), base(x))  # B starts at zero
    layer.alpha = torch.full((3, K), 1 / K)
    with pytest.raises(ValueError, match="rows"):
        layer(x)


# ---- the reward model ----------------------------------------------------------------------------
@pytest.mark.parametrize("layers", [1, 2])
def test_untrained_arm_reproduces_the_host_on_a_padded_batch(loaded: LoadedModel,
                                                              layers: int) -> None:
    arm = PvArm(loaded.model, ArmConfig(layers=layers))
    batch = loaded.tokenizer(["hello there friend", "hi"], return_tensors="pt", padding=True)
    mask = batch["attention_mask"]
    assert (mask[:, 0] == 0).any()  # left padding is exercised
    with torch.no_grad():
        low = arm.lower(batch["input_ids"], mask)
        hidden = arm.upper(low, torch.full((2, K), 0.2), mask, positions_from_mask(mask))
        expected = loaded.model(**batch).logits
    real = mask.bool()
    torch.testing.assert_close((hidden @ arm.head_weight.t())[real], expected[real], atol=1e-4,
                               rtol=1e-4)


def test_arm_shares_weights_and_leaves_the_host_untouched(loaded: LoadedModel) -> None:
    modules_before = [type(m).__name__ for m in loaded.model.modules()]
    arm = PvArm(loaded.model, ArmConfig(layers=1))
    assert [type(m).__name__ for m in loaded.model.modules()] == modules_before
    host_q = loaded.model.model.layers[-1].self_attn.q_proj
    assert arm.layers[0].self_attn.q_proj.base is host_q
    assert arm.layers[0].self_attn.layer_idx == 0
    assert loaded.model.model.layers[-1].self_attn.layer_idx == 1
    names = set(arm.adapter_state())
    assert names and all(".lora_" in n for n in names)
    assert len(arm.adapters()) == 3  # q, k, v of the one owned layer


def test_arm_rejects_bad_shapes(loaded: LoadedModel) -> None:
    with pytest.raises(ConfigurationError, match="layers"):
        PvArm(loaded.model, ArmConfig(layers=3))
    with pytest.raises(ConfigurationError, match="Llama-style"):
        PvArm(torch.nn.Linear(2, 2))
    arm = PvArm(loaded.model, ArmConfig(layers=1))
    with pytest.raises(ValueError, match="alpha must have shape"), arm.preference(torch.ones(2, 3)):
        pass


# ---- the decoding rule ---------------------------------------------------------------------------
def test_safe_candidates_is_the_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.97, 0.01, 0.01, 0.01]]))
    ids, logprobs, nucleus = safe_candidates(logits, top_p=0.9, max_candidates=4)
    assert ids[0].tolist() == [0, 1, 2, 3]
    assert nucleus[0].tolist() == [True, True, True, False]
    assert nucleus[1].tolist() == [True, False, False, False]
    torch.testing.assert_close(logprobs.exp().sum(-1), torch.ones(2))


def test_reward_never_buys_back_a_token_outside_the_safe_set() -> None:
    safe = torch.log(torch.tensor([[0.6, 0.3, 0.1]]))
    allowed = torch.tensor([[True, True, False]])
    reward = torch.tensor([[0.0, 0.0, 1e6]])
    combined = lexicographic_scores(safe, reward, allowed, torch.tensor([100.0]))
    assert combined[0, 2] == float("-inf")
    assert torch.isfinite(combined[0, :2]).all()
    # inside the safe set the reward re-ranks: a strong reward for token 1 overturns token 0
    flipped = lexicographic_scores(safe, torch.tensor([[0.0, 5.0, 0.0]]), allowed,
                                   torch.tensor([1.0]))
    assert flipped[0].argmax() == 1
    # no guidance: the safety model's order is kept
    plain = lexicographic_scores(safe, torch.tensor([[0.0, 5.0, 0.0]]), allowed,
                                 torch.tensor([0.0]))
    torch.testing.assert_close(plain[0, :2], safe[0, :2])


def test_guided_tokens_always_lie_in_the_base_nucleus(loaded: LoadedModel) -> None:
    arm = _randomise(PvArm(loaded.model, ArmConfig(layers=1)), scale=3.0)
    generator = ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=0.01, top_p=0.5))
    chosen: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = ArmGuidance.__call__

    def spy(self: ArmGuidance, input_ids: Any, scores: torch.Tensor) -> torch.Tensor:
        out = original(self, input_ids, scores)
        chosen.append((scores.clone(), out.argmax(-1)))
        return out

    ArmGuidance.__call__ = spy  # type: ignore[method-assign]
    try:
        generator.generate(["tell me something", "hi"], GREEDY)
    finally:
        ArmGuidance.__call__ = original  # type: ignore[method-assign]
    assert chosen
    for scores, picks in chosen:
        _, _, nucleus = safe_candidates(scores, 0.5, 20)
        ids, _, _ = safe_candidates(scores, 0.5, 20)
        for row, pick in enumerate(picks.tolist()):
            assert pick in ids[row][nucleus[row]].tolist()


def test_no_guidance_reproduces_the_base_generator(loaded: LoadedModel) -> None:
    arm = _randomise(PvArm(loaded.model, ArmConfig(layers=1)))
    prompts = ["what is the capital of france", "hi"]
    base = [c.text for c in ChatGenerator(loaded).generate(prompts, GREEDY)]
    guided = ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=1e12, top_p=1.0))
    assert [c.text for c in guided.generate(prompts, GREEDY)] == base


def test_reward_cache_matches_a_full_recompute(loaded: LoadedModel) -> None:
    arm = _randomise(PvArm(loaded.model, ArmConfig(layers=1)))
    states: list[torch.Tensor] = []
    original = ArmGuidance._reward_state

    def spy(self: ArmGuidance) -> torch.Tensor:
        state = original(self)
        states.append(state.clone())
        return state

    generator = ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=0.5))
    ArmGuidance._reward_state = spy  # type: ignore[method-assign]
    try:
        prompts = ["a longer prompt with several words", "hi"]
        encoded = [generator.encode(p) for p in prompts]
        batch = loaded.tokenizer.pad({"input_ids": encoded}, return_tensors="pt")
        with torch.inference_mode():
            output = generator._generate_call(batch["input_ids"], batch["attention_mask"], GREEDY)
    finally:
        ArmGuidance._reward_state = original  # type: ignore[method-assign]
    prompt = batch["input_ids"].shape[1]
    mask = torch.cat((batch["attention_mask"],
                      torch.ones(2, output.shape[1] - prompt, dtype=torch.long)), dim=1)
    with torch.no_grad():
        hidden = arm.upper(arm.lower(output, mask), torch.full((2, K), 0.2), mask,
                           positions_from_mask(mask))
    for step, state in enumerate(states):
        torch.testing.assert_close(state, hidden[:, prompt - 1 + step], atol=1e-4, rtol=1e-4)


def test_rows_with_different_preferences_share_a_batch(loaded: LoadedModel) -> None:
    arm = _randomise(PvArm(loaded.model, ArmConfig(layers=1)), scale=2.0)
    generator = ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=0.05))
    prompts = ["tell me a story", "tell me a story"]
    empathy, truth = Steering((1, 0, 0, 0, 0)), Steering((0, 0, 0, 1, 0))
    together = [c.text for c in generator.generate(prompts, GREEDY, [empathy, truth])]
    alone = [generator.generate([prompts[0]], GREEDY, [empathy])[0].text,
             generator.generate([prompts[1]], GREEDY, [truth])[0].text]
    assert together == alone
    assert together[0] != together[1]  # alpha changes the output without reloading anything


class _FakeScorer:
    """A moderation scorer whose score is keyed on a word of the text; records what it saw."""

    name = "fake"

    def __init__(self, risky_word: str = "weapon", fail: bool = False) -> None:
        self.risky_word = risky_word
        self.fail = fail
        self.seen: list[list[str]] = []

    def score(self, texts: Any) -> list[float]:
        from psa_guard.errors import ModerationUnavailableError

        self.seen.append(list(texts))
        if self.fail:
            raise ModerationUnavailableError("scorer down for the test")
        return [0.9 if self.risky_word in t else 0.1 for t in texts]


def test_guidance_weights_gate_risky_rows() -> None:
    from psa_guard.arm.guidance import guidance_weights

    weights = guidance_weights([0.5, 0.5, 2.0, 1.0], [None, 0.2, 0.7, 0.5], [0.5, 0.5, 0.5, 0.5])
    torch.testing.assert_close(weights, torch.tensor([2.0, 2.0, 0.0, 1.0]))  # 0.5 is not above 0.5
    assert guidance_weights([1.0], [1.0], [1.0]).item() == 1.0  # a gate of 1 never closes
    with pytest.raises(ValueError):
        guidance_weights([1.0], [0.1, 0.2], [0.5])


def test_risk_gate_leaves_risky_rows_to_the_safety_model(loaded: LoadedModel) -> None:
    arm = _randomise(PvArm(loaded.model, ArmConfig(layers=1)), scale=3.0)
    scorer = _FakeScorer()
    prompts = ["how do I build a weapon", "tell me a story", "how do I build a weapon"]
    base = [c.text for c in ChatGenerator(loaded).generate(prompts, GREEDY)]
    ungated = ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=0.01))
    steered = [c.text for c in ungated.generate(prompts, GREEDY)]
    assert steered[0] != base[0]  # strong guidance moves this prompt's reply ...
    gated = ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=0.01), risk_scorer=scorer)
    out = gated.generate(prompts, GREEDY)
    assert scorer.seen == [prompts]  # one call for the batch, on the last user turns
    assert out[0].text == base[0] and out[2].text == base[2]  # ... unless the gate closes
    assert out[1].text == steered[1]  # a benign row in the same batch is still guided
    assert out[0].extra["arm"] == {"risk": 0.9, "guided": False}
    assert out[1].extra["arm"] == {"risk": 0.1, "guided": True}
    # a caller's own score is used as is; a gate of 1 is never scored
    scorer.seen.clear()
    out = gated.generate(prompts[:2], GREEDY, [Steering(risk=0.2), Steering(risk_threshold=1.0)])
    assert scorer.seen == [] and [c.text for c in out] == steered[:2]
    assert [c.extra["arm"]["guided"] for c in out] == [True, True]


def test_risk_gate_fails_closed_and_streams(loaded: LoadedModel) -> None:
    arm = _randomise(PvArm(loaded.model, ArmConfig(layers=1)), scale=3.0)
    base = ChatGenerator(loaded).generate(["tell me a story"], GREEDY)[0].text
    down = ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=0.01),
                        risk_scorer=_FakeScorer(fail=True))
    out = down.generate(["tell me a story"], GREEDY)[0]
    assert out.text == base  # no score: treated as risky, the safety model alone decides
    assert out.extra["arm"] == {"risk": 1.0, "guided": False, "unavailable": "scorer down for the test"}
    gated = ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=0.01),
                         risk_scorer=_FakeScorer("story"))
    chunks = list(gated.stream("tell me a story", GREEDY))
    assert "".join(c.text for c in chunks) == base
    assert chunks[-1].completion is not None
    assert chunks[-1].completion.extra["arm"] == {"risk": 0.9, "guided": False}


def test_streaming_sampling_and_stop_sequences_work_guided(loaded: LoadedModel) -> None:
    arm = _randomise(PvArm(loaded.model, ArmConfig(layers=1)))
    generator = ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=0.5))
    whole = generator.generate(["hello"], GREEDY)[0]
    pieces = list(generator.stream("hello", GREEDY))
    assert "".join(p.text for p in pieces) == whole.text
    sampled = GenerationSettings(max_new_tokens=10, temperature=0.8, top_p=0.9, seed=7)
    first = generator.generate(["hello"], sampled)[0].text
    assert generator.generate(["hello"], sampled)[0].text == first
    if len(whole.text) > 3:
        stop = whole.text[2:4]
        cut = generator.generate(["hello"], GenerationSettings(max_new_tokens=12, temperature=0,
                                                               stop=(stop,)))[0]
        assert stop not in cut.text


def test_blocked_terms_are_vetoed(loaded: LoadedModel) -> None:
    tok = loaded.tokenizer
    veto = TermVeto(tok)
    reply = torch.tensor([tok.encode("The capital is", add_special_tokens=False)] * 2)
    paris = tok.encode(" Paris", add_special_tokens=False)[0]
    other = tok.encode(" London", add_special_tokens=False)[0]
    candidates = torch.tensor([[paris, other]] * 2)
    assert veto(reply, candidates, [["Paris"], []]).tolist() == [[True, False], [False, False]]
    arm = _randomise(PvArm(loaded.model, ArmConfig(layers=1)))
    base_text = ChatGenerator(loaded).generate(["hi"], GREEDY)[0].text
    word = base_text.split()[0] if base_text.split() else ""
    if len(word) >= 3:
        guided = ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=1e12, top_p=1.0))
        vetoed = guided.generate(["hi"], GREEDY, [Steering(blocked_terms=(word,))])[0].text
        assert word.lower() not in vetoed.lower()
        # the same term as per-request steering (a policy's hard constraint), one row only
        plain = ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=1e12, top_p=1.0))
        texts = [c.text for c in plain.generate(["hi", "hi"], GREEDY,
                                                [Steering(blocked_terms=(word,)), None])]
        assert word.lower() not in texts[0].lower() and texts[1] == base_text


def test_arm_generator_validates_its_settings(loaded: LoadedModel) -> None:
    arm = PvArm(loaded.model, ArmConfig(layers=1))
    with pytest.raises(ConfigurationError, match="arm="):
        ArmGenerator(loaded)
    with pytest.raises(ConfigurationError, match="attributes"):
        ArmGenerator(loaded, arm=arm, settings=ArmSettings(preference=(1.0, 1.0)))
    with pytest.raises(ConfigurationError, match="top_p"):
        ArmGenerator(loaded, arm=arm, settings=ArmSettings(top_p=0.0))
    with pytest.raises(ConfigurationError, match="beta"):
        ArmGenerator(loaded, arm=arm, settings=ArmSettings(beta=0.0))


# ---- steering and configurations -------------------------------------------------------------------
def test_parse_preference_and_errors() -> None:
    assert parse_preference("empathy=0.4,helpfulness=0.6") == (0.4, 0.0, 0.0, 0.0, 0.6)
    assert parse_preference("non-judgmental=2, truthfulness=2") == (0, 0, 0.5, 0.5, 0)
    assert format_preference((0.5, 0, 0, 0, 0.5)) == "empathy=0.5,helpfulness=0.5"
    for bad, match in [("kindness=1", "ATTRIBUTE=WEIGHT"), ("empathy", "ATTRIBUTE=WEIGHT"),
                       ("empathy=x", "not a number"), ("empathy=-1", ">= 0"),
                       ("empathy=0", "no positive"), ("empathy=1,empathy=2", "twice")]:
        with pytest.raises(ConfigurationError, match=match):
            parse_preference(bad)


def test_steering_normalises_merges_and_validates() -> None:
    assert Steering((2, 2, 0, 0, 0)).preference == (0.5, 0.5, 0, 0, 0)
    policy = Steering((1, 0, 0, 0, 0), beta=2.0, safe_top_p=0.8, blocked_terms=("a",))
    merged = policy.merged(Steering(beta=0.5, blocked_terms=("b",)))
    assert merged == Steering((1, 0, 0, 0, 0), 0.5, 0.8, ("a", "b"))
    assert policy.merged(None) is policy
    with pytest.raises(ConfigurationError, match="safe_top_p"):
        Steering(safe_top_p=0.0)
    with pytest.raises(ConfigurationError):
        Steering((0, 0, 0, 0, 0))
    with pytest.raises(ConfigurationError):
        Steering(beta=-1)
    gate = Steering(risk_threshold=0.3, risk=0.6)
    assert policy.merged(gate) == Steering((1, 0, 0, 0, 0), 2.0, 0.8, ("a",), 0.3, 0.6)
    assert gate.merged(Steering(risk_threshold=0.7)).risk_threshold == 0.7
    for field_name in ("risk_threshold", "risk"):
        with pytest.raises(ConfigurationError, match=field_name):
            Steering(**{field_name: 1.5})


def test_steering_is_refused_by_unguided_configurations(tiny_loaded: LoadedModel) -> None:
    from psa_guard.commands import check_steering

    with pytest.raises(ConfigurationError, match="guided"):
        check_steering("base", Steering((1, 0, 0, 0, 0)))
    check_steering("arm", Steering((1, 0, 0, 0, 0)))
    assert config_label("base") == "base"
    assert config_label("arm", Steering((1, 0, 0, 0, 1), 0.5)) == \
        "arm[empathy=0.5,helpfulness=0.5;beta=0.5]"


# ---- training ----------------------------------------------------------------------------------------
def test_bradley_terry_loss_value() -> None:
    loss = bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0]), beta=0.5)
    torch.testing.assert_close(loss, -torch.nn.functional.logsigmoid(torch.tensor(1.0)))


def test_pcgrad_removes_conflicts() -> None:
    rng = np.random.default_rng(0)
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    assert conflicts(g) == 1
    out = pcgrad(g, rng)
    projected_0 = g[0] - (g[0] @ g[1]) / (g[1] @ g[1]) * g[1]
    projected_1 = g[1] - (g[1] @ g[0]) / (g[0] @ g[0]) * g[0]
    torch.testing.assert_close(out, projected_0 + projected_1)
    assert out @ g[0] >= 0 and out @ g[1] >= 0
    agreeing = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(pcgrad(agreeing, rng), agreeing.sum(0))
    torch.testing.assert_close(combine(list(g), False, rng), g.sum(0))


def test_without_attribute_removes_one_weight_and_renormalises() -> None:
    np.testing.assert_allclose(without_attribute(np.array([0.5, 0.3, 0.2]), 0), [0.0, 0.6, 0.4])
    np.testing.assert_allclose(without_attribute(np.array([0.0, 1.0, 0.0]), 1), [0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="index"):
        without_attribute(np.array([1.0]), 0)
    with pytest.raises(ValueError, match="index"):
        without_attribute(np.array([0.5, 0.5]), 2)


def _shared_direction_pairs(split: str, n: int) -> dict[str, list[PreferencePair]]:
    # the first attribute prefers "yes" to "no"; the others rank unrelated words, so PARM's
    # objective gives no reason for the first core to rank "yes" above "no" more than the others
    out = {ATTRIBUTES[0]: [PreferencePair(ATTRIBUTES[0], f"question {j}", "yes", "no", "toy", split)
                           for j in range(n)]}
    for attribute in ATTRIBUTES[1:]:
        out[attribute] = [PreferencePair(attribute, f"request {j} on {attribute}", "red", "blue",
                                         "toy", split) for j in range(n)]
    return out


def _specificity(arm: PvArm, tokenizer: Any, pairs: dict[str, list[PreferencePair]],
                 lower: LowerStates) -> float:
    """Mean margin on the first attribute's pairs at ``e_0`` minus at the other attributes' mix."""
    encoded = [encode_pair(tokenizer, pair, 64, 48) for pair in pairs[ATTRIBUTES[0]]]
    own = pair_margins(arm, lower, encoded, grid_preference(K, 0, 1.0))
    rest = pair_margins(arm, lower, encoded, grid_preference(K, 0, 0.0))
    return float((own - rest).mean())


def test_contrast_term_makes_an_attributes_weight_matter(loaded: LoadedModel) -> None:
    loaded.model.requires_grad_(False)
    train, heldout = _shared_direction_pairs("train", 12), _shared_direction_pairs("heldout", 6)
    gaps, logs = {}, {}
    for contrast in (0.0, 4.0):
        settings = TrainSettings(steps=20, pairs_per_attribute=4, lr=2e-2, warmup=2, bt_beta=1.0,
                                 min_weight=0.0, contrast=contrast)
        arm = PvArm(loaded.model, ArmConfig(layers=1))
        lower = LowerStates(arm)
        logs[contrast] = train_arm(arm, loaded.tokenizer, train, settings, lower=lower)
        gaps[contrast] = _specificity(arm, loaded.tokenizer, heldout, lower)
    assert "contrast" not in logs[0.0]
    assert len(logs[4.0]["contrast"]) == 20
    assert all(len(step) == 1 for step in logs[4.0]["contrast"])  # one attribute per step
    assert gaps[4.0] > gaps[0.0] + 0.1, gaps  # measured: 0.006 without, 0.227 with
    with pytest.raises(ConfigurationError, match="contrast"):
        TrainSettings(contrast=-1.0)


def test_spearman_and_grid() -> None:
    assert spearman([0, 1, 2], [1, 5, 9]) == pytest.approx(1.0)
    assert spearman([0, 1, 2], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([0, 1, 2], [1, 1, 1]))
    alpha = grid_preference(K, 2, 0.6)
    assert alpha[2] == pytest.approx(0.6) and alpha.sum() == pytest.approx(1.0)


def _toy_pairs(split: str, n: int = 12) -> dict[str, list[PreferencePair]]:
    # attribute i prefers the word WORDS[i]; every other attribute prefers the other word
    words = ["yes", "no"]
    out = {}
    for index, attribute in enumerate(ATTRIBUTES):
        good, bad = (words[0], words[1]) if index % 2 == 0 else (words[1], words[0])
        out[attribute] = [PreferencePair(attribute, f"question {j} about {attribute}", good, bad,
                                         "toy", split) for j in range(n)]
    return out


def test_training_learns_separable_pairs_and_resumes(loaded: LoadedModel, tmp_path: Path) -> None:
    loaded.model.requires_grad_(False)
    settings = TrainSettings(steps=30, pairs_per_attribute=4, lr=2e-2, warmup=2, bt_beta=1.0,
                             checkpoint_every=10, min_weight=0.0)
    train, heldout = _toy_pairs("train"), _toy_pairs("heldout", 6)
    arm = PvArm(loaded.model, ArmConfig(layers=1))
    lower = LowerStates(arm)
    assert len(lower) == 0  # an empty cache is still the cache train_arm must fill
    before = heldout_accuracy(arm, loaded.tokenizer, heldout, lower)
    log = train_arm(arm, loaded.tokenizer, train, settings, lower=lower,
                    checkpoint=tmp_path / "a" / "checkpoint.pt")
    after = heldout_accuracy(arm, loaded.tokenizer, heldout, lower)
    assert all(after[a]["accuracy"] == 1.0 for a in ATTRIBUTES), (before, after)
    filled = len(lower)
    assert filled >= 2 * sum(len(v) for v in train.values())  # the shared cache was used
    lower.save(tmp_path / "states.pt", "model|split=1")
    again_states = LowerStates(arm)
    assert again_states.load(tmp_path / "states.pt", "another model") == 0
    assert again_states.load(tmp_path / "states.pt", "model|split=1") == filled
    assert any(before[a]["accuracy"] < 1.0 for a in ATTRIBUTES)  # it had something to learn
    assert len(log["loss"]) == 30 and (tmp_path / "a" / "train_log.json").is_file()
    # an interrupted run resumed from its checkpoint ends where the straight run ends
    short = settings
    resumed = PvArm(loaded.model, ArmConfig(layers=1))
    checkpoint = tmp_path / "b" / "checkpoint.pt"
    calls = {"n": 0}
    real_step = torch.optim.AdamW.step

    def interrupt(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 16:
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    torch.optim.AdamW.step = interrupt  # type: ignore[method-assign]
    try:
        with pytest.raises(KeyboardInterrupt):
            train_arm(resumed, loaded.tokenizer, train, short, lower=lower,
                                   checkpoint=checkpoint)
    finally:
        torch.optim.AdamW.step = real_step  # type: ignore[method-assign]
    again = PvArm(loaded.model, ArmConfig(layers=1))
    train_arm(again, loaded.tokenizer, train, short, lower=lower, checkpoint=checkpoint)
    for name, value in arm.adapter_state().items():
        torch.testing.assert_close(again.adapter_state()[name], value)


# ---- artifacts ----------------------------------------------------------------------------------------
def test_adapter_round_trip_and_refusals(loaded: LoadedModel, tmp_path: Path) -> None:
    arm = _randomise(PvArm(loaded.model, ArmConfig(layers=1)))
    path = tmp_path / "pvarm.safetensors"
    save_arm(arm, path, base_checksum="tiny:1", provenance={"steps": 3})
    again = load_arm(loaded.model, path, checksum="tiny:1")
    for name, value in arm.adapter_state().items():
        torch.testing.assert_close(again.adapter_state()[name], value)
    assert not any(p.requires_grad for p in again.adapter_parameters())
    with pytest.raises(ArmAdapterError, match="trained on base model"):
        load_arm(loaded.model, path, checksum="other")
    with pytest.raises(ArmAdapterError, match="no Pv-Arm adapter"):
        load_arm(loaded.model, tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ArmAdapterError, match="cannot read"):
        load_arm(loaded.model, tmp_path / "bad.safetensors")
    other = LoadedModel(make_tiny_model(loaded.tokenizer, seed=1), loaded.tokenizer, "x")
    two_layer = PvArm(other.model, ArmConfig(layers=2))
    save_arm(two_layer, tmp_path / "two.safetensors", base_checksum="tiny:1", provenance={})
    with pytest.raises(ArmAdapterError, match="does not fit|shape"):
        # the file asks for 2 owned layers; force a 1-layer config by editing nothing but the model
        three = LoadedModel(make_tiny_model(loaded.tokenizer, seed=2, max_positions=128),
                            loaded.tokenizer, "y")
        three.model.model.layers = three.model.model.layers[:1]
        load_arm(three.model, tmp_path / "two.safetensors")


def test_config_fingerprint_follows_its_artifacts(tmp_path: Path) -> None:
    from psa_guard.arm.config import ArmSettings
    from psa_guard.registry import MethodSettings, get_config

    artifact = tmp_path / "adapter.safetensors"
    settings = MethodSettings(arm=ArmSettings(adapter=artifact))
    arm = get_config("arm")
    assert arm.fingerprint(settings).split("+")[0] == "missing"
    artifact.write_bytes(b"one")
    first = arm.fingerprint(settings)
    artifact.write_bytes(b"two")
    assert arm.fingerprint(settings) != first and len(first.split("+")[0]) == 12
    assert get_config("base").fingerprint() == ""
    assert get_config("full").fingerprint().startswith(get_config("direg").fingerprint()[:12])


@pytest.mark.parametrize("change", [
    {"top_p": 0.8}, {"max_candidates": 10}, {"beta": 0.5}, {"risk_threshold": 0.4},
])
def test_guided_fingerprint_covers_every_decoding_default(change: dict[str, Any]) -> None:
    # A regression (defect f): the fingerprint of arm/full covered only the risk gate, so a new
    # top_p, max_candidates or beta default would have reused stale cached replies.
    from psa_guard.arm.config import ArmSettings
    from psa_guard.registry import MethodSettings, get_config

    changed = MethodSettings(arm=ArmSettings(**change))
    for name in ("arm", "full"):
        assert get_config(name).fingerprint(changed) != get_config(name).fingerprint()
    assert get_config("direg").fingerprint(changed) == get_config("direg").fingerprint()


def test_direg_fingerprint_covers_lambda_and_k() -> None:
    from psa_guard.direg.config import DiRegSettings
    from psa_guard.registry import MethodSettings, get_config

    for direg in (DiRegSettings(lam=2.0), DiRegSettings(k_percent=5.0)):
        for name in ("direg", "full"):
            assert (get_config(name).fingerprint(MethodSettings(direg=direg))
                    != get_config(name).fingerprint())


def test_zo_fingerprint_follows_the_moderation_head_and_the_optimiser_settings() -> None:
    # A regression: the zo configuration had no fingerprint, so changing its defaults (N = 8 ->
    # 16) or retraining the moderation head would have reused stale cached replies.
    from psa_guard.registry import MethodSettings, get_config
    from psa_guard.zo.config import ZOSettings

    zo = get_config("zo")
    head, settings = zo.fingerprint().split("+")
    assert head != "missing" and len(settings) == 12
    assert head in get_config("arm").fingerprint().split("+")  # the risk gate's head
    fewer = MethodSettings(zo=dataclasses.replace(ZOSettings(), n_directions=8))
    assert zo.fingerprint(fewer).split("+")[0] == head and zo.fingerprint(fewer) != zo.fingerprint()


def test_planned_runs_follow_the_pcgrad_flag() -> None:
    # The run the flags ask for comes first (it gets the control grid); --ablation adds the other.
    # A regression: `--no-pcgrad` without `--ablation` used to train with PCGrad anyway.
    assert planned_runs(pcgrad=True, ablation=False) == [("pcgrad", True)]
    assert planned_runs(pcgrad=False, ablation=False) == [("no_pcgrad", False)]
    assert planned_runs(pcgrad=True, ablation=True) == [("pcgrad", True), ("no_pcgrad", False)]
    assert planned_runs(pcgrad=False, ablation=True) == [("no_pcgrad", False), ("pcgrad", True)]


@pytest.mark.parametrize(("argv", "contrast"), [([], 1.0), (["--contrast", "0"], 0.0)])
def test_arm_train_cli_passes_the_contrast_weight(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  argv: list[str], contrast: float) -> None:
    import psa_guard.arm.pipeline
    import psa_guard.loading
    from psa_guard.cli import main

    seen = {}

    def fake_training(loaded: Any, request: Any) -> dict[str, Any]:
        seen["settings"] = request.settings
        return {"untrained": {}, "runs": {}}

    monkeypatch.setattr(psa_guard.arm.pipeline, "run_training", fake_training)
    monkeypatch.setattr(psa_guard.loading, "load_model", lambda *a, **k: None)
    assert main(["arm", "train", "--out", str(tmp_path), *argv]) == 0
    assert seen["settings"].contrast == contrast  # the shipped adapter was trained with 1


def test_bootstrap_spearman_interval_and_share() -> None:
    from psa_guard.arm.evaluate import bootstrap_spearman

    grid = [0.0, 0.5, 1.0]
    # Every prompt rises with the weight: every resample is perfectly ordered.
    rising = np.array([[0.1, 0.2, 0.3], [0.5, 0.6, 0.9], [0.0, 0.4, 0.8]])
    out = bootstrap_spearman(grid, rising, resamples=200, seed=1)
    assert out == {"rho": 1.0, "low": 1.0, "high": 1.0, "at_least": 1.0}
    # One prompt rises, one falls: the full-sample rho hides resamples that go either way.
    mixed = np.array([[0.0, 0.5, 1.0], [0.9, 0.45, 0.0]])
    out = bootstrap_spearman(grid, mixed, resamples=400, seed=1)
    assert out["rho"] == 1.0 and out["low"] == -1.0 and out["high"] == 1.0
    assert 0.0 < out["at_least"] < 1.0
    assert bootstrap_spearman(grid, mixed, resamples=400, seed=1) == out  # seeded
    with pytest.raises(ValueError, match=r"shape \(n_items, 3\)"):
        bootstrap_spearman(grid, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_spearman(grid, rising, resamples=0)
