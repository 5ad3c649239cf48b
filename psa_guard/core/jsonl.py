"""JSON Lines files: one JSON value per line, read with line numbers, appended whole lines at a time.

* :func:`iter_jsonl` / :func:`read_jsonl`: strict reading; the first bad line raises
  :class:`~psa_guard.errors.InputLineError` naming the file and the 1-based line.
* :func:`read_jsonl_lenient`: reads every line, collecting one error per bad line instead of
  stopping (for inputs where one bad line must not lose the rest).
* :func:`append_jsonl`: appends whole lines under an exclusive lock, then flushes and fsyncs.
* :func:`repair_jsonl_tail`: cuts a last line torn by a killed writer, so appends resume cleanly.
* :func:`write_jsonl`: replaces a whole file atomically (:func:`psa_guard.core.atomic.write_atomic`).

Blank lines are skipped by the readers but still counted, so line numbers match an editor's.
Files whose name ends in ``.gz`` are read through gzip.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from psa_guard.core.atomic import naming, write_atomic
from psa_guard.errors import InputLineError

__all__ = [
    "append_jsonl",
    "dumps_line",
    "iter_jsonl",
    "parse_line",
    "read_jsonl",
    "read_jsonl_lenient",
    "repair_jsonl_tail",
    "write_jsonl",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def dumps_line(value: Any) -> str:
    """One JSONL line for ``value`` (no newline; non-ASCII text kept as is)."""
    return json.dumps(value, ensure_ascii=False)


def parse_line(path: str | Path, number: int, line: str | bytes, *, objects: bool = True) -> Any:
    """Decode one line.

    Args:
        path: the file the line comes from (for the message).
        number: its 1-based line number (for the message).
        line: the line's text.
        objects: require a JSON object.

    Raises:
        InputLineError: the line is not UTF-8, not valid JSON (or nested too deeply to read), or
            (with ``objects``) not a JSON object.
    """
    if isinstance(line, str) and not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError as exc:  # undecodable bytes, kept by the reader as escapes
            byte = ord(line[exc.start]) - 0xDC00
            raise InputLineError(str(path), number,
                                 f"not valid UTF-8 (byte 0x{byte & 0xFF:02x} at column "
                                 f"{exc.start + 1}); save the file as UTF-8") from None
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputLineError(str(path), number,
                             f"not valid JSON ({exc.msg} at column {exc.colno}); write one JSON "
                             f"object per line") from exc
    except UnicodeDecodeError as exc:
        raise InputLineError(str(path), number,
                             f"not valid UTF-8 ({exc.reason}); save the file as UTF-8") from exc
    except RecursionError:
        raise InputLineError(str(path), number,
                             "not valid JSON (nested too deeply to read); write one JSON object "
                             "per line, nested at most a few hundred levels") from None
    if objects and not isinstance(value, dict):
        raise InputLineError(str(path), number,
                             f"expected a JSON object, got {type(value).__name__}")
    return value


def _open_text(path: Path, errors: str) -> IO[str]:
    # strict: an undecodable byte is kept as a surrogate escape, so parse_line reports its line
    # (instead of the whole file failing to decode)
    errors = "surrogateescape" if errors == "strict" else errors
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors=errors)
    return open(path, encoding="utf-8", errors=errors)


def _numbered_lines(path: Path, errors: str = "strict") -> Iterator[tuple[int, str]]:
    with _open_text(path, errors) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def iter_jsonl(path: str | Path, *, objects: bool = True) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line, in file order.

    Args:
        path: the JSONL file.
        objects: require each line to be a JSON object.

    Raises:
        FileNotFoundError: the file does not exist.
        InputLineError: a line is not valid JSON (or not an object); raised when it is reached.
    """
    path = Path(path)
    for number, line in _numbered_lines(path):
        yield number, parse_line(path, number, line, objects=objects)


def read_jsonl(path: str | Path, *, objects: bool = True) -> list[Any]:
    """Every value of a JSONL file, in order (see :func:`iter_jsonl` for the errors)."""
    return [value for _, value in iter_jsonl(path, objects=objects)]


