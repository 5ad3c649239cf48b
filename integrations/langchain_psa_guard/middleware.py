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

What it does on every model call of the agent loop:

* ``before_model``: scores the last user message; when the policy's action answers on its own
  (refuse, refuse_with_resources, block, escalate) the agent ends with the policy's message
  (``jump_to: end``) and the model is not called.
* ``wrap_model_call``: adds the ``steer`` instruction to the system message when the input check
  says so, and passes the context (so its preference vector) to a :class:`ChatPSAGuard` model.
* ``after_model``: scores the model's reply; a flagged reply is replaced (same message id) by the
  policy's message, and its tool calls are dropped. An output ``steer`` is delivered as is.

Token streaming (``agent.stream(..., stream_mode="messages")``) keeps working: the hooks run
before and after the streamed model call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse, hook_config
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_psa_guard.chat_models import ChatPSAGuard
from psa_guard.guard import GuardStep, PolicyGuard
from psa_guard.policy import Policy
from psa_guard.policy.routing import Decision, ResolvedContext

__all__ = ["PSAGuardMiddleware"]


def _text(message: Any) -> str:
    return message.text if hasattr(message, "text") else str(message.content)


class PSAGuardMiddleware(AgentMiddleware):
    """Apply a psa-guard policy to an agent.

    Args:
        policy: a :class:`~psa_guard.policy.Policy` or a policy file path (read on first use).
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
        self._policy_source = policy
        self._scorer = scorer
        self._guard: PolicyGuard | None = None
        self.context_key = context_key
        self.locale_key = locale_key

    # ---- helpers -------------------------------------------------------------------------------
    @property
    def guard(self) -> PolicyGuard:
        if self._guard is None:
            policy = self._policy_source if isinstance(self._policy_source, Policy) else (
                Policy.from_path(self._policy_source))
            self._guard = PolicyGuard(policy, self._scorer)
        return self._guard

    def _lookup(self, runtime: Any, key: str) -> str | None:
        context = getattr(runtime, "context", None)
        if context is None:
            return None
        value = context.get(key) if isinstance(context, dict) else getattr(context, key, None)
        return str(value) if value is not None else None

    def _resolve(self, runtime: Any) -> tuple[ResolvedContext, str | None]:
        return (self.guard.resolve(self._lookup(runtime, self.context_key)),
                self._lookup(runtime, self.locale_key))

    def _input_decision(self, state: Any, runtime: Any) -> tuple[Decision, GuardStep] | None:
        user = next((m for m in reversed(state["messages"]) if isinstance(m, HumanMessage)), None)
        if user is None:
            return None
        resolved, locale = self._resolve(runtime)
        return self.guard.check(resolved, "input", _text(user), locale)

    # ---- hooks ---------------------------------------------------------------------------------
    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        checked = self._input_decision(state, runtime)
        if checked is None or checked[0].produces_response:
            return None
        decision, step = checked
        reply = AIMessage(
            content=decision.render(),
            response_metadata={"psa_guard": {"context": decision.context,
                                             "actions": [step.as_dict()], "generated": False}},
        )
        return {"messages": [reply], "jump_to": "end"}

    def _prepare(self, request: ModelRequest) -> ModelRequest:
        checked = self._input_decision(request.state, request.runtime)
        resolved, locale = self._resolve(request.runtime)
        overrides: dict[str, Any] = {}
        if checked is not None and checked[0].action == "steer" and checked[0].message:
            base = request.system_message.text if request.system_message else ""
            text = f"{base}\n\n{checked[0].message}" if base else checked[0].message
            overrides["system_message"] = SystemMessage(text)
        if isinstance(request.model, ChatPSAGuard):
            overrides["model_settings"] = {**request.model_settings, "context": resolved.name,
                                           "locale": locale}
        return request.override(**overrides) if overrides else request

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        return handler(self._prepare(request))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        return await handler(self._prepare(request))

    def after_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        reply = state["messages"][-1] if state["messages"] else None
        if not isinstance(reply, AIMessage) or not _text(reply).strip():
            return None
        resolved, locale = self._resolve(runtime)
        decision, step = self.guard.check(resolved, "output", _text(reply), locale)
        metadata = {**reply.response_metadata,
                    "psa_guard": {"context": resolved.name, "actions": [step.as_dict()],
                                  "generated": True}}
        if decision.produces_response:
            return {"messages": [reply.model_copy(update={"response_metadata": metadata})]}
        replaced = AIMessage(id=reply.id, content=decision.render(), response_metadata=metadata)
        return {"messages": [replaced]}
