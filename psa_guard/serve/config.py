"""What a server serves, and its limits."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from psa_guard.errors import ConfigurationError

__all__ = ["ServeConfig", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeConfig:
    """The applications a server offers and how it protects itself.

    Attributes:
        policies: shipped policy names or policy files; each context of each becomes one model
            id (``general_assistant``, ``mental_health_support/youth``).
        config: the guard configuration (``base``, ``direg``, ``arm``, ``full``, ``zo``).
        model: ``"default"`` (the embedded model), a Hugging Face folder or a ``.gguf`` file.
        threads: torch CPU threads.
        api_keys: a YAML file of keys and the applications each may use (None: no keys).
        max_queue: the most requests in the server at once; more get 429 with ``Retry-After``.
        timeout_s: the most a request may take; a slower one gets 504.
        max_body_bytes: the largest request body; a larger one gets 413.
        default_max_tokens: the reply budget of a request that sets none (capped by the
            context's ``serving.max_tokens``).
        host: the address to bind.
        port: the port to bind.
        allow_public_without_keys: bind a non-loopback address without API keys (refused
            otherwise).
    """

    policies: tuple[str, ...] = ("general_assistant",)
    config: str = "base"
    model: str = "default"
    threads: int = 1
    api_keys: Path | None = None
    max_queue: int = 64
    timeout_s: float = 300.0
    max_body_bytes: int = 1_000_000
    default_max_tokens: int = 256
    host: str = "127.0.0.1"
    port: int = 8000
    allow_public_without_keys: bool = False

    def __post_init__(self) -> None:
        if not self.policies:
            raise ConfigurationError("serve needs at least one --policy (a shipped name or a file)")
        for name, value in (("max_queue", self.max_queue), ("threads", self.threads),
                            ("max_body_bytes", self.max_body_bytes),
                            ("default_max_tokens", self.default_max_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"--{name.replace('_', '-')} must be a positive integer, "
                                         f"got {value!r}")
        if not self.timeout_s > 0:
            raise ConfigurationError(f"--timeout must be a positive number of seconds, got "
                                     f"{self.timeout_s!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"--port must be in 0..65535, got {self.port}")
        if (not is_loopback(self.host) and self.api_keys is None
                and not self.allow_public_without_keys):
            raise ConfigurationError(
                f"refusing to bind {self.host} without API keys: anyone who can reach it could use "
                f"the model; pass --api-keys FILE, bind 127.0.0.1, or say "
                f"--allow-public-without-keys if that is really meant"
            )
