"""Stream a guarded reply token by token; the policy's output check runs on windows of text.

Run: ``python examples/streaming.py``
"""

from __future__ import annotations

from langchain_psa_guard import ChatPSAGuard


def main(max_tokens: int = 80) -> list[str]:
    llm = ChatPSAGuard(max_tokens=max_tokens, policy="general_assistant")
    pieces = []
    for chunk in llm.stream("Give me three tips for sleeping better."):
        print(chunk.text, end="", flush=True)
        pieces.append(chunk.text)
        if chunk.chunk_position == "last":
            print(f"\n\nactions: {chunk.response_metadata['psa_guard']['actions']}")
    return pieces


if __name__ == "__main__":
    main()
