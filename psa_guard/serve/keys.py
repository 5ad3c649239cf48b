"""API keys: which bearer token may use which application.

The file is YAML, one key per entry, each mapped to the applications (model ids) it may use, or
``"*"`` for all::

    keys:
      - key: sk-support-team-1
        apps: [mental_health_support, mental_health_support/youth]
      - key: sk-admin
        apps: ["*"]

Keys are compared in constant time and never logged: logs name a key by :func:`key_id`, the first
8 hex digits of its sha256.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import yaml

from psa_guard.errors import ConfigurationError

__all__ = ["KeyRing", "key_id", "load_keys"]


def key_id(key: str) -> str:
    """A name for a key that is safe to log."""
    return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class KeyRing:
    """The keys and the applications each may use."""

    entries: tuple[tuple[str, frozenset[str]], ...]

    def find(self, token: str) -> frozenset[str] | None:
        """The applications ``token`` may use (None: not a key)."""
        found = None
        for key, apps in self.entries:  # no early exit: the time does not depend on the match
            if hmac.compare_digest(key.encode("utf-8"), token.encode("utf-8")):
                found = apps
        return found

    def check_apps(self, served: Collection[str], path: Path) -> None:
        """Refuse an entry that names a model id no application has (a misspelt id would lock
        its key out without a word).

        Raises:
            ConfigurationError: naming the file, the entry, the unknown ids and the served ones.
        """
        for index, (_, apps) in enumerate(self.entries):
            unknown = sorted(apps - set(served) - {"*"})
            if unknown:
                raise ConfigurationError(
                    f"{path}: keys[{index}].apps: {', '.join(map(repr, unknown))} is not a served "
                    f"model id; use one of {', '.join(sorted(served))} (or '*' for all)")


def load_keys(path: Path) -> KeyRing:
    """Read an API key file.

    Raises:
        ConfigurationError: the file is missing or malformed (the message names the file and
            the entry).
    """
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the API key file ({exc.strerror}); check "
                                 f"the path given to --api-keys") from exc
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path}: the API key file is not UTF-8 text; save it as UTF-8"
                                 ) from None
    except yaml.YAMLError as exc:
        # PyYAML's message quotes the offending line, which may hold a key: report the place only
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        start = getattr(exc, "context_mark", None)
        if mark is not None and start is not None and start.line != mark.line:
            where += f" (in what starts on line {start.line + 1})"
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigurationError(f"{path}: not valid YAML at {where} ({problem}); correct the "
                                 f"syntax there (the text is not shown: it holds keys)") from None
    example = "keys: [{key: sk-..., apps: [general_assistant]}]"
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ConfigurationError(f"{path}: expected a mapping with a 'keys' list, e.g. {example}")
    entries = []
    for index, entry in enumerate(document["keys"]):
        where = f"{path}: keys[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"key", "apps"}:
            raise ConfigurationError(f"{where}: expected exactly 'key' and 'apps', e.g. {example}")
        key, apps = entry["key"], entry["apps"]
        if not isinstance(key, str) or len(key) < 16:
            raise ConfigurationError(f"{where}.key: a key must be a string of at least 16 "
                                     f"characters (generate one with `openssl rand -hex 24`)")
        if not isinstance(apps, list) or not apps or not all(isinstance(a, str) for a in apps):
            raise ConfigurationError(f"{where}.apps: a non-empty list of model ids, or ['*']")
        entries.append((key, frozenset(apps)))
    if len({key for key, _ in entries}) != len(entries):
        raise ConfigurationError(f"{path}: a key is listed twice; give each key one entry")
    return KeyRing(tuple(entries))
