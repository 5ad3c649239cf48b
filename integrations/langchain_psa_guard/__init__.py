"""LangChain integration of psa-guard: ``from langchain_psa_guard import ChatPSAGuard``."""

from __future__ import annotations

from langchain_psa_guard.chat_models import ChatPSAGuard

__all__ = ["ChatPSAGuard"]
