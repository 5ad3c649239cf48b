"""Policies: declarative YAML files that map an application context to its alignment settings.

A policy file names contexts (``kids_tutor``, ``mental_health_support``, ...); each sets a
preference vector over the five attributes, the guidance strength ``beta``, the hard constraint,
moderation rules that map a harm score to an action, and the messages and resources (crisis lines
by locale) those actions use. A policy routes each request; the weights a process generates with
(DiReg strength, adapter) are chosen where the model is built, not here. See ``docs/policies.md``.

Typical use::

    policy = load_policy("mental_health_support")   # a shipped policy by name, or a file path
    context = policy.resolve(None)          # the default context
    decision = context.decide(0.8, locale="en-GB")
    decision.action, decision.render()
"""

from __future__ import annotations

from psa_guard.errors import PolicyError
from psa_guard.policy.issues import Issue, PolicyIssue, format_issues
from psa_guard.policy.loader import parse_document
from psa_guard.policy.policy import Policy, load_policies
from psa_guard.policy.routing import (
    DEFAULT_BETA,
    Decision,
    ResolvedContext,
    check_document,
    resolve_contexts,
)
from psa_guard.policy.schema import (
    ACTIONS,
    ATTRIBUTES,
    MESSAGE_ACTIONS,
    SCHEMA_VERSION,
    ActionName,
    CategoryRule,
    ContextSpec,
    HardConstraint,
    Messages,
    Moderation,
    ModerationRule,
    PolicyDocument,
    PreferenceSpec,
    Resource,
    Serving,
    policy_json_schema,
    policy_json_schema_text,
)
from psa_guard.policy.shipped import load_policy, shipped_policy_names

__all__ = [
    "ACTIONS",
    "ATTRIBUTES",
    "ActionName",
    "CategoryRule",
    "ContextSpec",
    "DEFAULT_BETA",
    "Decision",
    "HardConstraint",
    "Issue",
    "MESSAGE_ACTIONS",
    "Messages",
    "Moderation",
    "ModerationRule",
    "Policy",
    "PolicyDocument",
    "PolicyError",
    "PolicyIssue",
    "PreferenceSpec",
    "ResolvedContext",
    "Resource",
    "Serving",
    "SCHEMA_VERSION",
    "check_document",
    "format_issues",
    "load_policies",
    "load_policy",
    "parse_document",
    "policy_json_schema",
    "policy_json_schema_text",
    "resolve_contexts",
    "shipped_policy_names",
]
