"""The :class:`Policy` object and its loaders.

``Policy(document)`` only wires a document to its resolved contexts (no I/O; it checks the
document's cross-references itself); :meth:`Policy.from_path`, :meth:`Policy.from_string` and
:func:`load_policies` are the paths that read text, and they check each document once, with line
numbers (:func:`~psa_guard.policy.loader.parse_document`). Shipped policies by name:
:func:`psa_guard.policy.shipped.load_policy`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from psa_guard.errors import PolicyError
from psa_guard.policy.issues import PolicyIssue, format_issues
from psa_guard.policy.loader import parse_document
from psa_guard.policy.routing import Decision, ResolvedContext, resolve_contexts
from psa_guard.policy.schema import PolicyDocument

__all__ = ["Policy", "load_policies"]


class Policy:
    """A validated policy: named contexts with fully inherited settings.

    Args:
        document: a structurally valid :class:`PolicyDocument`.
        source: where it came from, for messages (a path or ``"<string>"``).

    Raises:
        PolicyError: the document's cross-references are inconsistent (unknown ``extends`` or
            default context, a cycle, a context without preference, an action without message).
    """

    def __init__(self, document: PolicyDocument, source: str = "<string>") -> None:
        self._wire(document, source, checked=False)

    def _wire(self, document: PolicyDocument, source: str, *, checked: bool) -> None:
        self.document = document
        self.source = source
        self._contexts = MappingProxyType(resolve_contexts(document, checked=checked))

    @classmethod
    def _parsed(cls, text: str, source: str) -> Policy:
        """Parse and check ``text`` once (with line numbers), then wire it without a second check."""
        document = parse_document(text, source)
        policy = cls.__new__(cls)
        policy._wire(document, source, checked=True)
        return policy

    @classmethod
    def from_string(cls, text: str, source: str = "<string>") -> Policy:
        """Parse a policy from YAML text.

        Args:
            text: the YAML text.
            source: the name used in error messages.

        Raises:
            PolicyError: malformed YAML or an invalid policy; the message lists every problem with
                its line, key and fix.
        """
        return cls._parsed(text, source)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Policy:
        """Read a policy file.

        Raises:
            PolicyError: the file cannot be read or is invalid (file, line, key and fix).
        """
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PolicyError(
                f"{file}: policy file not found; check the path (or list a folder's files with "
                "load_policies)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(
                f"{file}: cannot read policy file ({exc}); save it as UTF-8 text"
            ) from exc
        return cls._parsed(text, str(file))

    @property
    def name(self) -> str:
        """The policy name (``name:`` in the file)."""
        return self.document.name

    @property
    def default_context(self) -> str:
        """The context :meth:`resolve` picks for ``None``."""
        return self.document.default_context

    @property
    def context_names(self) -> tuple[str, ...]:
        """Every context name, in file order."""
        return tuple(self._contexts)

    @property
    def contexts(self) -> Mapping[str, ResolvedContext]:
        """Read-only ``{name: ResolvedContext}``."""
        return self._contexts

    def resolve(self, context: str | None = None) -> ResolvedContext:
        """The fully inherited settings of ``context`` (``None``: the default context).

        Raises:
            PolicyError: the context does not exist; the message lists the valid ones. There is no
                silent fallback to the default.
        """
        name = self.default_context if context is None else context
        try:
            return self._contexts[name]
        except KeyError:
            raise PolicyError(
                f"unknown context {name!r} in policy {self.name!r} ({self.source}); "
                f"valid contexts: {', '.join(self.context_names)} "
                f"(or None for {self.default_context!r})"
            ) from None

    def decide(
        self, harm_score: float, context: str | None = None, locale: str | None = None
    ) -> Decision:
        """Shorthand for ``policy.resolve(context).decide(harm_score, locale)``."""
        return self.resolve(context).decide(harm_score, locale)

    def __repr__(self) -> str:
        contexts = list(self.context_names)
        return f"Policy(name={self.name!r}, contexts={contexts}, source={self.source!r})"


def load_policies(folder: str | os.PathLike[str]) -> dict[str, Policy]:
    """Load every ``*.yaml`` file of ``folder`` (not recursive), keyed by policy name.

    Every file is checked; all problems of all files are reported together.

    Raises:
        PolicyError: the folder does not exist or has no ``*.yaml`` file, a file is invalid, or
            two files declare the same policy name.
    """
    directory = Path(folder)
    if not directory.is_dir():
        raise PolicyError(f"{directory}: not a folder; pass the folder that holds the *.yaml files")
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise PolicyError(f"{directory}: no *.yaml policy files; add one (see docs/policies.md)")
    policies: dict[str, Policy] = {}
    issues: list[PolicyIssue] = []
    messages: list[str] = []
    for file in files:
        try:
            policy = Policy.from_path(file)
        except PolicyError as exc:
            if exc.issues:
                issues.extend(issue for issue in exc.issues if isinstance(issue, PolicyIssue))
            else:
                messages.append(str(exc))
            continue
        if policy.name in policies:
            issues.append(
                PolicyIssue(
                    str(file),
                    _name_line(file),
                    "name",
                    f"duplicate policy name {policy.name!r} "
                    f"(also in {policies[policy.name].source})",
                    "give each policy file a different 'name:'",
                )
            )
            continue
        policies[policy.name] = policy
    if issues or messages:
        text = "\n".join([*messages, format_issues(issues)] if issues else messages)
        raise PolicyError(text, issues)
    return policies


def _name_line(file: Path) -> int | None:
    """The line of the top-level ``name:`` key of a file that already parsed."""
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("name:"):
            return number
    return None
