"""DiReg training on the tiny Llama: the vector file, its metadata, and exact resumption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from psa_guard.direg import train as train_module
from psa_guard.direg.train import TrainRequest, train_harm_vector
from psa_guard.direg.vector import HarmVector, state_dict_sha256
from psa_guard.errors import ConfigurationError
from psa_guard.loading import load_model


@pytest.fixture()
def pairs(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    rows = [{"id": i, "prompt": f"harmful request {i}", "response": f"Sure, step {i} is easy."}
            for i in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _request(pairs: Path, out: Path, model: Path) -> TrainRequest:
    return TrainRequest(data=pairs, out=out, model=str(model), steps=4, rank=2, alpha=4,
                        lr=1e-2, batch_size=2, max_length=48, save_every=2, threads=1, warmup=1)


def test_train_writes_a_vector_with_metadata(pairs: Path, tmp_path: Path,
                                             tiny_model_dir: Path) -> None:
    summary = train_harm_vector(_request(pairs, tmp_path / "a", tiny_model_dir), progress=False)
    vector = HarmVector.load(tmp_path / "a" / "harm_vector.safetensors")
    assert vector.scale == 2.0
    assert vector.base_checksum == state_dict_sha256(load_model(str(tiny_model_dir)).model)
    assert vector.metadata["rank"] == 2 and vector.metadata["steps"] == 4
    assert vector.metadata["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert vector.metadata["data_sha256"] == summary["data_sha256"]
    assert len(vector.factors) == 8  # 2 layers x 4 projections
    name = "model.layers.0.self_attn.k_proj"
    a, b = vector.factors[name]
    assert a.shape == (2, 32) and b.shape == (16, 2)
    assert b.abs().sum() > 0  # B starts at zero; training moved it


def test_interrupted_training_resumes_to_the_same_vector(pairs: Path, tmp_path: Path,
                                                         tiny_model_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    train_harm_vector(_request(pairs, tmp_path / "full", tiny_model_dir), progress=False)
    calls = {"n": 0}
    real = train_module._collate

    def crash_on_third(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(train_module, "_collate", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        train_harm_vector(_request(pairs, tmp_path / "cut", tiny_model_dir), progress=False)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["step"] == 2
    monkeypatch.setattr(train_module, "_collate", real)
    train_harm_vector(_request(pairs, tmp_path / "cut", tiny_model_dir), progress=False)
    full = HarmVector.load(tmp_path / "full" / "harm_vector.safetensors")
    cut = HarmVector.load(tmp_path / "cut" / "harm_vector.safetensors")
    for name, (a, b) in full.factors.items():
        torch.testing.assert_close(cut.factors[name][0], a, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(cut.factors[name][1], b, rtol=1e-5, atol=1e-7)


def test_resume_refuses_other_settings(pairs: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    train_harm_vector(_request(pairs, tmp_path / "x", tiny_model_dir), progress=False)
    other = TrainRequest(data=pairs, out=tmp_path / "x", model=str(tiny_model_dir), steps=4,
                         rank=4, alpha=4, lr=1e-2, batch_size=2, max_length=48, save_every=2,
                         threads=1, warmup=1)
    with pytest.raises(ConfigurationError, match="other data or settings"):
        train_harm_vector(other, progress=False)


@pytest.mark.parametrize("field,value", [("steps", 0), ("rank", -1), ("batch_size", 1.5)])
def test_bad_settings_are_refused(pairs: Path, tmp_path: Path, field: str, value: object) -> None:
    kwargs = {"data": pairs, "out": tmp_path, field: value}
    with pytest.raises(ConfigurationError, match=field.replace("_", "-")):
        TrainRequest(**kwargs).validate()  # type: ignore[arg-type]
