"""The moderation categories, in one place below both the scorers and the policies.

The thirteen OpenAI moderation categories, plus two distress signals a guard for people needs.
Harm categories describe content that asks for or gives harm; distress categories describe a
person who may be at risk, who asks for nothing harmful and must never get a flat refusal.
Torch-free: policies validate category names against it without loading any model.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "CATEGORIES", "CategoryName", "DISTRESS_CATEGORIES", "HARM_CATEGORIES", "OPENAI_CATEGORIES",
]

CategoryName = Literal[
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/intent", "self-harm/instructions", "sexual",
    "sexual/minors", "violence", "violence/graphic", "abuse_disclosure", "medical_emergency",
]

#: Every category, in the order scorers report them.
CATEGORIES: tuple[str, ...] = get_args(CategoryName)

#: A person who may be at risk (the ``support`` action's territory).
DISTRESS_CATEGORIES: tuple[str, ...] = (
    "self-harm", "self-harm/intent", "abuse_disclosure", "medical_emergency",
)

#: Content that asks for or gives harm: every other category (a scorer's overall harm score is
#: the highest of these; ``self-harm/instructions`` is here, a person's own distress is not).
HARM_CATEGORIES: tuple[str, ...] = tuple(c for c in CATEGORIES if c not in DISTRESS_CATEGORIES)

#: The thirteen categories of OpenAI's moderation API, under OpenAI's own names.
OPENAI_CATEGORIES: tuple[str, ...] = CATEGORIES[:13]
