"""Routing core: inheritance, normalisation, context lookup and the score-to-action rule."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import pytest

import psa_guard.policy.loader as loader_module
import psa_guard.policy.routing as routing_module
from psa_guard.errors import ConfigurationError, PolicyError
from psa_guard.policy import (
    ATTRIBUTES,
    DEFAULT_BETA,
    HardConstraint,
    Policy,
    PolicyDocument,
    PreferenceSpec,
)

TEXT = """\
version: 1
name: routing
default_context: base
contexts:
  base:
    description: the base
    preference: {empathy: 3, sensitivity: 1, non_judgmental: 1, truthfulness: 2, helpfulness: 3}
    beta: 0.5
    hard_constraint: {top_p: 0.8, blocked_terms: [forbidden]}
    moderation:
      rules:
        - {at: 0.3, action: steer}
        - {at: 0.6, action: refuse_with_resources}
        - {at: 0.9, action: escalate}
    messages:
      steer: be careful
      refuse_with_resources: "Sorry; these people can help:"
      escalate: A person will join.
    resources:
      - {name: Line US, contact: call 988, locales: [en-US]}
      - {name: Line UK, contact: call 116 123, locales: [en-GB, en-IE], url: https://example.org}
      - {name: English, contact: any English line, locales: [en]}
      - {name: Emergency, contact: local emergency services, locales: ["*"]}
  child:
    extends: base
    beta: 0.25
    moderation:
      rules:
        - {at: 0.5, action: refuse_with_resources}
  grandchild:
    extends: child
    preference: {empathy: 0, sensitivity: 0, non_judgmental: 0, truthfulness: 1, helpfulness: 1}
  bare:
    preference: {empathy: 1, sensitivity: 1, non_judgmental: 1, truthfulness: 1, helpfulness: 1}
"""


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.from_string(TEXT)


def test_none_picks_the_default_context(policy: Policy) -> None:
    assert policy.resolve(None).name == "base"
    assert policy.resolve().name == "base"


def test_unknown_context_lists_valid_ones_and_never_falls_back(policy: Policy) -> None:
    with pytest.raises(PolicyError) as info:
        policy.resolve("kids")
    message = str(info.value)
    assert "'kids'" in message
    assert "base, child, grandchild, bare" in message


def test_preference_is_normalised_in_fixed_attribute_order(policy: Policy) -> None:
    base = policy.resolve("base")
    assert ATTRIBUTES == ("empathy", "sensitivity", "non_judgmental", "truthfulness", "helpfulness")
    assert base.preference == pytest.approx((0.3, 0.1, 0.1, 0.2, 0.3))
    assert math.isclose(sum(base.preference), 1.0)
    assert base.preference_map["truthfulness"] == pytest.approx(0.2)
    assert isinstance(base.preference, tuple)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ((1, 1, 1, 1, 1), (0.2,) * 5),
        ((0, 0, 0, 0, 7), (0.0, 0.0, 0.0, 0.0, 1.0)),
        ((0.1, 0.2, 0.3, 0.2, 0.2), (0.1, 0.2, 0.3, 0.2, 0.2)),
        ((2, 0, 2, 0, 0), (0.5, 0.0, 0.5, 0.0, 0.0)),
    ],
)
def test_preference_normalisation_table(
    weights: tuple[float, ...], expected: tuple[float, ...]
) -> None:
    spec = PreferenceSpec(**dict(zip(ATTRIBUTES, weights, strict=True)))
    assert spec.normalised() == pytest.approx(expected)


def test_inheritance_replaces_written_keys_and_inherits_the_rest(policy: Policy) -> None:
    base, child, grandchild = (policy.resolve(n) for n in ("base", "child", "grandchild"))
    assert child.beta == 0.25 and base.beta == 0.5
    assert child.preference == base.preference
    assert child.hard_constraint == HardConstraint(top_p=0.8, blocked_terms=("forbidden",))
    assert child.messages == base.messages
    assert child.resources == base.resources
    assert child.description == "the base"
    # `moderation` written in child replaces the whole section (not merged rule by rule)
    assert [(rule.at, rule.action) for rule in child.rules] == [(0.5, "refuse_with_resources")]
    # grandchild inherits through child
    assert grandchild.beta == 0.25
    assert grandchild.rules == child.rules
    assert grandchild.preference == pytest.approx((0.0, 0.0, 0.0, 0.5, 0.5))
    assert grandchild.lineage == ("grandchild", "child", "base")


def test_defaults_for_unset_fields(policy: Policy) -> None:
    bare = policy.resolve("bare")
    assert bare.beta == DEFAULT_BETA == 1.0
    assert bare.hard_constraint == HardConstraint()
    assert bare.rules == ()
    assert bare.decide(1.0).action == "allow"


def test_steering_carries_the_hard_constraint_and_its_risk_gate(policy: Policy) -> None:
    import dataclasses

    child = policy.resolve("child")
    steering = child.steering()
    assert steering.safe_top_p == 0.8 and steering.blocked_terms == ("forbidden",)
    assert steering.risk_threshold == HardConstraint().risk_threshold == 0.5
    gated = dataclasses.replace(child, hard_constraint=HardConstraint(risk_threshold=0.2))
    assert gated.steering().risk_threshold == 0.2
    off = dataclasses.replace(child, hard_constraint=HardConstraint(enabled=False))
    assert off.steering().risk_threshold == 1.0 and off.steering().safe_top_p == 1.0


def test_resolved_context_is_frozen(policy: Policy) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.resolve("base").beta = 3.0  # type: ignore[misc]


# score -> (action, threshold) for context "base": rules at 0.3 steer, 0.6 rwr, 0.9 escalate
DECIDE_CASES = [
    (0.0, "allow", None),
    (0.2999, "allow", None),
    (0.3, "steer", 0.3),
    (0.45, "steer", 0.3),
    (0.6, "refuse_with_resources", 0.6),
    (0.89, "refuse_with_resources", 0.6),
    (0.9, "escalate", 0.9),
    (1.0, "escalate", 0.9),
    (1, "escalate", 0.9),
]


@pytest.mark.parametrize(("score", "action", "threshold"), DECIDE_CASES)
def test_decide_maps_scores_to_actions(
    policy: Policy, score: float, action: str, threshold: float | None
) -> None:
    decision = policy.resolve("base").decide(score)
    assert decision.action == action
    assert decision.threshold == threshold
    assert decision.score == score
    assert decision.context == "base"


def test_decide_messages_and_resources(policy: Policy) -> None:
    base = policy.resolve("base")
    allow = base.decide(0.1)
    assert allow.message is None and allow.resources == () and allow.produces_response
    assert allow.render() == ""
    steer = base.decide(0.3)
    assert steer.message == "be careful" and steer.resources == () and steer.produces_response
    assert steer.render() == ""  # a steer message is a system instruction, not shown to the user
    refuse = base.decide(0.7)
    assert refuse.message == "Sorry; these people can help:"
    assert not refuse.produces_response
    assert [r.name for r in refuse.resources] == ["Line US", "Line UK", "English", "Emergency"]
    assert refuse.render().splitlines() == [
        "Sorry; these people can help:",
        "- Line US: call 988",
        "- Line UK: call 116 123 (https://example.org)",
        "- English: any English line",
        "- Emergency: local emergency services",
    ]
    assert base.decide(0.95).message == "A person will join."


@pytest.mark.parametrize(
    ("locale", "names"),
    [
        (None, ["Line US", "Line UK", "English", "Emergency"]),
        ("en-US", ["Line US", "English", "Emergency"]),
        ("en-IE", ["Line UK", "English", "Emergency"]),
        ("en-GB", ["Line UK", "English", "Emergency"]),
        ("fr-FR", ["Emergency"]),
        ("en", ["English", "Emergency"]),
    ],
)
def test_resources_are_filtered_by_locale(
    policy: Policy, locale: str | None, names: list[str]
) -> None:
    decision = policy.decide(0.7, context="base", locale=locale)
    assert [resource.name for resource in decision.resources] == names


@pytest.mark.parametrize("score", [-0.01, 1.01, float("nan"), float("inf"), True, "0.5", None])
def test_decide_rejects_scores_outside_unit_interval(policy: Policy, score: object) -> None:
    with pytest.raises(ConfigurationError, match="harm_score"):
        policy.resolve("base").decide(score)  # type: ignore[arg-type]


def test_policy_constructor_checks_references_without_io() -> None:
    document = PolicyDocument.model_validate(
        {
            "version": 1,
            "name": "p",
            "default_context": "missing",
            "contexts": {"a": {"preference": dict.fromkeys(ATTRIBUTES, 1.0)}},
        }
    )
    with pytest.raises(PolicyError, match="default_context"):
        Policy(document)
    fixed = document.model_copy(update={"default_context": "a"})
    assert Policy(fixed).resolve(None).name == "a"


@pytest.fixture
def check_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts every call of ``check_document``, under both names it is imported by."""
    calls: list[str] = []
    real: Callable[..., Any] = routing_module.check_document

    def counting(document: PolicyDocument) -> Any:
        calls.append(document.name)
        return real(document)

    monkeypatch.setattr(routing_module, "check_document", counting)
    monkeypatch.setattr(loader_module, "check_document", counting)
    return calls


def test_a_load_checks_the_document_once(check_calls: list[str]) -> None:
    Policy.from_string(TEXT)
    assert check_calls == ["routing"]


def test_a_document_built_in_code_is_still_checked(check_calls: list[str]) -> None:
    document = Policy.from_string(TEXT).document
    check_calls.clear()
    Policy(document)
    assert check_calls == ["routing"]
    broken = document.model_copy(update={"default_context": "nowhere"})
    with pytest.raises(PolicyError, match="default_context"):
        Policy(broken)
