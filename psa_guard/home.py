"""Where psa-guard keeps its files: the cache home and the data folder.

Both are resolved from the environment each time they are asked for (no import-time side effects):

* ``PSA_GUARD_HOME`` relocates the cache (default: the user's cache directory, e.g.
  ``~/.cache/psa-guard`` on Linux).
* ``PSA_GUARD_DATA`` points at a safety-data folder (default: ``../shared/safety-data`` beside the
  source checkout, when it exists).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["guard_home", "models_dir", "data_dir", "SOURCE_ROOT"]

#: The folder that holds the ``psa_guard`` package (the repository root in a source checkout).
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def guard_home() -> Path:
    """The cache home: ``$PSA_GUARD_HOME`` or the user's cache directory for ``psa-guard``."""
    env = os.environ.get("PSA_GUARD_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("psa-guard"))


def models_dir() -> Path:
    """The folder under the cache home where converted models live."""
    return guard_home() / "models"


def data_dir() -> Path | None:
    """The safety-data folder: ``$PSA_GUARD_DATA``, else ``../shared/safety-data`` if it exists."""
    env = os.environ.get("PSA_GUARD_DATA")
    if env:
        return Path(env).expanduser()
    candidate = SOURCE_ROOT.parent / "shared" / "safety-data"
    return candidate if candidate.is_dir() else None
