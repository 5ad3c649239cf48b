"""Preference pairs as records and files: :class:`PreferencePair`, JSONL read/write with a manifest,
and the generation cache of RLCD replies.

:mod:`psa_guard.arm.data` builds pairs from the data folder; training and evaluation read them with
:func:`read_pairs`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from psa_guard.attributes import ATTRIBUTES
from psa_guard.core.atomic import write_atomic
from psa_guard.core.checksums import file_sha256
from psa_guard.core.jsonl import append_jsonl, iter_jsonl, repair_jsonl_tail, write_jsonl
from psa_guard.errors import DataError, InputLineError

__all__ = [
    "SPLITS",
    "GenerationCache",
    "PreferencePair",
    "count_pairs",
    "manifest_path",
    "read_pairs",
    "write_pairs",
]

SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class PreferencePair:
    """One preference: ``chosen`` is better than ``rejected`` on ``attribute`` for ``prompt``.

    Attributes:
        attribute: one of :data:`psa_guard.attributes.ATTRIBUTES`.
        prompt: the user message (RLCD pairs: without the system instruction).
        chosen: the preferred response.
        rejected: the dispreferred response.
        source: where the pair came from (``truthfulqa``, ``rlcd``, ...).
        split: ``"train"`` or ``"heldout"``.

    Raises:
        DataError: unknown attribute or split, or a field that is not a string.
    """

    attribute: str
    prompt: str
    chosen: str
    rejected: str
    source: str
    split: str

    def __post_init__(self) -> None:
        for item in fields(self):
            if not isinstance(getattr(self, item.name), str):
                raise DataError(f"PreferencePair.{item.name} must be a string, "
                                f"got {type(getattr(self, item.name)).__name__}")
        if self.attribute not in ATTRIBUTES:
            raise DataError(f"unknown attribute {self.attribute!r}; valid: {', '.join(ATTRIBUTES)}")
        if self.split not in SPLITS:
            raise DataError(f"unknown split {self.split!r}; valid: {', '.join(SPLITS)}")


class GenerationCache:
    """Generated replies keyed by SHA-256 of (model, system, user, settings), kept in a JSONL file.

    Rows are appended as they are produced, so an interrupted build resumes where it stopped (a
    last row torn by the interruption is cut off and generated again).

    Args:
        path: the cache file (created on first :meth:`add`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._replies: dict[str, str] = {}
        rows: list[Any] = repair_jsonl_tail(path)
        for row in rows:
            if isinstance(row, dict) and isinstance(row.get("key"), str) \
                    and isinstance(row.get("text"), str):
                self._replies[row["key"]] = row["text"]

    @staticmethod
    def key(model: str, system: str, user: str, settings: Mapping[str, Any]) -> str:
        """The cache key of one request."""
        blob = json.dumps([model, system, user, dict(settings)], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def __len__(self) -> int:
        return len(self._replies)

    def get(self, key: str) -> str | None:
        """The cached reply, or None."""
        return self._replies.get(key)

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows (each with ``key`` and ``text``, plus any provenance), flush and fsync."""
        append_jsonl(self.path, [dict(row) for row in rows])
        for row in rows:
            self._replies[str(row["key"])] = str(row["text"])


def manifest_path(path: Path) -> Path:
    """The sidecar manifest of a pairs file: ``pairs.jsonl`` -> ``pairs.manifest.json``."""
    return path.with_name(f"{path.stem}.manifest.json")


def count_pairs(pairs: Iterable[PreferencePair]) -> dict[str, dict[str, dict[str, int]]]:
    """Counts as ``{attribute: {split: {source: n, "total": n}}}``, attributes in ATTRIBUTES order."""
    counts: dict[str, dict[str, dict[str, int]]] = {
        a: {s: {"total": 0} for s in SPLITS} for a in ATTRIBUTES
    }
    for pair in pairs:
        bucket = counts[pair.attribute][pair.split]
        bucket[pair.source] = bucket.get(pair.source, 0) + 1
        bucket["total"] += 1
    return counts


def write_pairs(path: Path, pairs: Iterable[PreferencePair], manifest: Mapping[str, Any]) -> None:
    """Write pairs as JSONL and the manifest beside it (:func:`manifest_path`), each atomically.

    The manifest is written with ``pairs`` (the number), ``sha256`` (of the pairs file) and
    ``counts`` (:func:`count_pairs`) added.
    """
    pairs = list(pairs)
    write_jsonl(path, (asdict(p) for p in pairs))
    full = {**manifest, "pairs": len(pairs), "sha256": file_sha256(path),
            "counts": count_pairs(pairs)}
    write_atomic(manifest_path(path), json.dumps(full, indent=2, ensure_ascii=False) + "\n")


def read_pairs(path: Path) -> list[PreferencePair]:
    """Read a pairs JSONL file written by :func:`write_pairs`.

    Raises:
        DataError: the file does not exist.
        InputLineError: a line is not JSON, lacks or adds fields, or names an unknown attribute or
            split (the message names the file and line).
    """
    if not path.is_file():
        raise DataError(f"{path} does not exist; build it with scripts/build_arm_data.py")
    names = {f.name for f in fields(PreferencePair)}
    pairs = []
    for number, row in iter_jsonl(path):
        if set(row) != names:
            raise InputLineError(str(path), number, f"expected exactly the keys {sorted(names)}, "
                                 f"got {sorted(row)}")
        try:
            pairs.append(PreferencePair(**row))
        except DataError as exc:
            raise InputLineError(str(path), number, str(exc)) from exc
    return pairs
