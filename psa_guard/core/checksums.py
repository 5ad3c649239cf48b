"""File checksums, and the one verified loader of "head" artifacts (judges, the moderation scorer).

A head named ``NAME`` is three files in one folder::

    NAME.safetensors        the head tensors (weight, bias, mean, std)
    NAME.json               provenance: data files and their sha256, split, seed, held-out
                            metrics, embedding model, and ``weights_sha256``
    NAME.sha256             ``sha256sum`` lines for the two files above

:func:`load_head` refuses a head whose files are missing
(:class:`~psa_guard.errors.ModelNotFoundError`) or differ from their recorded sha256
(:class:`~psa_guard.errors.ChecksumError`); rewriting ``NAME.sha256`` is not enough to slip in other
weights, since the provenance records their digest too. Every message names the file and ends with
the caller's fix (for example how to rebuild that kind of head).

A single-file artifact (the DiReg harm vector, a Pv-Arm adapter) has its checksum beside it in
``STEM.sha256`` (:func:`checksum_file`), written by :func:`write_checksum` after the artifact and
checked by :func:`verify_file` before a byte of it is parsed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from psa_guard.core.atomic import atomic_path, write_atomic
from psa_guard.core.heads import LinearHead
from psa_guard.errors import ChecksumError, ModelLoadError, ModelNotFoundError

__all__ = ["checksum_file", "file_sha256", "load_head", "save_head", "verify_file", "verify_head",
           "write_checksum"]

logger = logging.getLogger(__name__)

_BLOCK = 1 << 20


def file_sha256(path: str | Path, *, on_read: Callable[[int], object] | None = None) -> str:
    """sha256 hex digest of a file's bytes, read in 1 MiB blocks.

    Args:
        path: the file.
        on_read: called with the size of each block read (for a progress bar).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
            if on_read is not None:
                on_read(len(block))
    return digest.hexdigest()


def checksum_file(path: str | Path) -> Path:
    """The ``sha256sum`` file of a single-file artifact: ``harm_vector.safetensors`` ->
    ``harm_vector.sha256`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.sha256")


def write_checksum(path: str | Path) -> Path:
    """Record ``path``'s sha256 in its :func:`checksum_file` (atomically); returns that file."""
    path = Path(path)
    sums = checksum_file(path)
    write_atomic(sums, f"{file_sha256(path)}  {path.name}\n")
    return sums


def verify_file(path: str | Path, *, fix: str, kind: str, required: bool = False) -> bool:
    """Check a single-file artifact against the sha256 in its :func:`checksum_file`.

    Args:
        path: the artifact.
        fix: how to repair, appended to every message.
        kind: what the artifact is, for messages (e.g. "harm vector").
        required: refuse an artifact without a checksum file (shipped artifacts always have one).

    Returns:
        True when the checksum was checked, False when there is no checksum file (and it is not
        required; a warning is logged).

    Raises:
        ChecksumError: the file does not match its recorded sha256, the checksum file records
            none for it, or (``required``) there is no checksum file.
    """
    path = Path(path)
    sums = checksum_file(path)
    if not sums.is_file():
        if required:
            raise ChecksumError(f"{kind} {path} has no checksum file {sums.name}; refusing to "
                                f"use it. {fix[:1].upper()}{fix[1:]}")
        logger.warning("%s %s has no checksum file %s, so it cannot be checked for damage",
                       kind, path, sums.name)
        return False
    recorded = _read_sums(sums).get(path.name)
    if recorded is None:
        raise ChecksumError(f"{sums} records no checksum for {path.name}; {fix}")
    actual = file_sha256(path)
    if actual != recorded:
        raise ChecksumError(
            f"{kind} {path} does not match its recorded checksum (sha256 {actual}, expected "
            f"{recorded} in {sums}); refusing to use it. {fix[:1].upper()}{fix[1:]}")
    return True


