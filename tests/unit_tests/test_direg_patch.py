"""DiReg harm vectors and patching on the tiny Llama: restore, refusals, caching, export."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from psa_guard.direg.math import dense_delta, trim_top_k
from psa_guard.direg.patch import apply_harm_vector
from psa_guard.direg.patched import clear_patched_cache, load_patched
from psa_guard.direg.vector import FORMAT, HarmVector, state_dict_sha256
from psa_guard.errors import HarmVectorError, PSAGuardError
from psa_guard.loading import LoadedModel
from tests.conftest import make_tiny_model

MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


def tiny_vector(model: Any, rank: int = 2, seed: int = 1, checksum: str | None = None
                ) -> HarmVector:
    g = torch.Generator().manual_seed(seed)
    factors = {}
    for name, module in model.named_modules():
        if name.split(".")[-1] in MODULES:
            d_out, d_in = module.weight.shape
            factors[name] = (torch.randn(rank, d_in, generator=g) * 0.1,
                             torch.randn(d_out, rank, generator=g) * 0.1)
    return HarmVector(factors, 2.0, checksum or state_dict_sha256(model),
                      {"rank": rank, "target_modules": list(MODULES), "steps": 3})


@pytest.fixture()
def model(tokenizer: Any) -> Any:
    return make_tiny_model(tokenizer)


def _weights(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_patch_matches_direct_dense_computation(model: Any) -> None:
    vector = tiny_vector(model)
    before = _weights(model)
    handle = apply_harm_vector(model, vector, lam=1.5, k_percent=10,
                               checksum=state_dict_sha256(model))
    after = model.state_dict()
    for name, (a, b) in vector.factors.items():
        direct = before[f"{name}.weight"] - 1.5 * trim_top_k(dense_delta(a, b, 2.0), 10)
        torch.testing.assert_close(after[f"{name}.weight"], direct)
    untouched = [k for k in before if not any(k.startswith(m) for m in vector.factors)]
    assert untouched and all(torch.equal(before[k], after[k]) for k in untouched)
    assert len(handle.names) == len(vector.factors) == 8


def test_restore_is_bit_identical(model: Any) -> None:
    before = _weights(model)
    handle = apply_harm_vector(model, tiny_vector(model), lam=4.0, k_percent=100)
    assert not all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    handle.restore()
    handle.restore()  # idempotent
    for key, value in model.state_dict().items():
        assert torch.equal(before[key].view(torch.uint8), value.view(torch.uint8)), key


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_safe_mode_refuses_nan_and_inf_and_changes_nothing(model: Any, bad: float) -> None:
    vector = tiny_vector(model)
    name = next(iter(vector.factors))
    vector.factors[name][0][0, 0] = bad
    before = _weights(model)
    with pytest.raises(HarmVectorError, match="NaN or inf"):
        apply_harm_vector(model, vector, lam=1.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_checksum_mismatch_is_refused(model: Any) -> None:
    vector = tiny_vector(model, checksum="model.safetensors:" + "0" * 64)
    with pytest.raises(HarmVectorError, match="different base model") as info:
        apply_harm_vector(model, vector, lam=1.0, checksum=state_dict_sha256(model))
    assert isinstance(info.value, PSAGuardError) and isinstance(info.value, ValueError)


def test_shape_mismatch_is_refused(model: Any) -> None:
    vector = tiny_vector(model)
    name = next(k for k in vector.factors if k.endswith("k_proj"))
    a, b = vector.factors[name]
    vector.factors[name] = (a, torch.zeros(b.shape[0] + 1, b.shape[1]))
    with pytest.raises(HarmVectorError, match=f"shape mismatch at {name}"):
        apply_harm_vector(model, vector, lam=1.0)


def test_unknown_module_is_refused(model: Any) -> None:
    vector = tiny_vector(model)
    vector.factors["model.layers.9.self_attn.q_proj"] = next(iter(vector.factors.values()))
    with pytest.raises(HarmVectorError, match="no weight"):
        apply_harm_vector(model, vector, lam=1.0)


@pytest.mark.parametrize("lam,k", [(-1.0, 10.0), (1.0, 0.0), (1.0, 150.0)])
def test_bad_lambda_or_k_is_refused(model: Any, lam: float, k: float) -> None:
    with pytest.raises(HarmVectorError, match="cannot patch"):
        apply_harm_vector(model, tiny_vector(model), lam=lam, k_percent=k)


def test_save_load_round_trip(model: Any, tmp_path: Path) -> None:
    vector = tiny_vector(model)
    path = tmp_path / "v.safetensors"
    vector.save(path)
    loaded = HarmVector.load(path)
    assert loaded.scale == 2.0 and loaded.base_checksum == vector.base_checksum
    assert loaded.metadata == {"rank": 2, "target_modules": list(MODULES), "steps": 3}
    assert set(loaded.factors) == set(vector.factors)
    for name, (a, b) in vector.factors.items():
        assert torch.equal(loaded.factors[name][0], a) and torch.equal(loaded.factors[name][1], b)


def test_load_refuses_other_files(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    with pytest.raises(HarmVectorError, match="does not exist"):
        HarmVector.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(HarmVectorError, match="cannot read"):
        HarmVector.load(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"),
              metadata={"format": "something-else"})
    with pytest.raises(HarmVectorError, match=FORMAT):
        HarmVector.load(tmp_path / "other.safetensors")


def test_direg_config_patches_a_copy_and_caches_it(tokenizer: Any) -> None:
    clear_patched_cache()
    shared = LoadedModel(make_tiny_model(tokenizer), tokenizer, "tiny-llama")
    before = _weights(shared.model)
    vector = tiny_vector(shared.model)
    patched, _handle = load_patched(shared, vector=vector, lam=2.0, k_percent=50,
                                   checksum=vector.base_checksum)
    assert patched.model is not shared.model
    assert all(torch.equal(before[k], v) for k, v in shared.model.state_dict().items())
    changed = [k for k, v in patched.model.state_dict().items() if not torch.equal(before[k], v)]
    assert sorted(changed) == sorted(f"{n}.weight" for n in vector.factors)
    again, _ = load_patched(shared, vector=vector, lam=2.0, k_percent=50,
                            checksum=vector.base_checksum)
    other, _ = load_patched(shared, vector=vector, lam=1.0, k_percent=50,
                            checksum=vector.base_checksum)
    assert again is patched and other is not patched
    assert "direg(lambda=2,K=50%)" in patched.name
    clear_patched_cache()


def test_export_loads_with_plain_transformers(tokenizer: Any, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = make_tiny_model(tokenizer)
    vector = tiny_vector(model)
    apply_harm_vector(model, vector, lam=1.0, k_percent=10)
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    name = next(iter(vector.factors)) + ".weight"
    assert torch.equal(reloaded.state_dict()[name], model.state_dict()[name])
    fresh = make_tiny_model(tokenizer)
    assert not torch.equal(reloaded.state_dict()[name], fresh.state_dict()[name])


def test_cli_apply_export_loads_with_plain_transformers(tiny_model_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import AutoModelForCausalLM

    from psa_guard.cli import main
    from psa_guard.loading import load_model

    shared = load_model(str(tiny_model_dir))
    vector = tiny_vector(shared.model)  # checksum: the loaded folder's state dict
    vector.save(tmp_path / "v.safetensors")
    out = tmp_path / "export"
    code = main(["direg", "apply", "--model", str(tiny_model_dir), "--vector",
                 str(tmp_path / "v.safetensors"), "--lambda", "2", "--k", "10", "--export",
                 str(out)])
    assert code == 0 and "patched 8 matrices" in capsys.readouterr().out
    exported = AutoModelForCausalLM.from_pretrained(out)  # no psa-guard code involved
    patched, _ = load_patched(shared, vector_path=tmp_path / "v.safetensors", lam=2.0,
                              k_percent=10)
    name = next(iter(vector.factors)) + ".weight"
    assert torch.equal(exported.state_dict()[name], patched.model.state_dict()[name])
    assert not torch.equal(exported.state_dict()[name], shared.model.state_dict()[name])
    clear_patched_cache()


def test_cli_apply_refuses_a_vector_of_another_model(tiny_model_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from psa_guard.cli import main
    from psa_guard.loading import load_model

    vector = tiny_vector(load_model(str(tiny_model_dir)).model, checksum="state_dict:abc")
    vector.save(tmp_path / "v.safetensors")
    code = main(["direg", "apply", "--model", str(tiny_model_dir), "--vector",
                 str(tmp_path / "v.safetensors"), "--lambda", "1"])
    assert code == 1 and "different base model" in capsys.readouterr().err


def test_direg_is_a_registered_configuration() -> None:
    from psa_guard.registry import config_names, get_config

    assert "direg" in config_names()
    assert "harm vector" in get_config("direg").description


def test_generate_with_direg_refuses_the_shipped_vector_on_another_model(
        tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from psa_guard.cli import main

    (tmp_path / "in.jsonl").write_text('{"id": 1, "prompt": "hi"}\n')
    code = main(["generate", "--config", "direg", "--model", str(tiny_model_dir), "--input",
                 str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl")])
    err = capsys.readouterr().err
    assert code == 1 and "different base model" in err and "direg train" in err
    assert not (tmp_path / "out.jsonl").exists() or not (tmp_path / "out.jsonl").read_text()
