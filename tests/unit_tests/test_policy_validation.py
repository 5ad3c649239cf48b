"""Policy files: strict validation, errors that name the file, the key, the line and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from psa_guard.errors import PolicyError, PSAGuardError
from psa_guard.policy import ATTRIBUTES, Policy, PolicyIssue, load_policies

# Lines 1-5; a case appends its context body from line 6 on.
HEAD = "version: 1\nname: demo\ndefault_context: a\ncontexts:\n  a:\n"
# Line 6.
PREF = (
    "    preference: {empathy: 1, sensitivity: 1, non_judgmental: 1, truthfulness: 1, "
    "helpfulness: 1}\n"
)

VALID = textwrap.dedent(
    """\
    version: 1
    name: demo
    default_context: base
    contexts:
      base:
        preference:
          empathy: 3
          sensitivity: 1
          non_judgmental: 1
          truthfulness: 2
          helpfulness: 3
        beta: 0.5
        moderation:
          rules:
            - at: 0.3
              action: steer
            - at: 0.6
              action: refuse_with_resources
            - at: 0.9
              action: escalate
        messages:
          refuse_with_resources: Sorry, I can't help with that, but these people can.
          escalate: A person will join this conversation.
        resources:
          - name: Line US
            contact: call 988
            locales: [en-US]
          - name: Line UK
            contact: call 116 123
            locales: [en-GB, en-IE]
          - name: Emergency
            contact: local emergency services
      child:
        extends: base
        beta: 0.25
    """
)


def _issues(text: str, **kwargs: object) -> tuple[PolicyError, list[PolicyIssue]]:
    with pytest.raises(PolicyError) as info:
        Policy.from_string(text, **kwargs)  # type: ignore[arg-type]
    issues = [issue for issue in info.value.issues if isinstance(issue, PolicyIssue)]
    assert issues, "a file error must carry its issues"
    return info.value, issues


def test_valid_policy_loads() -> None:
    policy = Policy.from_string(VALID)
    assert policy.name == "demo"
    assert policy.context_names == ("base", "child")
    assert policy.default_context == "base"


# (id, text, key, line, fragment of the message or fix)
INVALID_CASES = [
    ("malformed-yaml", "version: 1\nname: [demo\ncontexts: {}\n", "", 3, "malformed YAML"),
    ("empty-file", "", "", None, "empty"),
    ("top-level-list", "- version: 1\n", "", 1, "a list, not a mapping"),
    ("version-2", HEAD.replace("version: 1", "version: 2") + PREF, "version", 1, "version: 1"),
    ("version-string", HEAD.replace("version: 1", "version: '1'") + PREF, "version", 1,
     "version: 1"),
    ("missing-name", HEAD.replace("name: demo\n", "") + PREF, "name", 1, "add 'name:'"),
    ("unknown-top-key", HEAD + PREF + "colour: red\n", "colour", 7, "allowed keys here"),
    ("unknown-context-key", HEAD + PREF + "    betta: 0.5\n", "contexts.a.betta", 7,
     "allowed keys here: description, extends, preference, beta, hard_constraint"),
    ("beta-quoted", HEAD + PREF + "    beta: '0.5'\n", "contexts.a.beta", 7, "expected a number"),
    ("beta-zero", HEAD + PREF + "    beta: 0\n", "contexts.a.beta", 7, "greater than 0"),
    ("beta-inf", HEAD + PREF + "    beta: .inf\n", "contexts.a.beta", 7, "finite"),
    # keys removed from the format: refused with their own fix, whatever their value
    ("removed-direg-lambda", HEAD + PREF + "    direg_lambda: 1.0\n", "contexts.a.direg_lambda", 7,
     'no longer a policy key: the DiReg strength is chosen once per process, not per context. '
     'Fix: remove it; set the strength where the model is built, with '
     'ChatPSAGuard(config="direg", direg_lambda=...), or pick the weights on the command line '
     'with psa-guard ... --config direg|full'),
    ("removed-direg-lambda-negative", HEAD + PREF + "    direg_lambda: -1\n",
     "contexts.a.direg_lambda", 7, "no longer a policy key"),
    ("removed-artifacts", HEAD + PREF + "    artifacts:\n      harm_vector: x.safetensors\n",
     "contexts.a.artifacts", 7, "Fix: remove the whole 'artifacts' section"),
    ("removed-artifacts-adapter", HEAD + PREF + "    artifacts: {adapter: adapters/none}\n",
     "contexts.a.artifacts", 7, "ChatPSAGuard(config=...), or on the command line"),
    # only contexts had these keys: elsewhere they are plain unknown keys
    ("direg-lambda-at-top", HEAD + PREF + "direg_lambda: 1.0\n", "direg_lambda", 7,
     "unknown key 'direg_lambda'. Fix: remove it or correct the spelling"),
    ("bool-as-text", HEAD + PREF + "    hard_constraint:\n      enabled: 'yes'\n",
     "contexts.a.hard_constraint.enabled", 8, "true or false"),
    ("top-p-zero", HEAD + PREF + "    hard_constraint: {top_p: 0}\n",
     "contexts.a.hard_constraint.top_p", 7, "greater than 0"),
    ("contexts-as-list", "version: 1\nname: demo\ndefault_context: a\ncontexts:\n  - a\n",
     "contexts", 4, "mapping"),
    ("unknown-attribute",
     HEAD + "    preference:\n      empathy: 1\n      empathi: 2\n      sensitivity: 1\n"
     "      non_judgmental: 1\n      truthfulness: 1\n      helpfulness: 1\n",
     "contexts.a.preference.empathi", 8, "allowed keys here: " + ", ".join(ATTRIBUTES)),
    ("negative-weight",
     HEAD + "    preference:\n      empathy: 1\n      sensitivity: -0.5\n      non_judgmental: 1\n"
     "      truthfulness: 1\n      helpfulness: 1\n",
     "contexts.a.preference.sensitivity", 8, "at least 0"),
    ("missing-attribute",
     HEAD + "    preference:\n      empathy: 1\n      sensitivity: 1\n      non_judgmental: 1\n"
     "      truthfulness: 1\n",
     "contexts.a.preference.helpfulness", 6, "add 'helpfulness:'"),
    ("all-zero",
     HEAD + "    preference: {empathy: 0, sensitivity: 0, non_judgmental: 0, truthfulness: 0, "
     "helpfulness: 0}\n",
     "contexts.a.preference", 6, "positive weight"),
    ("weight-as-text", HEAD + PREF.replace("empathy: 1", "empathy: high"),
     "contexts.a.preference.empathy", 6, "expected a number"),
    ("no-preference", HEAD + "    beta: 1.0\n", "contexts.a", 5, "add 'preference:'"),
    ("threshold-above-1", HEAD + PREF + "    moderation:\n      rules:\n        - at: 1.5\n"
     "          action: steer\n", "contexts.a.moderation.rules.0.at", 9, "at most 1"),
    ("unknown-action", HEAD + PREF + "    moderation:\n      rules:\n        - at: 0.5\n"
     "          action: warn\n", "contexts.a.moderation.rules.0.action", 10,
     "refuse_with_resources"),
    ("unknown-rule-key", HEAD + PREF + "    moderation:\n      rules:\n        - at: 0.5\n"
     "          action: steer\n          level: 3\n",
     "contexts.a.moderation.rules.0.level", 11, "allowed keys here: at, action"),
    ("rules-not-increasing", HEAD + PREF + "    moderation:\n      rules:\n"
     "        - {at: 0.6, action: steer}\n        - {at: 0.3, action: steer}\n",
     "contexts.a.moderation.rules", 8, "lowest 'at' to the highest"),
    ("action-without-message", HEAD + PREF + "    moderation:\n      rules:\n"
     "        - {at: 0.5, action: refuse}\n",
     "contexts.a.moderation.rules.0.action", 9, "messages: {refuse: ...}"),
    ("resources-missing", HEAD + PREF + "    moderation:\n      rules:\n"
     "        - {at: 0.5, action: refuse_with_resources}\n"
     "    messages: {refuse_with_resources: Sorry.}\n",
     "contexts.a.moderation.rules.0.action", 9, "add 'resources:'"),
    ("bad-locale", HEAD + PREF + "    resources:\n      - name: X\n        contact: Y\n"
     "        locales: [en-gb]\n", "contexts.a.resources.0.locales.0", 10, "'en-GB'"),
    ("empty-message", HEAD + PREF + "    messages: {refuse: ''}\n", "contexts.a.messages.refuse", 7,
     "at least 1 character"),
    ("bad-context-name", HEAD.replace("default_context: a", "default_context: Kids")
     .replace("  a:", "  Kids:") + PREF, "contexts.Kids", 5, "lowercase"),
    ("unknown-default", HEAD.replace("default_context: a", "default_context: b") + PREF,
     "default_context", 3, "use one of: a"),
    ("unknown-extends", HEAD + PREF + "  b:\n    extends: nowhere\n", "contexts.b.extends", 8,
     "use one of: a, b"),
    ("extends-cycle", HEAD + PREF + "  b:\n    extends: c\n  c:\n    extends: b\n",
     "contexts.b.extends", 8, "b -> c -> b"),
    ("self-extends", HEAD + PREF + "    extends: a\n", "contexts.a.extends", 7, "a -> a"),
    ("duplicate-context", HEAD + PREF + "  a:\n" + PREF, "contexts.a", 7,
     "first written on line 5"),
    ("duplicate-key", HEAD + PREF + "    beta: 0.5\n    beta: 2.0\n", "contexts.a.beta", 8,
     "first written on line 7"),
    ("duplicate-attribute", HEAD + PREF.replace("helpfulness: 1}", "helpfulness: 1, empathy: 9}"),
     "contexts.a.preference.empathy", 6, "duplicate key 'empathy'"),
    ("merge-key", HEAD + PREF + "  b:\n    <<: {beta: 1.0}\n", "contexts.b.<<", 8, "extends"),
    ("non-text-key", HEAD + PREF + "    1: x\n", "contexts.a.1", 7, "quotes"),
    ("python-tag", HEAD + PREF + "    description: !!python/object/apply:os.system ['echo hi']\n",
     "contexts.a.description", 7, "unsupported YAML tag '!!python/object/apply:os.system'"),
    ("python-name-tag", HEAD + PREF + "    beta: !!python/name:os.system\n", "contexts.a.beta", 7,
     "unsupported YAML tag"),
    ("custom-tag", HEAD + PREF + "    beta: !weird 1\n", "contexts.a.beta", 7, "remove the tag"),
]


@pytest.mark.parametrize(
    ("text", "key", "line", "fragment"),
    [case[1:] for case in INVALID_CASES],
    ids=[case[0] for case in INVALID_CASES],
)
def test_invalid_policy_names_key_line_and_fix(
    text: str, key: str, line: int | None, fragment: str
) -> None:
    error, issues = _issues(text, source="inline.yaml")
    matching = [issue for issue in issues if issue.key == key]
    assert matching, f"no issue for key {key!r}: {issues}"
    issue = matching[0]
    assert issue.line == line
    assert issue.source == "inline.yaml"
    assert issue.fix, "every issue says how to fix it"
    assert fragment in f"{issue.message}. Fix: {issue.fix}"
    where = f"inline.yaml:{line}:" if line is not None else "inline.yaml:"
    assert f"{where}{' ' + key + ':' if key else ''}" in str(error)
    assert isinstance(error, PSAGuardError) and isinstance(error, ValueError)


def test_several_problems_are_reported_together() -> None:
    text = HEAD + PREF + "    beta: 0\n    direg_lambda: -2\n    colour: red\n"
    _, issues = _issues(text)
    assert [issue.key for issue in issues] == [
        "contexts.a.beta",
        "contexts.a.direg_lambda",
        "contexts.a.colour",
    ]
    assert [issue.line for issue in issues] == [7, 8, 9]
    assert "no longer a policy key" in issues[1].message


def test_python_tag_is_never_constructed(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    text = HEAD + PREF + f"    description: !!python/object/apply:os.system ['touch {sentinel}']\n"
    _, issues = _issues(text)
    assert "unsupported YAML tag" in issues[0].message
    assert not sentinel.exists()


def test_recursive_alias_is_rejected() -> None:
    text = HEAD + PREF + "    resources: &loop [*loop]\n"
    _, issues = _issues(text)
    assert any("recursive" in issue.message for issue in issues)


def test_duplicate_keys_are_not_silently_dropped() -> None:
    """PyYAML keeps the last duplicate; the loader must refuse instead."""
    import yaml

    text = HEAD + PREF + "  a:\n" + PREF.replace("empathy: 1", "empathy: 5")
    assert list(yaml.safe_load(text)["contexts"]) == ["a"]  # what plain PyYAML does
    _, issues = _issues(text)
    assert issues[0].message.startswith("duplicate key 'a'")


def test_from_path_names_the_file_line_and_key_of_a_removed_key(tmp_path: Path) -> None:
    file = tmp_path / "old.yaml"
    file.write_text(HEAD + PREF + "    artifacts: {harm_vector: vectors/harm.safetensors}\n")
    with pytest.raises(PolicyError) as info:
        Policy.from_path(file)
    text = str(info.value)
    assert f"{file}:7: contexts.a.artifacts: 'artifacts' (harm_vector, adapter) is no longer" in text
    assert "Fix: remove the whole 'artifacts' section" in text


def test_from_path_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        Policy.from_path(tmp_path / "absent.yaml")


def test_load_policies_reads_every_yaml_and_rejects_duplicate_names(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(HEAD + PREF)
    (tmp_path / "two.yaml").write_text(HEAD.replace("name: demo", "name: other") + PREF)
    (tmp_path / "notes.txt").write_text("not a policy")
    assert sorted(load_policies(tmp_path)) == ["demo", "other"]

    (tmp_path / "three.yaml").write_text(HEAD + PREF)
    with pytest.raises(PolicyError) as info:
        load_policies(tmp_path)
    assert "three.yaml:2: name: duplicate policy name 'demo'" in str(info.value)
    assert "one.yaml" in str(info.value)


def test_load_policies_reports_bad_files_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no \\*.yaml"):
        load_policies(tmp_path)
    with pytest.raises(PolicyError, match="not a folder"):
        load_policies(tmp_path / "missing")
    (tmp_path / "good.yaml").write_text(HEAD + PREF)
    (tmp_path / "bad.yaml").write_text(HEAD + PREF + "    beta: -1\n")
    with pytest.raises(PolicyError) as info:
        load_policies(tmp_path)
    assert f"{tmp_path / 'bad.yaml'}:7: contexts.a.beta:" in str(info.value)


def test_from_string_rejects_bytes() -> None:
    with pytest.raises(PolicyError, match="must be str"):
        Policy.from_string(VALID.encode())  # type: ignore[arg-type]
