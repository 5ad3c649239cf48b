"""Whole-file writes that never leave a half-written file behind.

The new content goes to a temporary file in the destination's folder, is fsynced, and is then
renamed over the destination with :func:`os.replace` (atomic on POSIX and Windows). If anything
fails before the rename, the old file is untouched and the temporary file is removed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "naming", "write_atomic"]


def naming(exc: OSError, path: str | Path) -> OSError:
    """``exc`` with ``path`` as its file name when it has none (``[Errno 28] No space left on
    device: 'PATH'``), keeping its type (``OSError(errno, ...)`` picks the builtin subclass)."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; renamed into place on success.

    For writers that take a file name (``safetensors.save_file``, ``torch.save``)::

        with atomic_path(out) as tmp:
            save_file(tensors, str(tmp))

    The parent folder is created if needed. The temporary file is a hidden sibling
    (``.NAME.<random>.tmp``), so it is on the same file system and the rename is atomic.

    Args:
        path: the destination file.

    Yields:
        The temporary path (not yet created); write the whole new content there.

    Raises:
        OSError: the content could not be written, synced or renamed (the old file is kept; the
            error names ``path``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # e.g. disk full: the old file is kept; say which file
        raise naming(exc, path) from exc
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: str | bytes, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_path`).

    Args:
        path: the destination file (its folder is created if needed).
        data: the whole new content; text is encoded with ``encoding``.
        encoding: the text encoding.
    """
    raw = data.encode(encoding) if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        tmp.write_bytes(raw)
