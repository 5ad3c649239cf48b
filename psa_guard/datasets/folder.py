"""The safety-data folder, resolved once per call, with errors that say how to fix it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from psa_guard.errors import DataError
from psa_guard.home import data_dir

__all__ = ["data_file", "flatten_strings", "require_data_dir"]


def require_data_dir(override: str | Path | None = None) -> Path:
    """The safety-data folder: ``override``, else ``psa_guard.home.data_dir()``.

    Raises:
        DataError: no folder is configured or it does not exist; the message names PSA_GUARD_DATA.
    """
    folder = Path(override).expanduser() if override else data_dir()
    if folder is None:
        raise DataError(
            "no safety-data folder found: set the environment variable PSA_GUARD_DATA to the "
            "folder that holds safety-data (for example ../shared/safety-data), or pass --data"
        )
    if not folder.is_dir():
        raise DataError(
            f"the safety-data folder {folder} does not exist: set PSA_GUARD_DATA (or --data) to "
            "an existing safety-data folder"
        )
    return folder


def data_file(folder: Path, relative: str) -> Path:
    """``folder / relative``, checked to exist.

    Raises:
        DataError: the file is missing (names the file and the PSA_GUARD_DATA variable).
    """
    path = folder / relative
    if not path.is_file():
        raise DataError(
            f"{path} is missing from the safety-data folder {folder}; point PSA_GUARD_DATA at a "
            "complete copy of safety-data"
        )
    return path


def flatten_strings(tree: Any) -> list[str]:
    """All strings in a nested dict/list, in order (red_instruct files are topic -> subtopic ->
    questions)."""
    if isinstance(tree, str):
        return [tree]
    if isinstance(tree, dict):
        return [s for value in tree.values() for s in flatten_strings(value)]
    if isinstance(tree, list):
        return [s for value in tree for s in flatten_strings(value)]
    return []
