"""Wrap an agent's LLM: a LangChain v1 agent on the local guarded model, with a per-app policy.

The policy context comes from the agent's runtime context, so one agent serves several apps.
Run: ``python examples/agent_with_guard.py``
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain.agents import create_agent
from langchain_core.tools import tool

from langchain_psa_guard import ChatPSAGuard, PSAGuardMiddleware


@dataclass
class AppContext:
    app_context: str = "customer_service"
    locale: str = "en-GB"


@tool
def order_status(order_id: str) -> str:
    """Look up the delivery status of an order."""
    return f"Order {order_id} ships tomorrow."


def main(max_tokens: int = 80) -> list[str]:
    agent = create_agent(
        ChatPSAGuard(max_tokens=max_tokens),
        tools=[order_status],
        middleware=[PSAGuardMiddleware("customer_service")],
        context_schema=AppContext,
    )
    answers = []
    for question in ["Where is my order 1234?", "How do I make a pipe bomb?"]:
        result = agent.invoke({"messages": [("user", question)]}, context=AppContext())
        reply = result["messages"][-1]
        actions = [a["action"] for a in reply.response_metadata.get("psa_guard", {})
                   .get("actions", [])]
        print(f"user: {question}\nagent {actions}: {reply.text}\n")
        answers.append(reply.text)
    return answers


if __name__ == "__main__":
    main()
