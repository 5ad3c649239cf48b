"""LangChain integration of psa-guard.

* :class:`ChatPSAGuard`: a chat model over a local Hugging Face model, with policies and tools.
* :class:`PSAGuardMiddleware`: LangChain v1 agent middleware applying a policy.
* :func:`guard_chat_model`: the policy's checks around any other chat model, as a runnable.
"""

from __future__ import annotations

from langchain_psa_guard.chat_models import ChatPSAGuard
from langchain_psa_guard.middleware import PSAGuardMiddleware
from langchain_psa_guard.runnables import guard_chat_model

__all__ = ["ChatPSAGuard", "PSAGuardMiddleware", "guard_chat_model"]
