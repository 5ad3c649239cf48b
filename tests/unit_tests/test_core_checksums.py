"""psa_guard.core.checksums: file digests and the one verified loader of head artifacts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from psa_guard.core.checksums import file_sha256, load_head, save_head, verify_head
from psa_guard.core.heads import LinearHead
from psa_guard.errors import ChecksumError, ModelLoadError, ModelNotFoundError

FIX = "rebuild the toys with `python scripts/train_toys.py`"


def _head(dim: int = 4) -> LinearHead:
    rng = np.random.default_rng(0)
    return LinearHead(rng.normal(size=dim).astype(np.float32), np.array(0.5, np.float32),
                      np.zeros(dim, np.float32), np.ones(dim, np.float32))


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    save_head(_head(), "toy", {"seed": 3}, tmp_path)
    return tmp_path


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))


def _rewrite_sums(folder: Path) -> None:
    """What someone hiding a change would do: record the tampered files' digests."""
    names = ("toy.safetensors", "toy.json")
    (folder / "toy.sha256").write_text(
        "".join(f"{file_sha256(folder / n)}  {n}\n" for n in names), encoding="utf-8")


def test_file_sha256_matches_hashlib_and_reports_progress(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * 9000  # a little over 2 MiB: several blocks
    path.write_bytes(data)
    read: list[int] = []
    assert file_sha256(path, on_read=read.append) == hashlib.sha256(data).hexdigest()
    assert sum(read) == len(data) and len(read) == 3


def test_save_and_load_round_trip(folder: Path) -> None:
    head, provenance = load_head("toy", folder, fix=FIX)
    assert np.array_equal(head.weight, _head().weight) and float(head.bias) == 0.5
    assert provenance["seed"] == 3 and provenance["weights_file"] == "toy.safetensors"
    assert provenance["weights_sha256"] == file_sha256(folder / "toy.safetensors")
    assert verify_head("toy", folder, fix=FIX) == provenance
    assert sorted(p.name for p in folder.iterdir()) == ["toy.json", "toy.safetensors", "toy.sha256"]


@pytest.mark.parametrize("filename", ["toy.safetensors", "toy.json"])
def test_a_checksum_mismatch_is_refused_naming_the_file_and_the_fix(folder: Path,
                                                                    filename: str) -> None:
    _flip_a_byte(folder / filename)
    with pytest.raises(ChecksumError) as info:
        load_head("toy", folder, fix=FIX, kind="toy judge")
    message = str(info.value)
    assert f"toy judge file {folder / filename} does not match its recorded checksum" in message
    assert "refusing to use it" in message
    assert message.endswith("Rebuild the toys with `python scripts/train_toys.py`")
    assert "flock" not in message


@pytest.mark.parametrize("filename", ["toy.safetensors", "toy.json", "toy.sha256"])
def test_a_missing_file_is_reported_with_the_fix(folder: Path, filename: str) -> None:
    (folder / filename).unlink()
    with pytest.raises(ModelNotFoundError) as info:
        load_head("toy", folder, fix=FIX)
    assert str(info.value) == f"head file {folder / filename} is missing; {FIX}"
    assert isinstance(info.value, FileNotFoundError)


def test_a_file_without_a_recorded_checksum_is_refused(folder: Path) -> None:
    sums = folder / "toy.sha256"
    sums.write_text(sums.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(ChecksumError, match=r"records no checksum for toy\.json") as info:
        load_head("toy", folder, fix=FIX)
    assert str(info.value).endswith(FIX)


def test_weights_swapped_with_a_rewritten_sums_file_are_still_refused(folder: Path) -> None:
    _flip_a_byte(folder / "toy.safetensors")
    _rewrite_sums(folder)
    with pytest.raises(ChecksumError, match="weights_sha256") as info:
        load_head("toy", folder, fix=FIX)
    assert str(folder / "toy.safetensors") in str(info.value)
    assert str(info.value).endswith("Rebuild the toys with `python scripts/train_toys.py`")


def test_provenance_that_is_not_an_object_is_refused(folder: Path) -> None:
    (folder / "toy.json").write_text("[1, 2]\n", encoding="utf-8")
    _rewrite_sums(folder)
    with pytest.raises(ModelLoadError, match="not a JSON object"):
        load_head("toy", folder, fix=FIX)


def test_a_head_of_the_wrong_width_is_refused(folder: Path) -> None:
    assert load_head("toy", folder, fix=FIX, dim=4)[0].dim == 4
    with pytest.raises(ModelLoadError, match=r"expects 4 features .* builds 384; rebuild the toys"):
        load_head("toy", folder, fix=FIX, dim=384)


def test_binary_mode_sha256sum_lines_are_understood(folder: Path) -> None:
    sums = folder / "toy.sha256"
    sums.write_text(sums.read_text(encoding="utf-8").replace("  ", " *"), encoding="utf-8")
    assert load_head("toy", folder, fix=FIX)[1]["seed"] == 3


def test_shipped_fix_texts_never_mention_development_machine_details() -> None:
    from psa_guard.evaluation import judges
    from psa_guard.moderation import local

    for text in (judges._REBUILD, local._REBUILD):
        assert "flock" not in text and "psa-heavy" not in text
        assert "python scripts/train_" in text


def test_save_head_replaces_a_head_whole(folder: Path) -> None:
    save_head(_head(6), "toy", {"seed": 4}, folder)
    head, provenance = load_head("toy", folder, fix=FIX)
    assert head.dim == 6 and provenance["seed"] == 4
    assert json.loads((folder / "toy.json").read_text())["weights_sha256"] == file_sha256(
        folder / "toy.safetensors")
    assert sorted(p.name for p in folder.iterdir()) == ["toy.json", "toy.safetensors", "toy.sha256"]
