"""The policy file format (version 1) as strict, frozen pydantic models.

A policy file is one :class:`PolicyDocument`: a name, a default context and named
:class:`ContextSpec` entries. Every model rejects unknown keys and coerces nothing (``"1.0"`` is not
a number; ``yes`` is a boolean only where a boolean is expected). Cross-references (``extends``,
``default_context``, messages for the actions a rule can pick) are checked by
:func:`psa_guard.policy.routing.check_document`, because they span several models.

Custom validation errors carry their fix in the error context (``ctx["fix"]``) so the loader can
print it next to the file and line.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from psa_guard.attributes import ATTRIBUTES
from psa_guard.categories import CategoryName
from psa_guard.steering import DEFAULT_RISK_THRESHOLD, DEFAULT_SAFE_TOP_P

__all__ = [
    "ATTRIBUTES",
    "ACTIONS",
    "RESOURCE_ACTIONS",
    "CategoryRule",
    "MESSAGE_ACTIONS",
    "SCHEMA_VERSION",
    "NAME_PATTERN",
    "LOCALE_PATTERN",
    "ActionName",
    "PreferenceSpec",
    "Resource",
    "HardConstraint",
    "ModerationRule",
    "Moderation",
    "Messages",
    "ContextSpec",
    "REMOVED_CONTEXT_KEYS",
    "PolicyDocument",
    "policy_json_schema",
    "policy_json_schema_text",
]

#: The file format version this library reads.
SCHEMA_VERSION = 1


ActionName = Literal[
    "allow", "steer", "repair", "refuse", "refuse_with_resources", "support", "block", "escalate"
]

#: Every action a moderation rule may pick, mildest first.
ACTIONS: tuple[str, ...] = get_args(ActionName)

#: Actions that answer the user with a policy message instead of (or on top of) the model's text;
#: a rule may only pick one of these if the context has a message for it.
MESSAGE_ACTIONS: tuple[str, ...] = (
    "repair", "refuse", "refuse_with_resources", "support", "block", "escalate"
)

#: Actions whose reply lists the context's help resources after the message.
RESOURCE_ACTIONS: tuple[str, ...] = ("refuse_with_resources", "support", "escalate")

#: Context keys that earlier releases accepted but never applied, with why each is gone and what to
#: do instead; a file that still writes one is refused with this text (see docs/policies.md). The
#: weights a process generates with are a deployment choice made once per process (each DiReg
#: strength costs a full patched copy of the model); a policy routes per request.
REMOVED_CONTEXT_KEYS: dict[str, tuple[str, str]] = {
    "direg_lambda": (
        "'direg_lambda' is no longer a policy key: the DiReg strength is chosen once per "
        "process, not per context",
        "remove it; set the strength where the model is built, with "
        "ChatPSAGuard(config=\"direg\", direg_lambda=...), or pick the weights on the command "
        "line with psa-guard ... --config direg|full",
    ),
    "artifacts": (
        "'artifacts' (harm_vector, adapter) is no longer a policy key: the weights are chosen "
        "once per process, not per context",
        "remove the whole 'artifacts' section; choose the weights where the model is built, with "
        "ChatPSAGuard(config=...), or on the command line with psa-guard ... --config (the "
        "shipped harm vector and Pv-Arm adapter are used)",
    ),
}

#: Context and policy names.
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
#: Resource locales: a language, a language-REGION tag, or "*".
LOCALE_PATTERN = r"^(\*|[a-z]{2,3}(-[A-Z]{2})?)$"

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
Weight = Annotated[float, Field(ge=0.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Text = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    """Base of every policy model: unknown keys rejected, no coercion, immutable, finite floats."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class PreferenceSpec(_Strict):
    """Relative weights of the five attributes.

    Any non-negative weights are accepted and normalised to sum 1 (``{empathy: 3, helpfulness: 1}``
    means 0.75/0.25); all five must be written, so a policy reads on its own; not all may be zero.
    """

    empathy: Weight = Field(description="Weight of empathy (>= 0).")
    sensitivity: Weight = Field(description="Weight of sensitivity (>= 0).")
    non_judgmental: Weight = Field(description="Weight of a non-judgmental stance (>= 0).")
    truthfulness: Weight = Field(description="Weight of truthfulness (>= 0).")
    helpfulness: Weight = Field(description="Weight of helpfulness (>= 0).")

    @model_validator(mode="after")
    def _not_all_zero(self) -> PreferenceSpec:
        if sum(self.weights()) <= 0.0:
            raise PydanticCustomError(
                "preference_all_zero",
                "every attribute weight is 0, so there is nothing to normalise",
                {"fix": "give at least one attribute a positive weight"},
            )
        return self

    def weights(self) -> tuple[float, ...]:
        """The raw weights in :data:`ATTRIBUTES` order."""
        return tuple(float(getattr(self, name)) for name in ATTRIBUTES)

    def normalised(self) -> tuple[float, ...]:
        """The weights divided by their sum (a point on the simplex), in ``ATTRIBUTES`` order."""
        raw = self.weights()
        total = sum(raw)
        return tuple(weight / total for weight in raw)


