"""Whole-file writes that never leave a half-written file behind.

The new content goes to a temporary file in the destination's folder, is fsynced, and is then
renamed over the destination with :func:`os.replace` (atomic on POSIX and Windows). If anything
fails before the rename, the old file is untouched and the temporary file is removed.

A process killed between creating the temporary file and the rename (``SIGKILL``, power loss)
cannot remove it. The temporary's name carries the writer's process id, and the next write of
the same destination removes the temporaries of writers that are no longer running.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "naming", "stale_temporaries", "write_atomic"]

_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")


def naming(exc: OSError, path: str | Path) -> OSError:
    """``exc`` with ``path`` as its file name when it has none (``[Errno 28] No space left on
    device: 'PATH'``), keeping its type (``OSError(errno, ...)`` picks the builtin subclass)."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _running(pid: int) -> bool:
    """Whether a process with id ``pid`` exists on this machine (always assumed on Windows,
    where ``os.kill`` cannot probe without signalling)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def stale_temporaries(path: str | Path) -> list[Path]:
    """The temporary files of ``path`` left by writers that are no longer running.

    Args:
        path: a destination file of :func:`atomic_path`.

    Returns:
        Hidden siblings ``.NAME.<pid>.<random>.tmp`` whose ``pid`` is not a running process.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = []
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = _TEMPORARY.fullmatch(candidate.name)
        if match and match["name"] == path.name and not _running(int(match["pid"])):
            stale.append(candidate)
    return sorted(stale)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; renamed into place on success.

    For writers that take a file name (``safetensors.save_file``, ``torch.save``)::

        with atomic_path(out) as tmp:
            save_file(tensors, str(tmp))

    The parent folder is created if needed. The temporary file is a hidden sibling
    (``.NAME.<pid>.<random>.tmp``), so it is on the same file system and the rename is atomic;
    temporaries of ``path`` left by killed writers are removed first (:func:`stale_temporaries`).

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
    for stale in stale_temporaries(path):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
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
