"""Problems found in a policy.

An :class:`Issue` is located by key path only (the routing checks know no lines); the loader turns
it into a :class:`PolicyIssue` (file, line, key, what, fix); :func:`format_issues` writes the text
of the :class:`~psa_guard.errors.PolicyError` that reports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Issue", "PolicyIssue", "format_issues"]


@dataclass(frozen=True)
class Issue:
    """One problem found in a document, before it is tied to a file and a line.

    Attributes:
        loc: where, as a pydantic-style location (``("contexts", "kids_tutor", "extends")``).
        message: what is wrong.
        fix: how to fix it.
    """

    loc: tuple[str | int, ...]
    message: str
    fix: str


@dataclass(frozen=True)
class PolicyIssue:
    """One problem in a policy file.

    Attributes:
        source: the file path (or ``"<string>"``).
        line: 1-based line of the offending key (or of its nearest written parent), if known.
        key: dotted key path, e.g. ``contexts.kids_tutor.preference.empathy`` (``""`` for the
            whole file).
        message: what is wrong.
        fix: how to fix it.
    """

    source: str
    line: int | None
    key: str
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}. Fix: {self.fix}."


def format_issues(issues: Iterable[PolicyIssue]) -> str:
    """The text of a :class:`PolicyError`: a summary line, then one indented line per issue."""
    issues = list(issues)
    sources = sorted({issue.source for issue in issues})
    noun = "problem" if len(issues) == 1 else "problems"
    head = f"invalid policy {', '.join(sources)} ({len(issues)} {noun}):"
    return "\n".join([head, *(f"  {issue}" for issue in issues)])
