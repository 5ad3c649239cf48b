"""Append-only completion cache: a JSONL file with one checksummed record per line.

A record is keyed by ``(configuration, model, prompt, generation settings)``; its ``key`` is the
sha256 of those fields in canonical JSON, and its ``checksum`` the sha256 of the rest of the record.
Records are only ever appended (and flushed and fsynced per batch), so an interrupted run keeps all
finished work; a later run reuses it. On reading, a line that is not valid JSON, whose checksum
does not match, or whose key does not match its fields is *corrupted*: it is skipped (and logged),
so that completion is generated again and appended. When a key appears twice, the last valid
record wins.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from psa_guard.core.jsonl import append_jsonl, read_jsonl_lenient
from psa_guard.generation import Completion, GenerationSettings

__all__ = ["CACHE_VERSION", "CacheRecord", "CompletionCache", "completion_key", "settings_key"]

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def settings_key(settings: GenerationSettings) -> dict[str, Any]:
    """The generation settings that change a completion, as plain JSON values."""
    return {
        "max_new_tokens": settings.max_new_tokens,
        "temperature": float(settings.temperature),
        "top_p": float(settings.top_p),
        "seed": settings.seed,
        "stop": list(settings.stop),
    }


def completion_key(config: str, model: str, prompt: str | Sequence[Mapping[str, Any]],
                   settings: Mapping[str, Any]) -> str:
    """sha256 of ``(configuration, model, prompt, settings)`` in canonical JSON."""
    prompt_value = prompt if isinstance(prompt, str) else [dict(m) for m in prompt]
    return _sha256(_canonical({"config": config, "model": model, "prompt": prompt_value,
                               "settings": dict(settings), "version": CACHE_VERSION}))


@dataclass(frozen=True)
class CacheRecord:
    """One cached completion."""

    config: str
    model: str
    prompt: Any
    settings: dict[str, Any]
    completion: dict[str, Any]

    @property
    def key(self) -> str:
        return completion_key(self.config, self.model, self.prompt, self.settings)

    def to_line(self) -> str:
        """The JSONL line (without newline), checksum included."""
        body = {"key": self.key, **asdict(self), "version": CACHE_VERSION}
        body["checksum"] = _sha256(_canonical(body))
        return _canonical(body)

    @classmethod
    def from_line(cls, line: str) -> CacheRecord:
        """Parse and verify one line.

        Raises:
            ValueError: the line is not a valid, untampered record.
        """
        return cls.from_json(json.loads(line))

    @classmethod
    def from_json(cls, value: Any) -> CacheRecord:
        """Verify one decoded line (see :meth:`from_line`).

        Raises:
            ValueError, KeyError, TypeError: the value is not a valid, untampered record.
        """
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")  # noqa: TRY004 - read as a corrupted line
        body = dict(value)
        checksum = body.pop("checksum", None)
        if checksum != _sha256(_canonical(body)):
            raise ValueError("checksum mismatch")
        record = cls(body["config"], body["model"], body["prompt"], body["settings"],
                     body["completion"])
        if body.get("key") != record.key:
            raise ValueError("key does not match the record's fields")
        Completion(**record.completion)  # the payload must be a complete Completion
        return record

    def to_completion(self) -> Completion:
        return Completion(**self.completion)


@dataclass
class CompletionCache:
    """The cache file at ``path`` (nothing is read until :meth:`load`).

    Attributes:
        path: the JSONL file.
        corrupted: 1-based line numbers of corrupted lines found by the last :meth:`load`.
    """

    path: Path
    corrupted: list[int] = field(default_factory=list)
    _records: dict[str, CacheRecord] = field(default_factory=dict, repr=False)

    def load(self) -> CompletionCache:
        """Read every valid record (later lines win); corrupted lines are skipped and logged."""
        self._records.clear()
        self.corrupted = []
        if not self.path.exists():
            return self
        records, errors = read_jsonl_lenient(self.path, CacheRecord.from_json, objects=False,
                                             errors="replace")
        for error in errors:
            self.corrupted.append(error.line_number)
            logger.warning("%s:%d: corrupted cache entry (%s); it will be regenerated",
                           error.path, error.line_number, error.reason)
        for _, record in records:
            self._records[record.key] = record
        return self

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> Completion | None:
        """The cached completion for ``key``, or None."""
        record = self._records.get(key)
        return record.to_completion() if record else None

    def append(self, records: Iterable[CacheRecord]) -> None:
        """Append records (one line each) under an exclusive file lock, then fsync.

        A torn last line left by a writer that died is closed first (and read as corrupted).
        """
        records = list(records)
        append_jsonl(self.path, records, CacheRecord.to_line)
        for record in records:
            self._records[record.key] = record