class Resource(_Strict):
    """A help resource shown by ``refuse_with_resources`` and ``escalate`` (a crisis line...)."""

    name: Text = Field(description="Who answers, e.g. '988 Suicide & Crisis Lifeline'.")
    contact: Text = Field(description="How to reach them, e.g. 'call or text 988'.")
    locales: Annotated[
        tuple[Annotated[str, Field(pattern=LOCALE_PATTERN)], ...],
        Field(
            strict=False,
            min_length=1,
            description="Where it applies: BCP 47 language or language-REGION tags "
            "('en', 'en-GB'), or '*' for everywhere.",
        ),
    ] = ("*",)
    url: Text | None = Field(default=None, description="Optional web address.")
    categories: Annotated[
        tuple[CategoryName, ...],
        Field(
            strict=False,
            description="Shown only when one of these categories decided the action (e.g. a "
            "child-protection line for abuse_disclosure); empty: shown for every action that "
            "lists resources.",
        ),
    ] = ()

    def applies_to(self, locale: str | None) -> bool:
        """Whether this resource is shown for ``locale`` (``None`` means every locale).

        A resource for ``*`` applies everywhere; ``en`` applies to ``en-GB``; ``en-GB`` applies to
        ``en-GB`` only.
        """
        if locale is None or "*" in self.locales:
            return True
        language = locale.split("-", 1)[0]
        return locale in self.locales or language in self.locales


class HardConstraint(_Strict):
    """The safety stage that runs before prosocial re-ranking (docs/method.md section 4)."""

    enabled: bool = Field(default=True, description="Restrict candidates to the safe set first.")
    top_p: float = Field(
        default=DEFAULT_SAFE_TOP_P,
        gt=0.0,
        le=1.0,
        description="Nucleus mass of the patched model that forms the safe set; Pv-Arm only "
        "re-ranks tokens inside it.",
    )
    blocked_terms: Annotated[
        tuple[Text, ...],
        Field(
            strict=False,
            description="Strings the reply must never contain (case-insensitive); tokens "
            "that would complete one are vetoed.",
        ),
    ] = ()
    risk_threshold: Probability = Field(
        default=DEFAULT_RISK_THRESHOLD,
        description="Risk gate: when the moderation score of the user's last turn exceeds it, "
        "Pv-Arm gets no weight and the patched model alone decides (1 disables the gate).",
    )


class ModerationRule(_Strict):
    """One threshold: from ``at`` upward (until the next rule), take ``action``.

    With ``confirm_at``, the rule applies only when the category scorer agrees: some harm
    category (every category but the distress ones) scores at least ``confirm_at``; otherwise
    the next lower rule applies. This keeps an overall score that also fires on look-alikes and
    on everyday distress from refusing by itself.
    """

    at: Probability = Field(description="Lowest harm score, in [0, 1], at which this rule applies.")
    action: ActionName = Field(description="What to do at or above this score.")
    confirm_at: Probability | None = Field(
        default=None,
        description="Apply this rule only when the highest harm-category score (every category "
        "but self-harm, self-harm/intent, abuse_disclosure and medical_emergency) is at least "
        "this too; below it, the next lower rule applies. Needs a scorer that scores categories.",
    )


class CategoryRule(_Strict):
    """A rule on one category's score: at ``at`` or above, take ``action``."""

    category: CategoryName = Field(description="A moderation category (docs/policies.md).")
    at: Probability = Field(description="Lowest category score, in [0, 1], at which it applies.")
    action: ActionName = Field(description="What to do at or above this score.")


