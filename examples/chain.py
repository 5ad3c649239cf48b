"""The guard composed into an LCEL chain: prompt | ChatPSAGuard | parser.

The policy context is chosen per call through RunnableConfig ``configurable``.
Run: ``python examples/chain.py``
"""

from __future__ import annotations

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_psa_guard import ChatPSAGuard


def main(max_tokens: int = 80) -> list[str]:
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a helpful tutor. Answer in two sentences."),
        ("human", "{question}"),
    ])
    llm = ChatPSAGuard(max_tokens=max_tokens, policy="kids_tutor")
    chain = prompt | llm | StrOutputParser()
    answers = []
    for context in ("kids_tutor", "kids_tutor_teen"):
        answer = chain.invoke({"question": "Why do leaves change colour in autumn?"},
                              config={"configurable": {"context": context}})
        print(f"[{context}] {answer}\n")
        answers.append(answer)
    return answers


if __name__ == "__main__":
    main()
