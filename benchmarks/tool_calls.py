"""Tool-call validity of ChatPSAGuard on the embedded model.

A call counts as valid when it parses, names the expected tool, has every required argument and
the right top-level JSON types (see ``psa_guard.tools.parse_tool_calls``). Two modes:

* ``auto``: tools described in the system prompt, the model decides (tool_choice None);
* ``forced``: ``tool_choice=<expected tool>``, the call is prefilled up to the first argument.

Usage: python benchmarks/tool_calls.py [--max-tokens 48]
"""

from __future__ import annotations

import argparse

from langchain_core.tools import tool

from langchain_psa_guard import ChatPSAGuard


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return "sunny"


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def search_web(query: str) -> str:
    """Search the web for a query."""
    return "results"


CASES = [
    ("What's the weather in Paris?", "get_weather"),
    ("Is it raining in London right now?", "get_weather"),
    ("Tell me the weather for Tokyo.", "get_weather"),
    ("How hot is it in Cairo today?", "get_weather"),
    ("Weather forecast for Berlin please.", "get_weather"),
    ("What is 12 times 7?", "multiply"),
    ("Multiply 3 by 45.", "multiply"),
    ("Compute 8 * 9.", "multiply"),
    ("What's the product of 6 and 11?", "multiply"),
    ("Calculate 13 multiplied by 2.", "multiply"),
    ("Search the web for the latest Python release.", "search_web"),
    ("Find news about the Mars rover.", "search_web"),
    ("Look up who won the 2022 World Cup.", "search_web"),
    ("Search for vegan lasagna recipes.", "search_web"),
    ("Find the population of Canada online.", "search_web"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    llm = ChatPSAGuard(max_tokens=args.max_tokens)
    tools = [get_weather, multiply, search_web]
    for mode in ("auto", "forced"):
        valid = 0
        for question, expected in CASES:
            bound = llm.bind_tools(tools, tool_choice=expected if mode == "forced" else None)
            message = bound.invoke(question)
            ok = any(call["name"] == expected for call in message.tool_calls)
            valid += ok
        print(f"{mode:>6}: {valid}/{len(CASES)} valid tool calls ({100 * valid / len(CASES):.0f}%)")


if __name__ == "__main__":
    main()
