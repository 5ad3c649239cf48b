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

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from psa_guard.core.jsonl import append_jsonl, read_jsonl_lenient, repair_jsonl_tail
from psa_guard.errors import ConfigurationError, DataError, InputLineError, PolicyError
from psa_guard.generation import GenerationSettings
from psa_guard.messages import normalize_messages
from psa_guard.pipeline import RequestOptions, RequestPipeline
from psa_guard.steering import Steering

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


def _parse_line(obj: Any) -> tuple[str | int, str | list[dict[str, str]], dict[str, Any]]:
    """``(id, conversation, extra)`` of one decoded input line; ``DataError`` names the problem."""
    if not isinstance(obj, dict):
        raise DataError("expected a JSON object with 'id' and 'prompt'")
    if "id" not in obj:
        raise DataError("missing 'id'; give each line an 'id' (a string or integer)")
    ident = obj["id"]
    if isinstance(ident, bool) or not isinstance(ident, (str, int)):
        raise DataError(f"'id' must be a string or integer, got {ident!r}")
    if "messages" in obj:
        try:
            conversation: Any = normalize_messages(obj["messages"])
        except (ConfigurationError, TypeError) as exc:
            raise DataError(f"bad 'messages': {exc}") from exc
    elif isinstance(obj.get("prompt"), str) and obj["prompt"].strip():
        conversation = obj["prompt"]
    else:
        raise DataError("missing 'prompt' (a non-empty string) or 'messages'")
    extra = {k: v for k, v in obj.items() if k not in {"id", "prompt", "messages"}}
    return ident, conversation, extra


def read_prompts(path: Path) -> tuple[list[PromptRecord], list[InputLineError]]:
    """Read a prompts JSONL file, collecting bad lines instead of stopping at the first.

    Returns:
        The valid records in file order, and one :class:`InputLineError` per bad line (including a
        repeated ``id``), in file order.

    Raises:
        DataError: the file cannot be read at all (missing, a folder, a broken ``.gz``).
    """
    try:
        parsed, errors = read_jsonl_lenient(path, _parse_line, objects=False)
    except (OSError, EOFError) as exc:  # FileNotFoundError, IsADirectoryError, BadGzipFile, ...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DataError(f"{path}: cannot read the input file ({reason}); check the path given "
                        f"to --input") from exc
    records: list[PromptRecord] = []
    seen: dict[str, int] = {}
    for number, (ident, conversation, extra) in parsed:
        if str(ident) in seen:
            errors.append(InputLineError(
                str(path), number, f"duplicate id {ident!r} (first on line {seen[str(ident)]}); "
                "give each line its own id"))
            continue
        seen[str(ident)] = number
        records.append(PromptRecord(ident, conversation, number, extra, str(path)))
    errors.sort(key=lambda error: error.line_number)
    return records, errors


def finished_ids(path: Path) -> set[str]:
    """Ids already written to an output file; a torn last line is cut off (the file is repaired)."""
    return {str(ident) for ident in repair_jsonl_tail(path, lambda row: row["id"])}


def _batches(items: Sequence[PromptRecord], size: int) -> Iterator[Sequence[PromptRecord]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_generate_job(
    records: Sequence[PromptRecord],
    output: Path,
    pipeline: RequestPipeline,
    settings: GenerationSettings,
    *,
    config_name: str,
    batch_size: int = 8,
    progress: bool = True,
    annotate: Callable[[PromptRecord], dict[str, Any]] | None = None,
    context: str | None = None,
    steering: Steering | None = None,
) -> JobSummary:
    """Generate a response for each record not already in ``output`` and append it there.

    Args:
        records: valid input records (see :func:`read_prompts`).
        output: JSONL output file; created if missing, resumed if present.
        pipeline: the request pipeline (configuration, and the policy whose checks apply).
        settings: decoding settings shared by all lines.
        config_name: written to each output line as ``config``.
        batch_size: prompts per batched ``generate`` call.
        progress: show a progress bar.
        annotate: optional extra fields for each output line.
        context: the policy context for lines without their own ``context`` field; a line's
            own ``context`` picks its checks *and* its steering.
        steering: ``--alpha``/``--beta``/``--risk-threshold`` overrides of every line.

    Returns:
        A :class:`JobSummary`; prompts that cannot be generated (for example too long for the
        context window) are in ``errors`` and are not written, so a later run retries them.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size (--batch-size) must be a positive integer, got "
                                 f"{batch_size!r}")
    done = finished_ids(output)  # append_jsonl makes the folder with the first finished line
    summary = JobSummary(skipped=sum(str(r.id) in done for r in records))
    generator = pipeline.generator()
    pending: list[PromptRecord] = []
    for record in records:
        if str(record.id) in done:
            continue
        try:
            generator.check_fits(record.conversation, settings)
            pipeline.resolve(record.extra.get("context", context))
        except (ConfigurationError, PolicyError) as exc:
            summary.errors.append(InputLineError(record.source, record.line_number, str(exc)))
            continue
        pending.append(record)
    with tqdm(total=len(pending), desc=f"generate [{config_name}]", unit="prompt",
              disable=not progress) as bar:
        for batch in _batches(pending, batch_size):
            start = time.perf_counter()
            replies = pipeline.run_batch([
                (record.conversation, RequestOptions(
                    context=record.extra.get("context", context), steering=steering,
                    settings=settings)) for record in batch])
            seconds = (time.perf_counter() - start) / len(batch)
            rows = []
            for record, reply in zip(batch, replies, strict=True):
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
                if pipeline.guarded:
                    row.update(reply.metadata())
                if annotate:
                    row.update(annotate(record))
                rows.append(row)
            append_jsonl(output, rows)  # whole lines, flushed and fsynced, batch by batch
            summary.generated += len(batch)
            bar.update(len(batch))
    return summary
