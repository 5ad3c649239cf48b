"""Safe YAML composition with line numbers: the first half of reading a policy file.

The text is *composed* (``yaml.compose`` with ``yaml.SafeLoader``) into a node tree, never loaded
with an unsafe loader. Walking the tree builds plain data (mappings as ``dict``, lists as ``tuple``)
and, at the same time, an index ``{key path: line}``, so that a pydantic error location such as
``("contexts", "kids_tutor", "preference", "empathy")`` maps to the line of that key. The walk also
catches what PyYAML lets through silently: duplicate mapping keys (PyYAML keeps the last one), tags
other than plain scalars, mappings and lists (``!!python/object`` and friends), merge keys and
recursive aliases.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from psa_guard.policy.issues import Issue

__all__ = ["Loc", "compose_yaml", "describe_value", "short_repr"]

#: A key path: mapping keys and list indices from the top of the document.
Loc = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp")}
_MAX_NODES = 100_000


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_value(value: Any) -> str:
    """How a parsed YAML value reads in a message: 'a mapping', 'a list', "str '0.5'"."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, tuple):
        return "a list"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {short_repr(value)}"


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


def _too_deep() -> Issue:
    return Issue(
        (),
        "the document is nested too deeply to read",
        "a policy needs a handful of levels; remove the runaway brackets or indentation",
    )


def compose_yaml(text: str) -> tuple[Any, dict[Loc, int], list[Loc], list[Issue]]:
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
    except RecursionError:  # PyYAML composes nested collections recursively
        return None, {}, [], [_too_deep()]
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
    except RecursionError:
        return None, {}, [], [_too_deep()]
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
                f"the top level is {describe_value(data)}, not a mapping",
                "write 'version: 1', 'name: ...', 'default_context: ...' and 'contexts:' "
                "at the top",
            )
        )
    return data, walker.lines, walker.dropped, walker.issues
