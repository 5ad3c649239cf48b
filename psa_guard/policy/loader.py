"""Reading policy YAML safely, with line numbers, and turning every problem into a located message.

:func:`~psa_guard.policy.yaml_tree.compose_yaml` turns the text into plain data and a
``{key path: line}`` index (safely: the YAML is composed, never loaded with an unsafe loader);
pydantic validates the data against :class:`~psa_guard.policy.schema.PolicyDocument`; each pydantic
error location (``("contexts", "kids_tutor", "preference", "empathy")``) is mapped to its line and
given a fix; then cross-references are checked (once: :class:`~psa_guard.policy.policy.Policy`
does not check a parsed document again).

Every problem becomes a :class:`PolicyIssue` (file, line, key, what, fix); all problems of a file
are reported together in one :class:`~psa_guard.errors.PolicyError`.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from psa_guard.errors import PolicyError
from psa_guard.policy.issues import Issue, PolicyIssue, format_issues
from psa_guard.policy.routing import check_document
from psa_guard.policy.schema import (
    LOCALE_PATTERN,
    REMOVED_CONTEXT_KEYS,
    ContextSpec,
    PolicyDocument,
)
from psa_guard.policy.yaml_tree import Loc, compose_yaml, describe_value, short_repr

__all__ = ["parse_document"]

_DOCS = "see docs/policies.md"


# --------------------------------------------------------------------------------------------
# pydantic errors -> (message, fix)


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` to the interesting type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that describes the mapping at ``loc`` (None if not a model)."""
    current: Any = PolicyDocument
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is tuple:
            current = typing.get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


_EXPECTED = {
    "float_type": ("a number", "write a plain number such as 0.5 (without quotes)"),
    "int_type": ("a whole number", "write a whole number such as 1 (without quotes)"),
    "string_type": (
        "text",
        "write text; quote it if it looks like a number, a date, yes/no or null",
    ),
    "bool_type": ("true or false", "write true or false (without quotes)"),
    "dict_type": ("a mapping", "write 'key: value' lines indented under this key"),
    "model_type": ("a mapping", "write 'key: value' lines indented under this key"),
    "model_attributes_type": ("a mapping", "write 'key: value' lines indented under this key"),
    "tuple_type": ("a list", "write a list: one '- item' line per entry"),
    "list_type": ("a list", "write a list: one '- item' line per entry"),
}


def _describe(error: ErrorDetails, loc: Loc) -> tuple[str, str]:
    """What went wrong and how to fix it, for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    key = str(loc[-1]) if loc else ""
    if "fix" in ctx:
        return error["msg"], str(ctx["fix"])
    if kind == "missing":
        parent = ".".join(str(part) for part in loc[:-1]) or "the top level"
        return f"required key {key!r} is missing", f"add '{key}:' under {parent}"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        if model is ContextSpec and key in REMOVED_CONTEXT_KEYS:
            return REMOVED_CONTEXT_KEYS[key]
        allowed = ", ".join(model.model_fields) if model is not None else ""
        return (
            f"unknown key {key!r}",
            f"remove it or correct the spelling; allowed keys here: {allowed}"
            if allowed
            else "remove it",
        )
    if kind == "literal_error":
        if loc == ("version",):
            return (
                f"unsupported version {short_repr(value)}",
                "set 'version: 1' (the only format this library reads)",
            )
        return f"{short_repr(value)} is not allowed here", f"use one of: {ctx.get('expected')}"
    if kind in _EXPECTED:
        expected, fix = _EXPECTED[kind]
        return f"expected {expected}, got {describe_value(value)}", fix
    bounds = {
        "greater_than": ("gt", "greater than"),
        "greater_than_equal": ("ge", "at least"),
        "less_than": ("lt", "less than"),
        "less_than_equal": ("le", "at most"),
    }
    if kind in bounds:
        name, words = bounds[kind]
        return f"{short_repr(value)} is out of range", f"use a number {words} {ctx.get(name)}"
    if kind == "finite_number":
        return (
            f"{short_repr(value)} is not a finite number",
            "use a finite number (not .inf or .nan)",
        )
    if kind in ("string_too_short", "too_short"):
        return "the value is empty", f"write at least {ctx.get('min_length', 1)} " + (
            "character" if kind == "string_too_short" else "entry"
        )
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == LOCALE_PATTERN:
            return (
                f"{short_repr(value)} is not a locale",
                "use a language tag such as 'en', a language-REGION tag such as 'en-GB' "
                "(region in capitals), or '*' for everywhere",
            )
        return (
            f"{short_repr(value)} is not a valid name",
            "use lowercase letters, digits and underscores, starting with a letter "
            "(e.g. kids_tutor)",
        )
    return str(error["msg"]), _DOCS


def _validation_issues(exc: ValidationError) -> list[Issue]:
    errors = exc.errors(include_url=False)
    locs = [tuple(error["loc"]) for error in errors]
    issues: list[Issue] = []
    for error, loc in zip(errors, locs, strict=True):
        # drop an error when a more specific one exists below it (e.g. "too short" after a bad item)
        if any(other != loc and other[: len(loc)] == loc for other in locs):
            continue
        clean: Loc = tuple(part for part in loc if part != "[key]")
        message, fix = _describe(error, clean)
        issues.append(Issue(clean, message, fix))
    return issues


# --------------------------------------------------------------------------------------------
# the loader


def _line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc``, or of its nearest written ancestor."""
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return None


def _located(source: str, lines: dict[Loc, int], issue: Issue) -> PolicyIssue:
    loc = issue.loc
    key = ".".join(str(part) for part in loc if not str(part).startswith("#"))
    if "duplicate key" in issue.message:
        line = lines.get((*loc, "#duplicate"))
    else:
        line = _line_of(lines, loc)
    return PolicyIssue(source, line, key, issue.message, issue.fix)


def parse_document(text: str, source: str) -> PolicyDocument:
    """Parse and fully check one policy text: structure, then cross-references.

    Args:
        text: the YAML text.
        source: the name used in messages (the file path, or ``"<string>"``).

    Returns:
        The validated document; its cross-references are consistent
        (:func:`~psa_guard.policy.routing.check_document` found nothing).

    Raises:
        PolicyError: anything is wrong; the message lists every problem with file, line, key and
            fix, and ``error.issues`` holds them as :class:`PolicyIssue`.
    """
    if not isinstance(text, str):
        raise PolicyError(
            f"{source}: policy text must be str, got {type(text).__name__}; decode it first"
        )
    data, lines, dropped, issues = compose_yaml(text)
    document: PolicyDocument | None = None
    if isinstance(data, dict):
        try:
            document = PolicyDocument.model_validate(data)
        except ValidationError as exc:
            # a value already reported (bad tag, duplicate key, ...) is not reported again
            issues += [
                issue
                for issue in _validation_issues(exc)
                if not any(issue.loc[: len(loc)] == loc for loc in dropped if loc)
            ]
    if document is not None and not issues:
        issues = check_document(document)
    if issues or document is None:
        located = sorted(
            (_located(source, lines, issue) for issue in issues),
            key=lambda issue: issue.line if issue.line is not None else 0,
        )
        raise PolicyError(format_issues(located), located)
    return document
