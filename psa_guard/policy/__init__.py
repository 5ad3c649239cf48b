"""Policies: declarative YAML files that map an application context to its alignment settings.

A policy file names contexts (``kids_tutor``, ``mental_health_support``, ...); each sets a
preference vector over the five attributes, the guidance strength ``beta``, the DiReg
``direg_lambda``, the hard constraint, moderation rules that map a harm score to an action, and the
messages and resources (crisis lines by locale) those actions use. See ``docs/policies.md``.

Typical use::

    policy = Policy.from_path("policies/mental_health_support.yaml")
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
    DEFAULT_DIREG_LAMBDA,
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
    Artifacts,
    ContextSpec,
    HardConstraint,
    Messages,
    Moderation,
    ModerationRule,
    PolicyDocument,
    PreferenceSpec,
    Resource,
    policy_json_schema,
    policy_json_schema_text,
)

__all__ = [
    "ACTIONS",
    "ATTRIBUTES",
    "ActionName",
    "Artifacts",
    "ContextSpec",
    "DEFAULT_BETA",
    "DEFAULT_DIREG_LAMBDA",
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
    "SCHEMA_VERSION",
    "check_document",
    "format_issues",
    "load_policies",
    "parse_document",
    "policy_json_schema",
    "policy_json_schema_text",
    "resolve_contexts",
]
