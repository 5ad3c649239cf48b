"""The policies shipped with psa-guard, by name, and one loader for a name, a file or a Policy.

The shipped files live in the repository's ``policies/`` folder, which the wheel installs as the
package data of :data:`SHIPPED_PACKAGE` (``pyproject.toml``, ``[tool.setuptools.package-dir]``), so
they are found by name from any folder, in an editable install and in a plain one.
"""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from pathlib import Path

from psa_guard.errors import PolicyError
from psa_guard.policy.policy import Policy

__all__ = ["SHIPPED_PACKAGE", "load_policy", "shipped_policy_names"]

#: The package whose data files are the shipped policies (the repository's ``policies/``).
SHIPPED_PACKAGE = "psa_guard.shipped_policies"

_SUFFIXES = (".yaml", ".yml")


def shipped_policy_names() -> tuple[str, ...]:
    """The names of the shipped policies (each file's stem, which is also its ``name:``), sorted."""
    folder = resources.files(SHIPPED_PACKAGE)
    return tuple(sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir()
                        if entry.name.endswith(".yaml")))


def _looks_like_path(text: str) -> bool:
    """Whether ``text`` names a file rather than a shipped policy."""
    return (
        Path(text).suffix in _SUFFIXES
        or any(sep in text for sep in (os.sep, os.altsep) if sep)
        or Path(text).is_file()
    )


@cache
def _shipped(name: str) -> Policy:
    """A shipped policy, read and checked once per process (package data does not change)."""
    with resources.as_file(resources.files(SHIPPED_PACKAGE) / f"{name}.yaml") as path:
        return Policy.from_path(path)


def load_policy(source: Policy | str | os.PathLike[str]) -> Policy:
    """A policy from a :class:`Policy`, a policy file, or the name of a shipped policy.

    * a :class:`Policy` is returned as it is;
    * an existing file, or anything with a ``.yaml``/``.yml`` suffix or a path separator, is read
      with :meth:`Policy.from_path` (relative paths start from the current folder);
    * otherwise ``source`` is the name of a shipped policy (:func:`shipped_policy_names`), such as
      ``"mental_health_support"``; those are read once per process and shared.

    Raises:
        PolicyError: the file is missing or invalid (file, line, key and fix), or the name is not a
            shipped policy (the message lists the shipped names).
    """
    if isinstance(source, Policy):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise PolicyError(
            f"policy must be a Policy, a policy file path or a shipped policy name, got "
            f"{type(source).__name__}"
        )
    text = os.fspath(source)
    if _looks_like_path(text):
        return Policy.from_path(text)
    names = shipped_policy_names()
    if text not in names:
        raise PolicyError(
            f"unknown policy {text!r}: not the name of a shipped policy, and no such file. "
            f"Shipped policies: {', '.join(names)}; a policy file path also works "
            f"(e.g. ./my_policy.yaml)"
        )
    return _shipped(text)