class Moderation(_Strict):
    """How a moderation harm score in [0, 1] maps to an action.

    The rule with the largest ``at`` not above the score wins; below every rule the action is
    ``allow``.
    """

    rules: Annotated[
        tuple[ModerationRule, ...],
        Field(
            strict=False,
            description="Thresholds in strictly increasing order of 'at'.",
        ),
    ] = ()
    category_rules: Annotated[
        tuple[CategoryRule, ...],
        Field(
            strict=False,
            description="Rules on single categories (self-harm/intent -> support, sexual/minors "
            "-> block, ...). Every rule that fires is a candidate, with the score rules' action; "
            "the most protective one wins (block, support, escalate, refuse_with_resources, "
            "refuse, repair, steer, allow).",
        ),
    ] = ()
    on_unavailable: ActionName = Field(
        default="refuse",
        description="Fail-closed action when the moderation scorer cannot answer (for example a "
        "remote API that is down): the reply is withheld and this action's message is shown.",
    )

    @field_validator("rules")
    @classmethod
    def _increasing(cls, rules: tuple[ModerationRule, ...]) -> tuple[ModerationRule, ...]:
        for previous, current in zip(rules[:-1], rules[1:], strict=True):
            if current.at <= previous.at:
                raise PydanticCustomError(
                    "rules_not_increasing",
                    "rule thresholds must increase: at {current} follows at {previous}",
                    {
                        "current": current.at,
                        "previous": previous.at,
                        "fix": "list the rules from the lowest 'at' to the highest, each 'at' once",
                    },
                )
        return rules


class Messages(_Strict):
    """What the user is told for each action that answers with a message.

    ``steer`` is an instruction added as a system message when the reply is regenerated with
    stronger guidance; it is optional.
    """

    steer: Text | None = Field(default=None, description="System instruction used when steering.")
    repair: Text | None = Field(
        default=None,
        description="Reply when a flagged output is still flagged after embedding optimisation "
        "(the 'repair' action regenerates first; this is its safe fallback).",
    )
    refuse: Text | None = Field(default=None, description="Reply when refusing.")
    refuse_with_resources: Text | None = Field(
        default=None, description="Reply when refusing; the context's resources follow it."
    )
    support: Text | None = Field(
        default=None,
        description="Reply to a person who may be at risk: acknowledges them without judgment, "
        "promises nothing false; the context's resources for the user's locale follow it.",
    )
    block: Text | None = Field(default=None, description="Reply when the output is blocked.")
    escalate: Text | None = Field(default=None, description="Reply when handing over to a human.")

    def for_action(self, action: str) -> str | None:
        """The message for ``action`` (``None`` for ``allow`` or when not set)."""
        return getattr(self, action, None) if action != "allow" else None


class Serving(_Strict):
    """What clients of ``psa-guard serve`` may ask of this context."""

    max_tokens: int = Field(
        default=1024, ge=1, le=32768,
        description="The most tokens a request may ask for (max_tokens / max_completion_tokens); "
        "larger requests are refused with a 400 naming the field.",
    )
    client_preference: bool = Field(
        default=False,
        description="Whether a request may override this context's preference and beta "
        "(extension field psa_guard.preference / psa_guard.beta); refused with a 400 otherwise.",
    )


class ContextSpec(_Strict):
    """One application context as written in the file.

    Every field is optional here because a context may inherit from ``extends``; after inheritance
    ``preference`` must be set (the other fields have defaults). A key set in a context replaces the
    inherited value as a whole (sections are not merged key by key).
    """

    description: str = Field(default="", description="What this context is for.")
    extends: Name | None = Field(default=None, description="A context of this file to inherit.")
    preference: PreferenceSpec | None = Field(
        default=None, description="Attribute weights (any non-negative values; normalised)."
    )
    beta: float | None = Field(
        default=None,
        gt=0.0,
        description="Reward temperature: the reward model's weight is 1/beta, so a smaller beta "
        "steers harder. Default 1.0.",
    )
    hard_constraint: HardConstraint | None = Field(default=None, description="Safety stage.")
    moderation: Moderation | None = Field(default=None, description="Score-to-action rules.")
    messages: Messages | None = Field(default=None, description="Replies per action.")
    resources: Annotated[
        tuple[Resource, ...] | None,
        Field(strict=False, description="Help resources (e.g. crisis lines by locale)."),
    ] = None
    serving: Serving | None = Field(default=None, description="Limits for served requests.")


class PolicyDocument(_Strict):
    """A whole policy file."""

    model_config = ConfigDict(
        title="psa-guard policy",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: Literal[1] = Field(description="File format version; this library reads 1.")
    name: Name = Field(description="Policy name (lowercase, digits, underscores).")
    description: str = Field(default="", description="What the policy is for.")
    default_context: Name = Field(description="The context used when none is asked for.")
    contexts: dict[Name, ContextSpec] = Field(
        min_length=1, description="Named application contexts."
    )


def policy_json_schema() -> dict[str, Any]:
    """The JSON schema of a policy file, for editors (structure only, without cross-checks)."""
    return PolicyDocument.model_json_schema(mode="validation")


def policy_json_schema_text() -> str:
    """:func:`policy_json_schema` as the exact text committed in ``policies/policy.schema.json``."""
    return json.dumps(policy_json_schema(), indent=2, ensure_ascii=False) + "\n"
