"""Batch generation jobs over JSONL files (``psa-guard generate``).

Input: one JSON object per line with ``id`` and ``prompt`` (a string), or ``messages`` (a chat list,
which wins when both are present). Bad lines are reported with their line number and skipped; the
rest of the file is still processed.

Output: one JSON object per line, appended and flushed batch by batch, keeping ``id`` and adding
``response``, ``tokens``, ``seconds`` (the batch's wall time divided by its size), ``config``,
``model``, ``finish_reason`` and ``prompt_tokens``. Re-running the same command resumes: ids already in
the output are skipped, and a last line cut off mid-write (the process was killed) is removed
before appending, so nothing finished is lost and nothing is half-written.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from psa_guard.errors import ConfigurationError, DataError, InputLineError, PolicyError
from psa_guard.generation import ChatGenerator, Completion, GenerationSettings
from psa_guard.guard import GuardedReply, PolicyGuard
from psa_guard.messages import normalize_messages
from psa_guard.zo import make_repairer

__all__ = ["PromptRecord", "JobSummary", "read_prompts", "finished_ids", "run_generate_job"]


@dataclass(frozen=True)
class PromptRecord:
    """One valid input line.

    Attributes:
        id: the line's ``id`` as given (string or integer).
        conversation: the prompt string or the normalised message list.
        line_number: 1-based line in the input file.
        extra: other fields of the line, passed through to the caller (e.g. ``context``).
        source: the input file.
    """

    id: str | int
    conversation: str | list[dict[str, str]]
    line_number: int
    extra: dict[str, Any] = field(default_factory=dict)
    source: str = ""


@dataclass
class JobSummary:
    """What a generate job did."""

    generated: int = 0
    skipped: int = 0
    errors: list[DataError] = field(default_factory=list)


def _parse_line(path: str, number: int, line: str) -> PromptRecord:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputLineError(path, number, f"not valid JSON ({exc.msg})") from exc
    if not isinstance(obj, dict):
        raise InputLineError(path, number, "expected a JSON object with 'id' and 'prompt'")
    if "id" not in obj:
        raise InputLineError(path, number, "missing 'id'")
    ident = obj["id"]
    if isinstance(ident, bool) or not isinstance(ident, (str, int)):
        raise InputLineError(path, number, f"'id' must be a string or integer, got {ident!r}")
    if "messages" in obj:
        try:
            conversation: Any = normalize_messages(obj["messages"])
        except (ConfigurationError, TypeError) as exc:
            raise InputLineError(path, number, f"bad 'messages': {exc}") from exc
    elif isinstance(obj.get("prompt"), str) and obj["prompt"].strip():
        conversation = obj["prompt"]
    else:
        raise InputLineError(path, number, "missing 'prompt' (a non-empty string) or 'messages'")
    extra = {k: v for k, v in obj.items() if k not in {"id", "prompt", "messages"}}
    return PromptRecord(ident, conversation, number, extra, path)


def read_prompts(path: Path) -> tuple[list[PromptRecord], list[InputLineError]]:
    """Read a prompts JSONL file, collecting bad lines instead of stopping at the first.

    Returns:
        The valid records in file order, and one :class:`InputLineError` per bad line (including a
        repeated ``id``).
    """
    records: list[PromptRecord] = []
    errors: list[InputLineError] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = _parse_line(str(path), number, line)
            except InputLineError as exc:
                errors.append(exc)
                continue
            if str(record.id) in seen:
                errors.append(InputLineError(str(path), number, f"duplicate id {record.id!r}"))
                continue
            seen.add(str(record.id))
            records.append(record)
    return records, errors


def finished_ids(path: Path) -> set[str]:
    """Ids already written to an output file; a torn last line is cut off (the file is repaired)."""
    if not path.exists():
        return set()
    done: set[str] = set()
    good_end = 0
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                done.add(str(json.loads(raw)["id"]))
            except (ValueError, KeyError, TypeError):
                break
            good_end = handle.tell()
    if good_end != path.stat().st_size:
        with open(path, "r+b") as handle:
            handle.truncate(good_end)
    return done


def _batches(items: Sequence[PromptRecord], size: int) -> Iterator[Sequence[PromptRecord]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_generate_job(
    records: Sequence[PromptRecord],
    output: Path,
    generator: ChatGenerator,
    settings: GenerationSettings,
    *,
    config_name: str,
    batch_size: int = 8,
    progress: bool = True,
    annotate: Callable[[PromptRecord], dict[str, Any]] | None = None,
    guard: PolicyGuard | None = None,
    context: str | None = None,
) -> JobSummary:
    """Generate a response for each record not already in ``output`` and append it there.

    Args:
        records: valid input records (see :func:`read_prompts`).
        output: JSONL output file; created if missing, resumed if present.
        generator: the configured generator.
        settings: decoding settings shared by all lines.
        config_name: written to each output line as ``config``.
        batch_size: prompts per batched ``generate`` call.
        progress: show a progress bar.
        annotate: optional extra fields for each output line.
        guard: apply this policy's input and output checks; each line then also gets
            ``context`` and ``actions``.
        context: the policy context for lines without their own ``context`` field.

    Returns:
        A :class:`JobSummary`; prompts that cannot be generated (for example too long for the
        context window) are in ``errors`` and are not written, so a later run retries them.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive integer, got {batch_size!r}")
    output.parent.mkdir(parents=True, exist_ok=True)
    done = finished_ids(output)
    summary = JobSummary(skipped=sum(str(r.id) in done for r in records))
    pending: list[PromptRecord] = []
    for record in records:
        if str(record.id) in done:
            continue
        try:
            generator.check_fits(record.conversation, settings)
            if guard is not None:
                guard.resolve(record.extra.get("context", context))
        except (ConfigurationError, PolicyError) as exc:
            summary.errors.append(InputLineError(record.source, record.line_number, str(exc)))
            continue
        pending.append(record)
    with open(output, "a", encoding="utf-8") as sink, tqdm(
        total=len(pending), desc=f"generate [{config_name}]", unit="prompt", disable=not progress
    ) as bar:
        for batch in _batches(pending, batch_size):
            start = time.perf_counter()
            replies = _generate_batch(batch, generator, settings, guard, context)
            seconds = (time.perf_counter() - start) / len(batch)
            lines = []
            for record, reply in zip(batch, replies):
                completion = reply.completion
                row: dict[str, Any] = {
                    "id": record.id,
                    "response": reply.text,
                    "tokens": completion.completion_tokens if completion else 0,
                    "seconds": round(seconds, 4),
                    "config": config_name,
                    "model": generator.name,
                    "finish_reason": completion.finish_reason if completion else "policy",
                    "prompt_tokens": completion.prompt_tokens if completion else 0,
                }
                if completion is not None:
                    row.update(completion.extra)
                if guard is not None:
                    row.update(reply.metadata())
                if annotate:
                    row.update(annotate(record))
                lines.append(json.dumps(row, ensure_ascii=False) + "\n")
            sink.write("".join(lines))
            sink.flush()
            os.fsync(sink.fileno())
            summary.generated += len(batch)
            bar.update(len(batch))
    return summary


def _generate_batch(
    batch: Sequence[PromptRecord],
    generator: ChatGenerator,
    settings: GenerationSettings,
    guard: PolicyGuard | None,
    context: str | None,
) -> list[GuardedReply]:
    """One batch, with the policy's checks when ``guard`` is given."""
    def generate(conversations: list[Any]) -> list[Completion]:
        return generator.generate(conversations, settings)

    if guard is None:
        completions = generate([r.conversation for r in batch])
        return [GuardedReply(c.text, "", (), c) for c in completions]
    requests = [(r.conversation, r.extra.get("context", context)) for r in batch]
    repair = make_repairer(generator, settings, guard.get_scorer())
    return guard.run_batch(requests, generate, repair=repair)
