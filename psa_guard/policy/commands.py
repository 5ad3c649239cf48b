"""``psa-guard policy``: validate policy files and print the JSON schema.

* ``psa-guard policy validate NAME_OR_FILE_OR_FOLDER...``: exit 0 when every policy is valid;
  otherwise exit 1 after printing, per bad file, each problem as ``file:line: key: what. Fix: how.``
  (a folder means every ``*.yaml`` in it; a bare name is a shipped policy, as for
  :func:`~psa_guard.policy.shipped.load_policy`).
* ``psa-guard policy schema``: print the JSON schema of policy files (the committed copy is
  ``policies/policy.schema.json``; regenerate it with ``psa-guard policy schema >
  policies/policy.schema.json``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from psa_guard.errors import PolicyError
from psa_guard.policy.schema import policy_json_schema_text
from psa_guard.policy.shipped import load_policy

__all__ = ["register", "validate_command", "schema_command"]


def register(subparsers: Any) -> None:
    """Add the ``policy`` command group to the CLI's sub-parsers (``argparse``)."""
    parser = subparsers.add_parser(
        "policy",
        help="validate policy files; print their JSON schema",
        description="Work with policy files (see docs/policies.md).",
    )
    commands = parser.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")

    validate = commands.add_parser(
        "validate",
        help="check policies (exit 0 if all are valid, 1 otherwise)",
        description="Check policies; print each problem with file, line, key and fix.",
    )
    validate.add_argument(
        "files", nargs="+", metavar="NAME_OR_FILE",
        help="shipped policy names, policy files, or folders of *.yaml",
    )
    validate.set_defaults(func=validate_command)

    schema = commands.add_parser("schema", help="print the JSON schema of policy files")
    schema.set_defaults(func=schema_command)

    def _help(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 1

    parser.set_defaults(func=_help)


def _expand(sources: list[str]) -> list[str]:
    """Each folder replaced by its ``*.yaml`` files; names and files stay as they are."""
    expanded: list[str] = []
    for source in sources:
        folder = Path(source)
        expanded.extend(map(str, sorted(folder.glob("*.yaml"))) if folder.is_dir() else [source])
    return expanded


def validate_command(args: argparse.Namespace) -> int:
    """Validate ``args.files``; print ``ok`` lines to stdout and problems to stderr.

    Returns:
        0 when every policy is valid, 1 otherwise (including a folder without ``*.yaml`` files).
    """
    files = _expand([str(source) for source in args.files])
    if not files:
        print("psa-guard policy validate: no *.yaml files found", file=sys.stderr)
        return 1
    bad = 0
    for file in files:
        try:
            policy = load_policy(file)
        except PolicyError as exc:
            bad += 1
            print(str(exc), file=sys.stderr)
            continue
        print(f"ok {file}: policy {policy.name!r}, contexts {', '.join(policy.context_names)}")
    if bad:
        print(f"{bad} of {len(files)} policy files invalid", file=sys.stderr)
        return 1
    return 0


def schema_command(args: argparse.Namespace) -> int:
    """Print the JSON schema of policy files to stdout; returns 0."""
    sys.stdout.write(policy_json_schema_text())
    return 0
