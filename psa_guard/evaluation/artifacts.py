"""Judge artifacts on disk: head weights (safetensors), provenance (JSON) and a checksum file.

A judge named ``NAME`` is three files in one folder::

    NAME.safetensors        the head tensors (weight, bias, mean, std)
    NAME.json               provenance: data files and their sha256, split, seed, held-out accuracy,
                            embedding model, and ``weights_sha256``
    NAME.sha256             ``sha256sum`` lines for the two files above

:func:`load_head` refuses (with :class:`~psa_guard.errors.ChecksumError`) any file whose sha256
differs from the recorded one, so a corrupted or hand-edited judge is never used silently.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from psa_guard.errors import ChecksumError, ModelNotFoundError
from psa_guard.evaluation.heads import LinearHead

__all__ = ["ARTIFACTS_DIR", "file_sha256", "load_head", "save_head", "verify_checksums"]

#: Where the committed judge heads live.
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_head(head: LinearHead, name: str, provenance: dict[str, Any],
              folder: Path = ARTIFACTS_DIR) -> Path:
    """Write ``NAME.safetensors``, ``NAME.json`` and ``NAME.sha256``; returns the weights path."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in head.tensors().items()}, str(weights),
              metadata={"judge": name})
    record = dict(provenance, weights_file=weights.name, weights_sha256=file_sha256(weights))
    meta = folder / f"{name}.json"
    meta.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    sums = folder / f"{name}.sha256"
    sums.write_text(
        "".join(f"{file_sha256(p)}  {p.name}\n" for p in (weights, meta)), encoding="utf-8"
    )
    return weights


def verify_checksums(name: str, folder: Path = ARTIFACTS_DIR) -> None:
    """Check ``NAME.safetensors`` and ``NAME.json`` against ``NAME.sha256``.

    Raises:
        ModelNotFoundError: a file of the judge is missing.
        ChecksumError: a file does not match its recorded sha256.
    """
    sums = folder / f"{name}.sha256"
    expected_files = {f"{name}.safetensors", f"{name}.json"}
    for filename in sorted(expected_files | {sums.name}):
        if not (folder / filename).is_file():
            raise ModelNotFoundError(
                f"judge file {folder / filename} is missing; rebuild the judges with "
                "`python scripts/train_judges.py`"
            )
    recorded: dict[str, str] = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, _, filename = line.strip().partition("  ")
            recorded[filename] = digest
    for filename in sorted(expected_files):
        if filename not in recorded:
            raise ChecksumError(f"{sums} records no checksum for {filename}; rebuild the judges")
        actual = file_sha256(folder / filename)
        if actual != recorded[filename]:
            raise ChecksumError(
                f"judge file {folder / filename} does not match its recorded checksum "
                f"(sha256 {actual}, expected {recorded[filename]} in {sums}); refusing to use it. "
                "Restore it (`git checkout -- psa_guard/evaluation/artifacts`) or rebuild the "
                "judges with `python scripts/train_judges.py`"
            )


def load_head(name: str, folder: Path = ARTIFACTS_DIR) -> tuple[LinearHead, dict[str, Any]]:
    """Load a verified head and its provenance.

    Raises:
        ModelNotFoundError: a file is missing.
        ChecksumError: a file does not match its recorded checksum.
    """
    from safetensors.numpy import load_file

    verify_checksums(name, folder)
    provenance = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    weights = folder / f"{name}.safetensors"
    if provenance.get("weights_sha256") != file_sha256(weights):
        raise ChecksumError(
            f"{weights} does not match weights_sha256 in {folder / f'{name}.json'}; refusing to use it"
        )
    return LinearHead.from_tensors(load_file(str(weights))), provenance
