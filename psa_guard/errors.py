"""Exception hierarchy of psa-guard.

Every error raised on purpose by the library derives from :class:`PSAGuardError` and also from the
builtin that matches its family, so callers may catch either::

    PSAGuardError (Exception)
    ├── ConfigurationError (ValueError)      bad argument or setting (names the argument and the fix)
    │   ├── InvalidMessagesError             empty list, unknown role, non-text content
    │   ├── PromptTooLongError               prompt does not fit the model's context window
    │   └── UnknownConfigError               a configuration name that is not registered
    ├── ModelError (OSError)
    │   ├── ModelNotFoundError (+ FileNotFoundError)   missing model folder or file
    │   ├── ModelLoadError                   corrupted or unreadable weights (safetensors, GGUF)
    │   └── SetupError                       the embedded default model could not be obtained
    │       └── ChecksumError                a file does not match its recorded checksum
    ├── DataError (ValueError)
    │   └── InputLineError                   one bad JSONL line (carries path and line number)
    ├── PolicyError (ValueError)             bad policy file or unknown context (file, line, fix)
    ├── HarmVectorError (ValueError)         a DiReg harm vector that does not fit the model, or a
    │                                        patch that would produce NaN/inf
    ├── ArmAdapterError (ValueError)         a Pv-Arm adapter that is missing, damaged, or made for
    │                                        another base model
    └── ModerationUnavailableError (RuntimeError)   a moderation scorer could not answer (reason)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "PSAGuardError",
    "ConfigurationError",
    "InvalidMessagesError",
    "PromptTooLongError",
    "UnknownConfigError",
    "ModelError",
    "ModelNotFoundError",
    "ModelLoadError",
    "SetupError",
    "ChecksumError",
    "DataError",
    "InputLineError",
    "PolicyError",
    "HarmVectorError",
    "ArmAdapterError",
    "ModerationUnavailableError",
]


class PSAGuardError(Exception):
    """Root of every error psa-guard raises on purpose."""


class ConfigurationError(PSAGuardError, ValueError):
    """An argument or setting is invalid; the message names it and says how to fix it."""


class InvalidMessagesError(ConfigurationError):
    """A chat message list cannot be turned into a prompt."""


class PromptTooLongError(ConfigurationError):
    """The prompt alone does not fit in the model's context window."""


class UnknownConfigError(ConfigurationError):
    """A named configuration (for example ``--config``) is not registered."""


class ModelError(PSAGuardError, OSError):
    """A model could not be found, read or prepared."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model folder or file does not exist."""


class ModelLoadError(ModelError):
    """Model weights exist but are corrupted or unreadable."""


class SetupError(ModelError):
    """The embedded default model could not be obtained or converted."""


class ChecksumError(SetupError):
    """A file does not match the checksum recorded for it."""


class DataError(PSAGuardError, ValueError):
    """Input data is malformed."""


class InputLineError(DataError):
    """One line of a JSONL input is malformed.

    Attributes:
        path: the file being read.
        line_number: 1-based line number.
    """

    def __init__(self, path: str, line_number: int, reason: str) -> None:
        self.path = path
        self.line_number = line_number
        self.reason = reason
        super().__init__(f"{path}:{line_number}: {reason}")


class PolicyError(PSAGuardError, ValueError):
    """A policy file or a context lookup is invalid.

    The message names the file, the line or key, and the fix; one error may report several problems.

    Attributes:
        issues: the individual problems (:class:`psa_guard.policy.PolicyIssue`), empty when the
            error is not about a file's content (for example an unknown context name).
    """

    def __init__(self, message: str, issues: Sequence[object] = ()) -> None:
        self.issues = tuple(issues)
        super().__init__(message)


class HarmVectorError(PSAGuardError, ValueError):
    """A DiReg harm vector cannot be applied: unreadable file, wrong base model (checksum), shapes
    that do not match the model, or a patch that would produce NaN/inf."""


class ArmAdapterError(PSAGuardError, ValueError):
    """A Pv-Arm adapter cannot be used: missing or damaged file, another base model (checksum), or
    shapes that do not match the model."""


class ModerationUnavailableError(PSAGuardError, RuntimeError):
    """A moderation scorer could not answer (server down, timeouts, malformed replies, ...).

    Scorers raise it instead of guessing a score; whether to fail closed is the caller's policy.

    Attributes:
        reason: a short account of why, for logs and reports (e.g. ``"HTTP 500 after 3 attempts"``).
    """

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or f"moderation unavailable: {reason}")
