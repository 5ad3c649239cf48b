"""LangChain v1 agent middleware: per-app safety policies around an agent's model calls.

Example:
    >>> from dataclasses import dataclass
    >>> from langchain.agents import create_agent
    >>> from langchain_psa_guard import ChatPSAGuard, PSAGuardMiddleware
    >>> @dataclass
    ... class AppContext:
    ...     app_context: str = "customer_service"
    >>> agent = create_agent(  # doctest: +SKIP
    ...     ChatPSAGuard(), tools=[...], context_schema=AppContext,
    ...     middleware=[PSAGuardMiddleware("policies/customer_service.yaml")])
    >>> agent.invoke({"messages": [("user", "hi")]}, context=AppContext())  # doctest: +SKIP

What it does on every model call of the agent loop (``wrap_model_call``), through the request
pipeline's :meth:`~psa_guard.pipeline.RequestPipeline.prepare` and
:meth:`~psa_guard.pipeline.RequestPipeline.review`:

* scores the last user message once; when the policy's action answers on its own (refuse,
  refuse_with_resources, block, escalate) the model is not called and the policy's message is the
  reply (it has no tool calls, so the agent ends);
* otherwise adds the ``steer`` instruction to the system message when the input check says so,
  and hands a :class:`ChatPSAGuard` model the context and its complete steering (preference,
  beta, hard constraint and the input score for the risk gate), whether or not that model holds
  the policy itself;
* scores the model's reply; a flagged reply is replaced (same message id) by the policy's
  message, and its tool calls are dropped. An output ``steer`` is delivered as is.

Token streaming (``agent.stream(..., stream_mode="messages")``) keeps working: the model call
streams inside the hook, and the checks run before and after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_psa_guard.chat_models import ChatPSAGuard
from psa_guard.generation import Completion
from psa_guard.guard import GuardedReply
from psa_guard.pipeline import Prepared, RequestOptions, RequestPipeline
from psa_guard.policy import Policy

__all__ = ["PSAGuardMiddleware"]


def _text(message: Any) -> str:
    return message.text if hasattr(message, "text") else str(message.content)


class PSAGuardMiddleware(AgentMiddleware):
    """Apply a psa-guard policy to an agent.

    Args:
        policy: a :class:`~psa_guard.policy.Policy`, a shipped policy's name or a policy file
            path (read on first use).
        scorer: moderation scorer (None: the local default scorer).
        context_key: attribute (or key) of the agent's runtime context naming the policy context.
        locale_key: attribute (or key) of the runtime context holding the user's locale.
    """

    def __init__(
        self,
        policy: Policy | str | Path,
        *,
        scorer: Any = None,
        context_key: str = "app_context",
        locale_key: str = "locale",
    ) -> None:
        super().__init__()
        self.pipeline = RequestPipeline(policy=policy, scorer=scorer)
        self.context_key = context_key
        self.locale_key = locale_key

    # ---- helpers -------------------------------------------------------------------------------
    def _lookup(self, runtime: Any, key: str) -> str | None:
        context = getattr(runtime, "context", None)
        if context is None:
            return None
        value = context.get(key) if isinstance(context, dict) else getattr(context, key, None)
        return str(value) if value is not None else None

    def _prepare(self, request: ModelRequest) -> tuple[Prepared | None, ModelRequest]:
        """The input check (once per model call) and the request to send the model."""
        user = next((m for m in reversed(request.state["messages"])
                     if isinstance(m, HumanMessage)), None)
        if user is None:
            return None, request
        options = RequestOptions(context=self._lookup(request.runtime, self.context_key),
                                 locale=self._lookup(request.runtime, self.locale_key))
        prepared = self.pipeline.prepare([{"role": "user", "content": user.text}], options)
        overrides: dict[str, Any] = {}
        if prepared.instruction:
            base = request.system_message.text if request.system_message else ""
            text = f"{base}\n\n{prepared.instruction}" if base else prepared.instruction
            overrides["system_message"] = SystemMessage(text)
        if isinstance(request.model, ChatPSAGuard) and prepared.screen is not None:
            overrides["model_settings"] = {
                **request.model_settings, "context": prepared.screen.resolved.name,
                "locale": prepared.screen.locale, "steering": prepared.steering}
        return prepared, request.override(**overrides) if overrides else request

    def _answer(self, reply: GuardedReply) -> ModelResponse:
        """The policy's message, as the model's response (the model was not called)."""
        return ModelResponse(result=[AIMessage(content=reply.text, response_metadata={
            "psa_guard": reply.metadata(), "context": reply.context})])

    def _review(self, prepared: Prepared | None, response: ModelResponse) -> ModelResponse:
        """The output check of the model's reply; a flagged reply is replaced."""
        messages = list(response.result)
        index = next((i for i in range(len(messages) - 1, -1, -1)
                      if isinstance(messages[i], AIMessage)), None)
        if prepared is None or index is None or not messages[index].text.strip():
            return response
        reply = messages[index]
        guarded = self.pipeline.review(prepared, Completion(reply.text, 0, 0, "stop", 0.0))
        metadata = {**reply.response_metadata, "psa_guard": guarded.metadata(),
                    "context": guarded.context}
        if guarded.delivered:
            messages[index] = reply.model_copy(update={"response_metadata": metadata})
        else:
            messages[index] = AIMessage(id=reply.id, content=guarded.text,
                                        response_metadata=metadata)
        return ModelResponse(result=messages, structured_response=response.structured_response)

    # ---- hooks ---------------------------------------------------------------------------------
    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        prepared, request = self._prepare(request)
        if prepared is not None and prepared.answer is not None:
            return self._answer(prepared.answer)
        return self._review(prepared, handler(request))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        prepared, request = self._prepare(request)
        if prepared is not None and prepared.answer is not None:
            return self._answer(prepared.answer)
        return self._review(prepared, await handler(request))
