"""Guard any chat model with a psa-guard policy, as an LCEL runnable.

:class:`ChatPSAGuard` steers the local model it runs. When the model being called is another one
(a hosted API, a bigger local model), :func:`guard_chat_model` still applies the policy's input and
output checks around it::

    guarded = guard_chat_model(other_llm, "policies/customer_service.yaml")
    chain = prompt | guarded | StrOutputParser()
    chain.invoke({...}, config={"configurable": {"context": "customer_service"}})
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    convert_to_messages,
)
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from langchain_psa_guard.chat_models import to_chat_dicts
from psa_guard.generation import Completion
from psa_guard.pipeline import RequestOptions, RequestPipeline
from psa_guard.policy import Policy
from psa_guard.steering import Steering

__all__ = ["guard_chat_model"]

_MESSAGE_CLASS: dict[str, type[BaseMessage]] = {
    "system": SystemMessage, "user": HumanMessage, "assistant": AIMessage,
}


def _as_messages(value: LanguageModelInput) -> list[BaseMessage]:
    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, str):
        return convert_to_messages([("human", value)])
    return convert_to_messages(value)


def guard_chat_model(
    model: BaseChatModel | Runnable[Any, Any],
    policy: Policy | str | Path,
    *,
    scorer: Any = None,
    context: str | None = None,
    locale: str | None = None,
) -> Runnable[LanguageModelInput, AIMessage]:
    """Wrap ``model`` so every call passes the policy's input and output checks.

    Args:
        model: any chat model (or runnable returning a message or a string).
        policy: a Policy, a shipped policy's name or a policy file path (read on first call).
        scorer: moderation scorer (None: the local default scorer).
        context: default policy context; ``configurable["context"]`` overrides it per call.
        locale: default locale; ``configurable["locale"]`` overrides it per call.

    Returns:
        A runnable from chat input to an ``AIMessage`` whose ``response_metadata["psa_guard"]``
        lists the checks and actions.
    """
    pipeline = RequestPipeline(policy=policy, scorer=scorer)

    def call(value: LanguageModelInput, config: RunnableConfig) -> AIMessage:
        configurable = config.get("configurable") or {}

        def generate(prepared: list[dict[str, str]], _: Steering | None) -> Completion:
            start = time.perf_counter()
            reply = model.invoke(
                [_MESSAGE_CLASS.get(m["role"], HumanMessage)(m["content"]) for m in prepared],
                config,
            )
            text = reply.text if isinstance(reply, BaseMessage) else str(reply)
            return Completion(text, 0, 0, "stop", time.perf_counter() - start)

        options = RequestOptions(context=configurable.get("context", context),
                                 locale=configurable.get("locale", locale))
        result = pipeline.run(to_chat_dicts(_as_messages(value)), options, generate)
        return AIMessage(content=result.text, response_metadata={"psa_guard": result.metadata(),
                                                                 "context": result.context})

    return RunnableLambda(call, name="PSAGuardPolicy")
