from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from psa_guard.errors import ModelError, ModelLoadError, ModelNotFoundError
from psa_guard.loading import ModelSource, clear_model_cache, load_model


@pytest.mark.parametrize(
    ("spec", "is_default", "is_gguf"),
    [(None, True, False), ("default", True, False), ("some/folder", False, False),
     ("m.Q4_1.gguf", False, True)],
)
def test_model_source_parse(spec: str | None, is_default: bool, is_gguf: bool) -> None:
    source = ModelSource.parse(spec)
    assert source.is_default is is_default
    assert source.is_gguf is is_gguf


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist") as info:
        load_model(tmp_path / "nope")
    assert isinstance(info.value, FileNotFoundError)


def test_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_model(tmp_path)


def test_loads_a_folder_once_per_process(tiny_model_dir: Path) -> None:
    first = load_model(tiny_model_dir)
    assert load_model(str(tiny_model_dir)) is first
    assert first.tokenizer.padding_side == "left"
    assert first.name == str(tiny_model_dir)
    clear_model_cache()
    assert load_model(tiny_model_dir) is not first


def test_corrupted_safetensors_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="corrupted") as info:
        load_model(broken)
    assert isinstance(info.value, ModelError)


def test_corrupted_gguf_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\x00garbage" * 100)
    with pytest.raises(ModelLoadError):
        load_model(bad)
