"""Property-based fuzzing (issue 19, item 2) of the three parsers of untrusted text: the policy
loader, message normalisation and the JSONL reader. Whatever comes in, each either returns a
well-formed result or raises one of the project's own errors (the ``psa_guard.errors`` tree), never
a ``TypeError``, ``RecursionError``, ``UnicodeDecodeError`` or any other builtin.

Runs are derandomised (the same examples on every run, so CI is reproducible) and write no
example database; ``FUZZ_EXAMPLES`` holds each test's example budget (docs/reliability.md).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from psa_guard.core.jsonl import iter_jsonl, read_jsonl_lenient
from psa_guard.errors import InputLineError, InvalidMessagesError, PolicyError, PSAGuardError
from psa_guard.jobs import read_prompts
from psa_guard.messages import ROLES, normalize_messages
from psa_guard.policy import ACTIONS, ATTRIBUTES, Policy
from tests.doubles import POLICY

#: Examples per test (hypothesis ``max_examples``); the doc's figures come from these.
FUZZ_EXAMPLES = {
    "policy_text": 200,
    "policy_yaml_tokens": 200,
    "policy_documents": 150,
    "policy_mutations": 200,
    "messages": 300,
    "jsonl_reader": 150,
}


def fuzz(name: str) -> Any:
    return settings(max_examples=FUZZ_EXAMPLES[name], deadline=None, derandomize=True,
                    database=None, suppress_health_check=[HealthCheck.too_slow])


# ---- building blocks ----------------------------------------------------------------------------
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(max_size=12) | st.sampled_from([*ACTIONS, *ATTRIBUTES, "en-GB", "*", "a"]))
KEYS = st.sampled_from([
    "version", "name", "default_context", "contexts", "description", "extends", "preference",
    "beta", "hard_constraint", "moderation", "messages", "resources", "serving", "rules",
    "category_rules", "on_unavailable", "at", "action", "category", "top_p", "blocked_terms",
    "risk_threshold", "enabled", "contact", "locales", "url", "categories", "max_tokens",
    "client_preference", "direg_lambda", "artifacts", *ATTRIBUTES, *ACTIONS,
]) | st.text(max_size=8)
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(KEYS, inner, max_size=5), max_leaves=25)


def _project_error_or_none(call: Any, *allowed: type[PSAGuardError]) -> Any:
    """Run ``call``; a project error of the ``allowed`` kinds is fine, anything else fails."""
    try:
        return call()
    except allowed:
        return None


# ---- the policy loader -------------------------------------------------------------------------
def _loaded(text: str) -> Policy | None:
    policy = _project_error_or_none(lambda: Policy.from_string(text, "fuzz.yaml"), PolicyError)
    if policy is not None:  # what loads is usable: every context resolves and decides
        for name in policy.context_names:
            decision = policy.resolve(name).decide(0.5)
            assert decision.action in ACTIONS
    return policy


def _raises_located(text: str) -> None:
    try:
        Policy.from_string(text, "fuzz.yaml")
    except PolicyError as error:
        assert str(error).startswith("invalid policy fuzz.yaml") or "fuzz.yaml" in str(error)


@fuzz("policy_text")
@given(st.text(max_size=300))
@example("[" * 3000)  # nesting deeper than the YAML composer's recursion
@example("a: " + "{b: " * 3000 + "}" * 3000)
@example("contexts: !!python/object/apply:os.system ['true']")
@example("a: &x [*x]")
def test_policy_loader_on_random_text(text: str) -> None:
    _loaded(text)
    _raises_located(text)


YAML_TOKENS = st.sampled_from([
    "version: 1\n", "name: fuzz\n", "default_context: a\n", "contexts:\n", "  a:\n",
    "    preference: {empathy: 1, sensitivity: 1, non_judgmental: 1, truthfulness: 1, "
    "helpfulness: 1}\n", "    beta: ", "0.5", ".inf", ".nan", "-1", "'0.5'", "yes", "null",
    "~", "\n", " ", "\t", "- ", ": ", "{", "}", "[", "]", ",", "&a ", "*a", "<<: ", "? ",
    "!!python/object:os.system ", "!!binary ", "!!set ", "!!timestamp 2024-13-45", "!custom ",
    "|\n", ">\n", "---\n", "...\n", "%YAML 1.1\n", "'", '"', "#", "\\", "\x00", "\ufeff", "é",
    "extends: a\n", "    moderation: {rules: [{at: 0.5, action: refuse}]}\n",
    "1e400", "0x1F", "0o17", "1" * 5000,
])


@fuzz("policy_yaml_tokens")
@given(st.lists(YAML_TOKENS, max_size=40).map("".join))
def test_policy_loader_on_yaml_token_soup(text: str) -> None:
    _loaded(text)


@fuzz("policy_documents")
@given(JSONISH)
def test_policy_loader_on_random_documents(document: Any) -> None:
    _loaded(yaml.safe_dump(document, allow_unicode=True))


VALID = yaml.safe_load(POLICY)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


PATHS = [p for p in _paths(VALID) if p]


@fuzz("policy_mutations")
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(["set", "delete"]), JSONISH),
                min_size=1, max_size=3))
def test_policy_loader_on_mutations_of_a_valid_policy(edits: list[Any]) -> None:
    document = copy.deepcopy(VALID)
    for path, verb, value in edits:
        parent: Any = document
        try:
            for step in path[:-1]:
                parent = parent[step]
            if verb == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed the path
    _loaded(yaml.safe_dump(document, allow_unicode=True))


# ---- message normalisation ---------------------------------------------------------------------
ROLE = st.sampled_from([*ROLES, "developer", "robot", "", "USER"]) | SCALARS
MESSAGE = st.fixed_dictionaries(
    {"role": ROLE, "content": st.text(max_size=20) | JSONISH},
    optional={"name": SCALARS, "tool_calls": JSONISH})
MESSAGES = (st.lists(MESSAGE | JSONISH, max_size=6) | st.lists(MESSAGE, max_size=6).map(tuple)
            | JSONISH | st.text(max_size=20) | st.binary(max_size=8)
            | st.builds(object) | st.sets(st.integers(), max_size=3))


@fuzz("messages")
@given(MESSAGES)
def test_message_normalisation(messages: Any) -> None:
    before = copy.deepcopy(messages) if isinstance(messages, (list, tuple, dict)) else None
    try:
        merged = normalize_messages(messages)
    except InvalidMessagesError as error:
        assert "messages" in str(error)  # the message names the argument
        return
    assert merged and all(set(m) == {"role", "content"} for m in merged)
    assert all(m["role"] in ROLES and isinstance(m["content"], str) for m in merged)
    assert all(a["role"] != b["role"] for a, b in zip(merged, merged[1:]))
    assert any(m["role"] in ("user", "system") for m in merged)
    if before is not None:
        assert messages == before  # the input is not mutated


# ---- the JSONL reader --------------------------------------------------------------------------
JSON_MESSAGES = st.lists(MESSAGE | JSONISH, max_size=4) | JSONISH
PROMPT_LINE = st.fixed_dictionaries(
    {"id": st.integers(0, 5) | st.text(max_size=3) | SCALARS},
    optional={"prompt": st.text(max_size=12) | SCALARS, "messages": JSON_MESSAGES,
              "context": SCALARS}).map(lambda d: json.dumps(d).encode())
NESTED = st.integers(1, 3000).map(lambda n: ("[" * n + "]" * n).encode())
LINE = (PROMPT_LINE | st.binary(max_size=40) | NESTED
        | JSONISH.map(lambda v: json.dumps(v, allow_nan=True).encode())
        | st.sampled_from([b"", b"  ", b"\r", b"NaN", b"\xef\xbb\xbf{}", b'{"id": 1}',
                           b'{"id": 1, "prompt": "caf\xe9"}', b"\x00"]))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-jsonl") / "in.jsonl"


@fuzz("jsonl_reader")
@given(lines=st.lists(LINE, max_size=8))
@example(lines=[b'{"id": 1, "prompt": "hi"}', b"[" * 100_000 + b"]" * 100_000])
@example(lines=[b'{"id": 1, "prompt": "caf\xe9"}', b'{"id": 2, "prompt": "ok"}'])
def test_jsonl_reader(scratch: Path, lines: list[bytes]) -> None:
    scratch.write_bytes(b"\n".join(lines) + b"\n")
    good, bad = read_jsonl_lenient(scratch)
    numbers = [n for n, _ in good] + [e.line_number for e in bad]
    assert len(numbers) == len(set(numbers))  # each line is either good or bad, once
    assert all(isinstance(e, InputLineError) and f"{scratch}:{e.line_number}:" in str(e)
               for e in bad)
    strict = _project_error_or_none(lambda: list(iter_jsonl(scratch)), InputLineError)
    if strict is not None:
        assert [n for n, _ in strict] == [n for n, _ in good] and not bad
    records, errors = read_prompts(scratch)
    assert all(isinstance(r.conversation, (str, list)) for r in records)
    assert all(isinstance(e, InputLineError) for e in errors)
    assert len({str(r.id) for r in records}) == len(records)

