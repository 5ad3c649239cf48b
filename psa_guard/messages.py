"""Chat messages: validation and normalisation before the chat template is applied.

A message is a mapping with ``role`` and ``content``. :func:`normalize_messages` checks the list and
merges consecutive turns of the same role (joined by a blank line), which chat templates such as
ChatML otherwise render as separate, confusing turns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psa_guard.errors import InvalidMessagesError

__all__ = ["ROLES", "Message", "last_user_text", "normalize_messages"]

ROLES = ("system", "user", "assistant", "tool")

Message = dict[str, str]


def normalize_messages(messages: Sequence[Mapping[str, Any]] | str) -> list[Message]:
    """Validate chat messages and merge consecutive same-role turns.

    Args:
        messages: a list of ``{"role": ..., "content": ...}`` mappings, or one user string.

    Returns:
        A new list of ``{"role", "content"}`` dicts.

    Raises:
        InvalidMessagesError: not a list, empty list, a non-mapping item, an unknown role, non-text
            content, or no user or system turn at all.
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, Sequence) or isinstance(messages, (bytes, bytearray)):
        raise InvalidMessagesError(
            f"messages must be a list of {{'role', 'content'}} mappings (or one user string), "
            f"got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidMessagesError("messages is empty; pass at least one user message")
    merged: list[Message] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidMessagesError(
                f"messages[{index}] is a {type(message).__name__}; each message must be a mapping "
                f"with 'role' and 'content'"
            )
        role = message.get("role")
        if role not in ROLES:
            raise InvalidMessagesError(
                f"messages[{index}] has unknown role {role!r}; use one of {', '.join(ROLES)}"
            )
        content = message.get("content")
        if not isinstance(content, str):
            raise InvalidMessagesError(
                f"messages[{index}] content is {type(content).__name__}, not text; this model "
                f"accepts text only (send images and other media elsewhere)"
            )
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"] = f"{merged[-1]['content']}\n\n{content}"
        else:
            merged.append({"role": role, "content": content})
    if not any(m["role"] in ("user", "system") for m in merged):
        raise InvalidMessagesError("messages has no user or system turn; add a user message")
    return merged


def last_user_text(messages: Sequence[Message]) -> str:
    """The text of the last user turn (empty if there is none)."""
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