def read_jsonl_lenient(
    path: str | Path,
    parse: Callable[[Any], T] | None = None,
    *,
    objects: bool = True,
    errors: str = "strict",
) -> tuple[list[tuple[int, T]], list[InputLineError]]:
    """Read every line, collecting bad ones instead of stopping at the first.

    Args:
        path: the JSONL file.
        parse: turns a decoded line into a record; it rejects a line by raising ``ValueError``
            (``DataError`` included), ``KeyError`` or ``TypeError``, whose message becomes the
            error's reason. None keeps the decoded values.
        objects: require each line to be a JSON object.
        errors: how undecodable bytes are handled (``"strict"`` reports their line as bad,
            ``"replace"`` turns them into U+FFFD so the line is judged by ``parse``).

    Returns:
        ``(line number, record)`` for each good line and one :class:`InputLineError` per bad
        line, both in file order.

    Raises:
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    good: list[tuple[int, Any]] = []
    bad: list[InputLineError] = []
    for number, line in _numbered_lines(path, errors):
        try:
            value = parse_line(path, number, line, objects=objects)
            good.append((number, value if parse is None else parse(value)))
        except InputLineError as exc:
            bad.append(exc)
        except KeyError as exc:
            bad.append(InputLineError(str(path), number, f"missing key {exc}"))
        except (ValueError, TypeError) as exc:
            bad.append(InputLineError(str(path), number, str(exc)))
    return good, bad


def _encode_lines(rows: Iterable[T], encode: Callable[[T], str]) -> str:
    """The rows as newline-terminated lines; ``ValueError`` if a row's text has a line break."""
    lines = []
    for row in rows:
        line = encode(row)
        if "\n" in line or "\r" in line:
            raise ValueError(f"a JSONL line cannot contain a line break: {line[:80]!r}")
        lines.append(line + "\n")
    return "".join(lines)


def append_jsonl(path: str | Path, rows: Iterable[T],
                 encode: Callable[[T], str] = dumps_line) -> int:
    """Append one line per row, then flush and fsync, holding an exclusive lock on the file.

    The lines are written under the lock, so concurrent appenders never interleave within a line.
    If the file does not end with a newline (a writer died mid-line), one is added first, so the
    torn line stays alone on its line (readers then report it) and the new lines are whole. If a
    write fails (a full disk), the file is cut back to its size before the call, so nothing is
    half-written, and the error names the file.

    Args:
        path: the JSONL file (created, with its folder, if missing).
        rows: the values to append.
        encode: turns a row into its line text, without a newline (default :func:`dumps_line`).

    Returns:
        The number of lines appended.

    Raises:
        ValueError: an encoded row contains a line break.
        OSError: the lines could not be written or synced (the file is left as it was).
    """
    text = _encode_lines(rows, encode)
    if not text:
        return 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b", buffering=0) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            start = handle.seek(0, os.SEEK_END)
            data = text.encode("utf-8")
            if start > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    data = b"\n" + data
            try:
                _write_all(handle.fileno(), data)
                os.fsync(handle.fileno())
            except OSError as exc:  # e.g. disk full: take back what was written
                os.ftruncate(handle.fileno(), start)
                raise naming(exc, path) from exc
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return text.count("\n")


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (an ``O_APPEND`` descriptor), however short each write."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def repair_jsonl_tail(path: str | Path, parse: Callable[[Any], T] | None = None) -> list[T]:
    """Keep the whole, readable lines at the head of a file and cut off the rest.

    For files only ever appended to: a line without its newline (the writer was killed), or one
    that does not decode or that ``parse`` rejects, ends the good part; the file is truncated
    there so the next append starts on a clean line. Blank lines before that point are kept.

    Args:
        path: the JSONL file; a missing file is left missing.
        parse: turns a decoded line into a record, rejecting it by raising ``ValueError``,
            ``KeyError`` or ``TypeError``. None keeps the decoded values.

    Returns:
        The records of the kept lines, in order.
    """
    path = Path(path)
    if not path.exists():
        return []
    kept: list[Any] = []
    good_end = number = 0
    with open(path, "rb") as handle:
        for raw in handle:
            number += 1
            if not raw.endswith(b"\n"):
                break
            if raw.strip():
                try:
                    value = json.loads(raw)
                    kept.append(value if parse is None else parse(value))
                except (ValueError, KeyError, TypeError):
                    break
            good_end = handle.tell()
    size = path.stat().st_size
    if good_end != size:
        logger.warning("%s:%d: cutting off a torn or unreadable line and what follows (%d bytes) so "
                       "appends resume cleanly", path, number, size - good_end)
        with open(path, "r+b") as handle:
            handle.truncate(good_end)
    return kept


def write_jsonl(path: str | Path, rows: Iterable[T],
                encode: Callable[[T], str] = dumps_line) -> None:
    """Replace ``path`` with one line per row, atomically (never half-written).

    Args:
        path: the JSONL file (its folder is created if needed).
        rows: the values to write.
        encode: turns a row into its line text, without a newline (default :func:`dumps_line`).

    Raises:
        ValueError: an encoded row contains a line break (the old file is kept).
    """
    write_atomic(path, _encode_lines(rows, encode))
