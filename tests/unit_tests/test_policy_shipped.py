"""The policies shipped in ``policies/``, loading them by name, the committed JSON schema, and the
public surface."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import psa_guard.policy as policy_package
from psa_guard.categories import CATEGORIES, DISTRESS_CATEGORIES
from psa_guard.errors import PolicyError
from psa_guard.policy import (
    MESSAGE_ACTIONS,
    Policy,
    load_policies,
    load_policy,
    policy_json_schema,
    policy_json_schema_text,
    shipped_policy_names,
)

POLICIES = Path(__file__).resolve().parents[2] / "policies"
SHIPPED = [
    "customer_service",
    "financial_coaching",
    "general_assistant",
    "kids_tutor",
    "medical_info",
    "mental_health_support",
]


def test_every_shipped_policy_is_valid_and_named_after_its_file() -> None:
    policies = load_policies(POLICIES)
    assert sorted(policies) == SHIPPED
    for name, policy in policies.items():
        assert Path(policy.source).stem == name
        assert policy.default_context == name
        for context in policy.context_names:
            resolved = policy.resolve(context)
            assert sum(resolved.preference) == pytest.approx(1.0)
            assert resolved.beta > 0
            # every message action a rule can pick has its text
            for rule in resolved.rules:
                if rule.action in MESSAGE_ACTIONS:
                    assert resolved.messages.for_action(rule.action)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_policies_explain_their_choices(name: str) -> None:
    lines = (POLICIES / f"{name}.yaml").read_text().splitlines()
    comments = [line for line in lines if line.lstrip().startswith("#")]
    assert len(comments) >= 10, "each shipped policy explains its choices in YAML comments"
    text = "\n".join(comments).lower()
    for topic in ("normalised", "beta"):
        assert topic in text, f"{name}.yaml does not explain {topic}"


CALM = {c: 0.0 for c in CATEGORIES}


@pytest.mark.parametrize("context", ["mental_health_support", "mental_health_support_youth"])
def test_mental_health_refers_to_crisis_lines_by_locale(context: str) -> None:
    policy = Policy.from_path(POLICIES / "mental_health_support.yaml")
    resolved = policy.resolve(context)
    top = resolved.decide(1.0, categories=CALM)
    assert top.action == "escalate"
    assert resolved.decide(0.5, categories=CALM).action == "refuse_with_resources"
    contacts = " ".join(f"{r.name} {r.contact}" for r in top.resources)
    assert "988" in contacts and "116 123" in contacts
    assert "local emergency services" in contacts
    us = [r.name for r in resolved.decide(0.9, locale="en-US", categories=CALM).resources]
    uk = [r.name for r in resolved.decide(0.9, locale="en-GB", categories=CALM).resources]
    assert "988 Suicide & Crisis Lifeline" in us and "Samaritans" not in us
    assert "Samaritans" in uk and "988 Suicide & Crisis Lifeline" not in uk
    assert "Emergency services" in us and "Emergency services" in uk


def test_shipped_policies_order_their_strictness() -> None:
    """Sanity of the shipped choices: vulnerable audiences escalate or refuse at lower scores."""
    policies = load_policies(POLICIES)

    def first_non_steer(name: str, context: str | None = None) -> float:
        """The lowest overall score that alone (no ``confirm_at``) stops a request; 2 if none."""
        rules = policies[name].resolve(context).rules
        return min((rule.at for rule in rules if rule.action not in ("allow", "steer")
                    and rule.confirm_at is None), default=2.0)

    general = first_non_steer("general_assistant")
    assert first_non_steer("kids_tutor") < general
    assert first_non_steer("mental_health_support") < general
    assert first_non_steer("kids_tutor") < first_non_steer("kids_tutor", "kids_tutor_teen")
    mental = policies["mental_health_support"]
    youth = mental.resolve("mental_health_support_youth")
    assert youth.rules[-1].at < mental.resolve().rules[-1].at


def test_committed_schema_is_fresh() -> None:
    committed = (POLICIES / "policy.schema.json").read_text(encoding="utf-8")
    assert committed == policy_json_schema_text(), (
        "policies/policy.schema.json is stale: run "
        "`psa-guard policy schema > policies/policy.schema.json`"
    )


def test_schema_describes_the_format() -> None:
    schema = policy_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"version", "name", "default_context", "contexts"}
    assert schema["properties"]["version"]["const"] == 1
    preference = schema["$defs"]["PreferenceSpec"]
    assert preference["additionalProperties"] is False
    assert sorted(preference["required"]) == sorted(policy_package.ATTRIBUTES)
    rule = schema["$defs"]["ModerationRule"]["properties"]
    assert rule["at"]["minimum"] == 0 and rule["at"]["maximum"] == 1
    assert json.loads(policy_json_schema_text()) == schema


def test_policy_package_exports() -> None:
    assert sorted(policy_package.__all__) == [
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
        "SCHEMA_VERSION",
        "Serving",
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
    for name in policy_package.__all__:
        assert hasattr(policy_package, name)


def test_documented_example_is_a_valid_policy() -> None:
    """The YAML example in docs/policies.md loads."""
    doc = (POLICIES.parent / "docs" / "policies.md").read_text(encoding="utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = Policy.from_string(example)
    assert policy.context_names == ("kids_tutor", "kids_tutor_teen")
    teen = policy.resolve("kids_tutor_teen")
    assert teen.beta == 0.8
    assert teen.decide(0.4, locale="en-GB").action == "refuse_with_resources"


# --------------------------------------------------------------------------------------------
# load_policy: a shipped name, a file, or a Policy


def test_shipped_policy_names_are_the_files_of_policies() -> None:
    assert shipped_policy_names() == tuple(SHIPPED)
    assert SHIPPED == sorted(path.stem for path in POLICIES.glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_policy_loads_by_name_from_any_folder(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    policy = load_policy(name)
    assert policy.name == name and policy.default_context == name
    assert Path(policy.source).name == f"{name}.yaml"
    assert load_policy(name) is policy, "a shipped policy is read once per process"


def test_unknown_name_lists_the_shipped_ones_and_says_a_path_works() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy("mental_health")
    message = str(info.value)
    assert "unknown policy 'mental_health'" in message
    assert ", ".join(SHIPPED) in message
    assert "a policy file path also works" in message


def test_relative_paths_are_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = (POLICIES / "kids_tutor.yaml").read_text(encoding="utf-8")
    (tmp_path / "mine.yaml").write_text(text.replace("name: kids_tutor", "name: mine"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine").write_text(text.replace("name: kids_tutor", "name: other"))
    (tmp_path / "kids_tutor").write_text(text.replace("name: kids_tutor", "name: local"))
    assert load_policy("mine.yaml").name == "mine"
    assert load_policy(Path("mine.yaml")).name == "mine"
    assert load_policy("sub/mine").name == "other"  # a separator means a path, suffix or not
    # an existing file wins over the shipped policy of the same name
    assert load_policy("kids_tutor").name == "local"
    with pytest.raises(PolicyError, match="not found"):
        load_policy("absent.yaml")


def test_a_policy_passes_through_and_other_types_are_refused() -> None:
    policy = Policy.from_path(POLICIES / "medical_info.yaml")
    assert load_policy(policy) is policy
    with pytest.raises(PolicyError, match="got int"):
        load_policy(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(p.stem for p in POLICIES.glob("*.yaml")))
def test_every_shipped_context_answers_distress_with_help_and_blocks_minors(name: str) -> None:
    policy = Policy.from_path(POLICIES / f"{name}.yaml")
    for context in policy.contexts:
        resolved = policy.resolve(context)
        for category in DISTRESS_CATEGORIES:
            # a person at risk asking for nothing harmful (overall score 0) and one asking for
            # methods (overall 1): never a flat refusal, always resources
            for overall in (0.0, 1.0):
                decision = resolved.decide(overall, categories={**CALM, category: 0.95})
                assert decision.action in ("support", "escalate"), (context, category, overall)
                assert decision.resources, (context, category)
        minors = resolved.decide(0.0, categories={**CALM, "sexual/minors": 0.5})
        assert minors.action == "block", context
