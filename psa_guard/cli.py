"""The ``psa-guard`` command line: the composition root of the core.

Built-in commands: ``setup``, ``info``, ``chat``, ``generate``, ``demo``. Command groups owned by
subpackages (evaluation, policies, ...) are listed in :data:`COMMAND_MODULES`; each module exposes
``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from psa_guard.errors import PSAGuardError

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

#: Modules that add sub-commands; each exposes ``register(subparsers) -> None``.
COMMAND_MODULES: list[str] = [
    "psa_guard.commands",
    "psa_guard.policy.commands",
    "psa_guard.evaluation.commands",
    "psa_guard.direg.commands",
    "psa_guard.moderation.commands",
    "psa_guard.arm.commands",
    "psa_guard.serve.commands",
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="psa-guard",
        description="Test-time safety and prosocial alignment for local chat models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 invalid input or failure, 130 interrupted).

    Errors raised on purpose and operating-system errors (a full disk, a path it may not write)
    are printed as one ``psa-guard: error:`` line; anything else is a bug and keeps its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except PSAGuardError as exc:
        print(f"psa-guard: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a folder it may not write: the file, not a traceback
        print(f"psa-guard: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("psa-guard: interrupted", file=sys.stderr)
        return 130


def existing_path(value: str) -> Path:
    """argparse type for a path that must exist."""
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{value} does not exist")
    return path


if __name__ == "__main__":
    sys.exit(main())
