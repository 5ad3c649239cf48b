"""Talk to ``psa-guard serve`` with the clients you already use: the openai SDK and LangChain.

Start a server first (another terminal)::

    psa-guard serve --policy mental_health_support --policy customer_service

Run: ``python examples/serve_client.py [--url http://127.0.0.1:8000/v1] [--key KEY]``
"""

from __future__ import annotations

import argparse
from typing import Any


def main(url: str = "http://127.0.0.1:8000/v1", key: str = "none",
         max_tokens: int = 40) -> dict[str, Any]:
    from langchain_openai import ChatOpenAI
    from openai import OpenAI

    client = OpenAI(base_url=url, api_key=key)
    models = [m.id for m in client.models.list()]
    print("models:", ", ".join(models))

    # One application per model id; the guard's decision comes back in `psa_guard`.
    reply = client.chat.completions.create(
        model="mental_health_support",
        messages=[{"role": "user", "content": "I feel like nobody would care if I disappeared."}],
        max_tokens=max_tokens, extra_body={"psa_guard": {"locale": "en-GB"}})
    print(reply.choices[0].message.content)
    print("actions:", [a["action"] for a in reply.model_extra["psa_guard"]["actions"]])

    # Streaming: text arrives only after the output check passed it.
    for chunk in client.chat.completions.create(
            model="customer_service", stream=True, max_tokens=max_tokens,
            messages=[{"role": "user", "content": "My order arrived broken. What can I do?"}]):
        print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()

    # LangChain's ChatOpenAI, unchanged, pointed at the server.
    llm = ChatOpenAI(base_url=url, api_key=key, model="customer_service", max_tokens=max_tokens,
                     temperature=0)
    answer = llm.invoke("How do I return a pair of shoes?")
    print(answer.content)
    return {"models": models, "reply": reply.choices[0].message.content,
            "langchain": answer.content}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--key", default="none", help="an API key when the server has --api-keys")
    args = parser.parse_args()
    main(args.url, args.key)
