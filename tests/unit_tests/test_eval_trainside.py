"""Training-side prompt sets: disjoint from every evaluation suite, seeded, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from psa_guard.datasets.suites import SUITES
from psa_guard.datasets.training import normalise
from psa_guard.datasets.trainside import (
    HARMLESS_TRAIN,
    TRAIN_BENIGN,
    TRAIN_BIAS,
    TRAIN_HARMFUL,
    training_benign,
    training_bias,
    training_harmful,
)
from psa_guard.errors import DataError

REAL_DATA = Path(__file__).resolve().parents[3] / "shared" / "safety-data"
real = pytest.mark.skipif(not REAL_DATA.is_dir(), reason="shared safety-data folder not present")


@real
def test_sets_are_disjoint_from_every_suite_and_seeded() -> None:
    suite_texts = {normalise(p.prompt) for s in SUITES.values() for p in s.read(REAL_DATA)}
    harmful = training_harmful(None, 0, REAL_DATA)
    benign = training_benign(None, 0, REAL_DATA)
    assert len(harmful) > 500 and len(benign) > 18000
    assert {p.suite for p in harmful} == {TRAIN_HARMFUL} and {p.kind for p in harmful} == {"harmful"}
    assert {p.suite for p in benign} == {TRAIN_BENIGN} and {p.kind for p in benign} == {"benign"}
    assert not suite_texts & {normalise(p.prompt) for p in harmful + benign}
    assert training_benign(20, 3, REAL_DATA) == training_benign(20, 3, REAL_DATA)
    assert training_benign(20, 3, REAL_DATA) != training_benign(20, 4, REAL_DATA)
    assert len({p.id for p in training_harmful(30, 0, REAL_DATA)}) == 30
    bias = training_bias(None, 0, REAL_DATA)
    assert len(bias) == 50 and {p.suite for p in bias} == {TRAIN_BIAS}
    assert {p.category for p in bias} >= {"Racial or ethnic hate", "Religious intolerance"}
    assert not suite_texts & {normalise(p.prompt) for p in bias}
    assert training_bias(12, 0, REAL_DATA) == training_bias(12, 0, REAL_DATA)


def test_bias_file_without_the_hate_category_names_file_and_category(tmp_path: Path) -> None:
    from psa_guard.datasets.training import RED_INSTRUCT

    path = tmp_path / RED_INSTRUCT["catqa"]
    path.parent.mkdir(parents=True)
    path.write_text('{"Illegal Activity": {"x": ["q"]}}', encoding="utf-8")
    with pytest.raises(DataError, match=r"catqa_english\.json.*Hate/Harass/Violence"):
        training_bias(5, 0, tmp_path)


def test_malformed_benign_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / HARMLESS_TRAIN
    path.parent.mkdir(parents=True)
    path.write_text('[{"prompt": "no instruction key"}]', encoding="utf-8")
    with pytest.raises(DataError, match="harmless_train.json.*instruction"):
        training_benign(5, 0, tmp_path)