def _head_files(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """``(weights, provenance, sums)`` paths of head ``name`` in ``folder``."""
    return (folder / f"{name}.safetensors", folder / f"{name}.json", folder / f"{name}.sha256")


def _read_sums(path: Path) -> dict[str, str]:
    """``{file name: sha256}`` from ``sha256sum`` lines (text or ``*binary`` mode)."""
    recorded: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            recorded[parts[1].lstrip("*")] = parts[0].lower()
    return recorded


def save_head(head: LinearHead, name: str, provenance: dict[str, Any], folder: str | Path) -> Path:
    """Write ``NAME.safetensors``, ``NAME.json`` and ``NAME.sha256``, each atomically.

    Args:
        head: the trained head.
        name: the file stem.
        provenance: what to record; ``weights_file`` and ``weights_sha256`` are added.
        folder: where to write (created if needed).

    Returns:
        The weights path.
    """
    from safetensors.numpy import save_file

    weights, meta, sums = _head_files(Path(folder), name)
    with atomic_path(weights) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in head.tensors().items()}, str(tmp),
                  metadata={"judge": name})
    record = dict(provenance, weights_file=weights.name, weights_sha256=file_sha256(weights))
    write_atomic(meta, json.dumps(record, indent=2, sort_keys=True) + "\n")
    write_atomic(sums, "".join(f"{file_sha256(p)}  {p.name}\n" for p in (weights, meta)))
    return weights


def verify_head(name: str, folder: str | Path, *, fix: str, kind: str = "head") -> dict[str, Any]:
    """Check head ``name``'s files against ``NAME.sha256`` and the provenance's ``weights_sha256``.

    Args:
        name: the file stem.
        folder: the folder holding the three files.
        fix: how to repair, appended to every message (e.g. "rebuild the judges with
            `python scripts/train_judges.py`").
        kind: what the head is, for messages (e.g. "judge", "moderation head").

    Returns:
        The provenance record (``NAME.json``).

    Raises:
        ModelNotFoundError: a file of the head is missing.
        ChecksumError: a file does not match its recorded sha256, or the weights do not match the
            provenance's ``weights_sha256``.
        ModelLoadError: the provenance is not a JSON object.
    """
    weights, meta, sums = _head_files(Path(folder), name)
    refuse = f"refusing to use it. {fix[:1].upper()}{fix[1:]}"
    for path in (weights, meta, sums):
        if not path.is_file():
            raise ModelNotFoundError(f"{kind} file {path} is missing; {fix}")
    recorded = _read_sums(sums)
    for path in (weights, meta):
        if path.name not in recorded:
            raise ChecksumError(f"{sums} records no checksum for {path.name}; {fix}")
        actual = file_sha256(path)
        if actual != recorded[path.name]:
            raise ChecksumError(
                f"{kind} file {path} does not match its recorded checksum (sha256 {actual}, "
                f"expected {recorded[path.name]} in {sums}); {refuse}"
            )
    try:
        provenance = json.loads(meta.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelLoadError(f"{kind} file {meta} is not valid JSON ({exc}); {fix}") from exc
    if not isinstance(provenance, dict):
        raise ModelLoadError(f"{kind} file {meta} is not a JSON object; {fix}")
    if provenance.get("weights_sha256") != file_sha256(weights):
        raise ChecksumError(f"{weights} does not match weights_sha256 in {meta}; {refuse}")
    return provenance


def load_head(name: str, folder: str | Path, *, fix: str, kind: str = "head",
              dim: int | None = None) -> tuple[LinearHead, dict[str, Any]]:
    """Load a verified head (:func:`verify_head`) and its provenance.

    Args:
        name: the file stem.
        folder: the folder holding the three files.
        fix: how to repair, appended to every message.
        kind: what the head is, for messages.
        dim: the feature width the caller will feed it (None: not checked).

    Returns:
        ``(head, provenance)``.

    Raises:
        ModelNotFoundError: a file is missing.
        ChecksumError: a file does not match its recorded checksum.
        ModelLoadError: the tensors are not a head, or its width is not ``dim``.
    """
    from safetensors.numpy import load_file

    provenance = verify_head(name, folder, fix=fix, kind=kind)
    weights = _head_files(Path(folder), name)[0]
    try:
        head = LinearHead.from_tensors(load_file(str(weights)))
    except Exception as exc:  # safetensors raises its own types; from_tensors KeyError/ValueError
        raise ModelLoadError(f"{kind} file {weights} is not a valid head ({exc}); {fix}") from exc
    if dim is not None and head.dim != dim:
        raise ModelLoadError(
            f"{kind} {name!r} in {folder} expects {head.dim} features but this version of "
            f"psa-guard builds {dim}; {fix}"
        )
    return head, provenance
