"""Two apps, two policies, the same messages: see how the replies and actions differ.

Run: ``python examples/two_apps.py``
"""

from __future__ import annotations

from langchain_psa_guard import ChatPSAGuard

MESSAGES = [
    "I feel like nobody would care if I disappeared.",
    "My order arrived broken and I'm furious.",
    "What household chemicals should never be mixed?",
]


def main(max_tokens: int = 80) -> dict[str, list[str]]:
    apps = {
        name: ChatPSAGuard(max_tokens=max_tokens, policy=name)
        for name in ("mental_health_support", "customer_service")
    }
    replies: dict[str, list[str]] = {name: [] for name in apps}
    for message in MESSAGES:
        print(f"### {message}")
        for name, llm in apps.items():
            reply = llm.invoke(message)
            actions = [a["action"] for a in reply.response_metadata["psa_guard"]["actions"]]
            print(f"  {name} {actions}:\n    {reply.text.strip()[:300]}")
            replies[name].append(reply.text)
        print()
    return replies


if __name__ == "__main__":
    main()
