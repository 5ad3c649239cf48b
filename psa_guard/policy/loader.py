"""Reading policy YAML safely, with line numbers, and turning every problem into a located message.

The text is *composed* (``yaml.compose`` with ``yaml.SafeLoader``) into a node tree, never loaded
with an unsafe loader. Walking the tree builds the plain data for pydantic and, at the same time, an
index ``{key path: line}``, so that a pydantic error location such as
``("contexts", "kids_tutor", "preference", "empathy")`` maps to the line of that key. The walk also
catches what PyYAML lets through silently: duplicate mapping keys (PyYAML keeps the last one), tags
other than plain scalars, mappings and lists (``!!python/object`` and friends), merge keys and
recursive aliases.

Every problem becomes a :class:`PolicyIssue` (file, line, key, what, fix); all problems of a file
are reported together in one :class:`~psa_guard.errors.PolicyError`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.constructor import ConstructorError, SafeConstructor

from psa_guard.errors import PolicyError
from psa_guard.policy.routing import Issue, check_document
from psa_guard.policy.schema import LOCALE_PATTERN, PolicyDocument

__all__ = ["PolicyIssue", "parse_document", "format_issues"]

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp")}
_MAX_NODES = 100_000
_DOCS = "see docs/policies.md"

Loc = tuple[str | int, ...]


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


# --------------------------------------------------------------------------------------------
# YAML -> data + line index


class _Walker:
    """Turns a composed node tree into plain data, recording key lines and structural problems."""

    def __init__(self) -> None:
        self.lines: dict[Loc, int] = {}
        self.issues: list[Issue] = []
        self.dropped: list[Loc] = []  # values replaced by None after a reported problem
        self._constructor = SafeConstructor()
        self._active: set[int] = set()
        self._count = 0

    def walk(self, node: yaml.Node, loc: Loc) -> Any:
        self._count += 1
        if self._count > _MAX_NODES:
            raise _TooLarge
        if id(node) in self._active:
            self.issues.append(
                Issue(
                    loc, "recursive YAML alias", "write the value out instead of an alias to itself"
                )
            )
            self.dropped.append(loc)
            return None
        line = node.start_mark.line + 1
        self.lines.setdefault(loc, line)
        if isinstance(node, yaml.MappingNode) and node.tag == _TAG + "map":
            self._active.add(id(node))
            try:
                return self._mapping(node, loc)
            finally:
                self._active.discard(id(node))
        if isinstance(node, yaml.SequenceNode) and node.tag == _TAG + "seq":
            self._active.add(id(node))
            try:
                return tuple(self.walk(item, (*loc, i)) for i, item in enumerate(node.value))
            finally:
                self._active.discard(id(node))
        if isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS:
            try:
                return self._constructor.construct_object(node, deep=True)
            except (ConstructorError, ValueError) as exc:  # e.g. an impossible !!timestamp
                self.issues.append(
                    Issue(loc, f"unreadable value {node.value!r} ({exc})", "quote it")
                )
                self.dropped.append(loc)
                return None
        tag = node.tag.replace(_TAG, "!!")
        self.issues.append(
            Issue(
                loc,
                f"unsupported YAML tag {tag!r}",
                "remove the tag: policy files hold plain text, numbers, booleans, mappings "
                "and lists",
            )
        )
        self.dropped.append(loc)
        return None

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _TAG + "merge":
                self.lines.setdefault((*loc, "<<"), line)
                self.issues.append(
                    Issue(
                        (*loc, "<<"),
                        "YAML merge keys ('<<') are not supported",
                        "write the keys out, or inherit a whole context with 'extends:'",
                    )
                )
                continue
            if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _TAG + "str"):
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "<complex>"
                self.lines.setdefault((*loc, str(shown)), line)
                self.issues.append(
                    Issue(
                        (*loc, str(shown)),
                        f"key {shown!r} is not text "
                        f"(YAML reads it as {key_node.tag.replace(_TAG, '')})",
                        "put the key in quotes",
                    )
                )
                continue
            key = key_node.value
            if key in result:
                self.issues.append(
                    Issue(
                        (*loc, key),
                        f"duplicate key {key!r} (first written on line {first_line[key]}); YAML "
                        "would silently keep only the last one",
                        "remove one of them or give it a different name",
                    )
                )
                self.lines[(*loc, key, "#duplicate")] = line
                continue
            first_line[key] = line
            self.lines[(*loc, key)] = line
            result[key] = self.walk(value_node, (*loc, key))
        return result


class _TooLarge(Exception):
    """The document expands to too many nodes (for example an alias bomb)."""


def _compose(text: str) -> tuple[Any, dict[Loc, int], list[Loc], list[Issue]]:
    """Compose and walk ``text``.

    Returns:
        The plain data, the ``{key path: line}`` index, the paths whose values were dropped after
        a reported problem, and the structural problems.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        lines: dict[Loc, int] = {("#yaml",): line} if line is not None else {}
        return (
            None,
            lines,
            [],
            [
                Issue(
                    ("#yaml",),
                    f"malformed YAML: {what}",
                    "correct the syntax on that line (spaces for indentation, 'key: value', "
                    "matching quotes and brackets, one document per file)",
                )
            ],
        )
    except yaml.YAMLError as exc:
        return (
            None,
            {},
            [],
            [Issue(("#yaml",), f"malformed YAML: {exc}", "correct the YAML syntax")],
        )
    if root is None:
        return (
            None,
            {},
            [],
            [
                Issue(
                    (),
                    "the file is empty",
                    "start it with 'version: 1', 'name:', 'default_context:' and 'contexts:'",
                )
            ],
        )
    walker = _Walker()
    try:
        data = walker.walk(root, ())
    except _TooLarge:
        return (
            None,
            walker.lines,
            [],
            [
                Issue(
                    (),
                    f"the document expands to more than {_MAX_NODES} values (alias bomb?)",
                    "write the policy without deeply nested aliases",
                )
            ],
        )
    if not isinstance(data, dict) and not walker.issues:
        walker.issues.append(
            Issue(
                (),
                f"the top level is {_yaml_type(data)}, not a mapping",
                "write 'version: 1', 'name: ...', 'default_context: ...' and 'contexts:' "
                "at the top",
            )
        )
    return data, walker.lines, walker.dropped, walker.issues


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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _yaml_type(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, tuple):
        return "a list"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {_short(value)}"


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
                f"unsupported version {_short(value)}",
                "set 'version: 1' (the only format this library reads)",
            )
        return f"{_short(value)} is not allowed here", f"use one of: {ctx.get('expected')}"
    if kind in _EXPECTED:
        expected, fix = _EXPECTED[kind]
        return f"expected {expected}, got {_yaml_type(value)}", fix
    bounds = {
        "greater_than": ("gt", "greater than"),
        "greater_than_equal": ("ge", "at least"),
        "less_than": ("lt", "less than"),
        "less_than_equal": ("le", "at most"),
    }
    if kind in bounds:
        name, words = bounds[kind]
        return f"{_short(value)} is out of range", f"use a number {words} {ctx.get(name)}"
    if kind == "finite_number":
        return f"{_short(value)} is not a finite number", "use a finite number (not .inf or .nan)"
    if kind in ("string_too_short", "too_short"):
        return "the value is empty", f"write at least {ctx.get('min_length', 1)} " + (
            "character" if kind == "string_too_short" else "entry"
        )
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == LOCALE_PATTERN:
            return (
                f"{_short(value)} is not a locale",
                "use a language tag such as 'en', a language-REGION tag such as 'en-GB' "
                "(region in capitals), or '*' for everywhere",
            )
        return (
            f"{_short(value)} is not a valid name",
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


def _artifact_issues(document: PolicyDocument, base_dir: Path) -> list[Issue]:
    issues: list[Issue] = []
    for name, spec in document.contexts.items():
        if spec.artifacts is None:
            continue
        for field, what in (("harm_vector", "harm vector"), ("adapter", "adapter")):
            value = getattr(spec.artifacts, field)
            if value is None:
                continue
            path = Path(value).expanduser()
            full = path if path.is_absolute() else base_dir / path
            if not full.exists():
                issues.append(
                    Issue(
                        ("contexts", name, "artifacts", field),
                        f"{what} {str(full)!r} does not exist",
                        f"create it or correct the path (relative paths start from {base_dir}), "
                        f"or remove '{field}'",
                    )
                )
    return issues


def parse_document(text: str, source: str, base_dir: Path) -> PolicyDocument:
    """Parse and fully check one policy text.

    Args:
        text: the YAML text.
        source: the name used in messages (the file path, or ``"<string>"``).
        base_dir: folder that relative artifact paths start from (checked for existence).

    Returns:
        The validated document; its cross-references are consistent and its artifact files exist.

    Raises:
        PolicyError: anything is wrong; the message lists every problem with file, line, key and
            fix, and ``error.issues`` holds them as :class:`PolicyIssue`.
    """
    if not isinstance(text, str):
        raise PolicyError(
            f"{source}: policy text must be str, got {type(text).__name__}; decode it first"
        )
    data, lines, dropped, issues = _compose(text)
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
        issues = check_document(document) + _artifact_issues(document, base_dir)
    if issues or document is None:
        located = sorted(
            (_located(source, lines, issue) for issue in issues),
            key=lambda issue: issue.line if issue.line is not None else 0,
        )
        raise PolicyError(format_issues(located), located)
    return document
