"""Judge heads: training math, artifact checksums (tampered files refused), the prefix matcher."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from psa_guard.core.checksums import save_head
from psa_guard.core.heads import LinearHead, balanced_weights, fit_logistic
from psa_guard.errors import ChecksumError, ModelLoadError, ModelNotFoundError
from psa_guard.evaluation.judges import (
    ARTIFACTS_DIR,
    FEATURE_DIMS,
    JUDGE_NAMES,
    JudgePanel,
    harm_features,
    load_judge,
    load_judges,
)
from psa_guard.evaluation.refusal_prefix import is_refusal_prefix


def _toy(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0.3).astype(int)
    return x, y


def test_fit_logistic_learns_a_separable_rule() -> None:
    x, y = _toy()
    head = fit_logistic(x, y, l2=1e-3)
    accuracy = ((head.predict_proba(x) >= 0.5) == y).mean()
    assert accuracy > 0.97
    assert abs(head.weight[0]) > abs(head.weight[3])  # the informative feature dominates


def test_fit_logistic_is_deterministic() -> None:
    x, y = _toy()
    a, b = fit_logistic(x, y), fit_logistic(x, y)
    assert np.array_equal(a.weight, b.weight) and a.bias == b.bias


def test_balanced_weights_equalise_classes() -> None:
    w = balanced_weights(np.array([1, 0, 0, 0]))
    assert w[0] == pytest.approx(2.0) and w[1:].sum() == pytest.approx(2.0)
    with pytest.raises(ValueError):
        balanced_weights(np.array([1, 1]))


def test_head_rejects_wrong_feature_width() -> None:
    head = fit_logistic(*_toy())
    with pytest.raises(ValueError, match="shape"):
        head.predict_proba(np.zeros((2, 5), dtype=np.float32))


def test_harm_features_shape() -> None:
    p = np.ones((3, 4), dtype=np.float32)
    r = np.full((3, 4), 2.0, dtype=np.float32)
    f = harm_features(p, r)
    assert f.shape == (3, 12) and f[0, -1] == 2.0
    with pytest.raises(ValueError):
        harm_features(p, r[:2])


@pytest.fixture()
def saved_head(tmp_path: Path) -> tuple[Path, LinearHead]:
    head = fit_logistic(*_toy())
    save_head(head, "toy", {"judge": "toy", "seed": 0}, tmp_path)
    return tmp_path, head


def test_saved_head_round_trips(saved_head: tuple[Path, LinearHead]) -> None:
    folder, head = saved_head
    loaded, provenance = load_judge("toy", folder)
    assert np.array_equal(loaded.weight, head.weight)
    assert provenance["seed"] == 0 and len(provenance["weights_sha256"]) == 64


@pytest.mark.parametrize("filename", ["toy.safetensors", "toy.json"])
def test_tampered_judge_file_is_refused(saved_head: tuple[Path, LinearHead], filename: str) -> None:
    folder, _ = saved_head
    path = folder / filename
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="does not match its recorded checksum"):
        load_judge("toy", folder)


def test_missing_judge_file_is_reported(saved_head: tuple[Path, LinearHead]) -> None:
    folder, _ = saved_head
    (folder / "toy.sha256").unlink()
    with pytest.raises(ModelNotFoundError, match="train_judges.py"):
        load_judge("toy", folder)


def test_judge_of_the_wrong_width_is_refused(tmp_path: Path) -> None:
    save_head(fit_logistic(*_toy()), "harm", {"judge": "harm"}, tmp_path)  # 6 features, not 1152
    with pytest.raises(ModelLoadError, match="expects 6 features"):
        load_judge("harm", tmp_path)


def test_committed_judges_verify_and_record_provenance() -> None:
    for name in JUDGE_NAMES:
        head, recorded = load_judge(name)
        provenance = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        assert provenance["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
        assert provenance["data_files"] and all(len(v) == 64 for v in provenance["data_files"].values())
        held = provenance["held_out"]
        assert 0.5 < held["accuracy"] <= 1.0 and held["n"] > 0
        split = provenance["split"]
        assert set(split["held_out_groups"]).isdisjoint(split["train_groups"])
        assert (ARTIFACTS_DIR / f"{name}.safetensors").stat().st_size < 1_000_000
        assert head.dim == FEATURE_DIMS[name] and recorded == provenance


def test_load_judges_refuses_a_corrupted_committed_copy(tmp_path: Path) -> None:
    for name in JUDGE_NAMES:
        for suffix in (".safetensors", ".json", ".sha256"):
            shutil.copy(ARTIFACTS_DIR / f"{name}{suffix}", tmp_path)
    weights = tmp_path / "harm.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))

    class NoEmbedder:
        def encode(self, texts, batch_size=64, progress=False):  # pragma: no cover - never called
            raise AssertionError("the embedder must not be needed to refuse a bad judge")

    with pytest.raises(ChecksumError, match="harm.safetensors"):
        load_judges(tmp_path, embedder=NoEmbedder())


def test_panel_applies_heads_to_embeddings() -> None:
    """With a fake embedder, the panel's verdicts follow the heads' probabilities."""

    class OneHot:
        def encode(self, texts, batch_size=64, progress=False):
            out = np.zeros((len(texts), 2), dtype=np.float32)
            for i, t in enumerate(texts):
                out[i, 0 if "sorry" in t else 1] = 1.0
            return out

    unit = np.ones(2, dtype=np.float32)
    refusal = LinearHead(np.array([5.0, -5.0], np.float32), np.array(0.0, np.float32),
                         np.zeros(2, np.float32), unit)
    never = LinearHead(np.array([0.0] * 2, np.float32), np.array(-5.0, np.float32),
                       np.zeros(2, np.float32), unit)
    harm = LinearHead(np.zeros(6, np.float32), np.array(-5.0, np.float32),
                      np.zeros(6, np.float32), np.ones(6, np.float32))
    panel = JudgePanel(OneHot(), refusal, harm, never, {})
    verdicts = panel.judge(["q", "q"], ["I'm sorry, no.", "Sure, here it is."])
    assert [v.refused for v in verdicts] == [True, False]
    assert [v.refused_prefix for v in verdicts] == [True, False]
    assert not any(v.unsafe or v.toxic for v in verdicts)


@pytest.mark.parametrize(
    ("reply", "refused"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("  Sorry, no.", True),
        ("I cannot assist with that request.", True),
        ("As an AI, I do not have opinions.", True),
        ("No, that is not something I will do.", True),
        ("Sure! Here is a recipe for bread.", False),
        ("Nobody knows.", False),  # 'no' needs a comma or full stop
        ("", False),
        ("Here you go. I'm sorry it took so long.", False),  # only the start counts
    ],
)
def test_prefix_matcher(reply: str, refused: bool) -> None:
    assert is_refusal_prefix(reply) is refused
