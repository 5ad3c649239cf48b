"""Bad input on every surface (issue 19, item 1): each case must fail with a clear error that names
the place (argument, file and line, field) and the fix, and must leave nothing partial behind (no
output file or folder, no half line, no forward pass, no model call, no score).

Surfaces: the Python API (``ChatPSAGuard`` construction and calls, ``PSAGuardMiddleware``,
``guard_chat_model``), the CLI, policy files, JSONL inputs, the HTTP server (``create_app`` in
process) and moderation HTTP responses (``HTTPModerationScorer`` against scripted replies).

Every case is a row of a table below; ``docs/reliability.md`` lists the same rows
(``test_the_doc_lists_every_case`` keeps the two in step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage

from langchain_psa_guard import ChatPSAGuard, PSAGuardMiddleware, guard_chat_model
from psa_guard.cli import main
from psa_guard.errors import (
    ConfigurationError,
    DataError,
    InvalidMessagesError,
    ModelNotFoundError,
    ModerationUnavailableError,
    PolicyError,
    PromptTooLongError,
)
from psa_guard.jobs import read_prompts
from psa_guard.moderation.base import score_texts
from psa_guard.moderation.http import HTTPModerationScorer
from psa_guard.policy import Policy
from tests.doubles import POLICY, ScriptedScorer
from tests.reliability.conftest import SERVED_MAX_TOKENS, assert_openai_error

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


@dataclass(frozen=True)
class Bad:
    """One bad input.

    Attributes:
        id: the case's name (also its row in docs/reliability.md).
        what: the input, in words.
        payload: what the surface's test feeds in.
        place: fragments of the message that name the place (argument, file:line, field).
        fix: fragments of the message that give the fix.
        error: the exception (or HTTP status) expected.
        param: for HTTP cases, the ``error.param`` expected.
    """

    id: str
    what: str
    payload: Any
    place: tuple[str, ...]
    fix: tuple[str, ...]
    error: Any = None
    param: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _ids(cases: list[Bad]) -> list[str]:
    return [case.id for case in cases]


def _says(message: str, case: Bad) -> None:
    """The message names the place and the fix."""
    for fragment in (*case.place, *case.fix):
        assert fragment in message, f"{case.id}: {fragment!r} not in {message!r}"


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# =================================================================================================
# Python API: ChatPSAGuard construction (no I/O: the error comes before anything exists)
# =================================================================================================
ARM = {"config": "arm"}
API_CONSTRUCTION = [
    Bad("api-config", "config='nope'", {"config": "nope"}, ("config", "'nope'"),
        ("valid: arm, base, direg, full, zo",)),
    Bad("api-temperature", "temperature=-1", {"temperature": -1}, ("temperature", "-1"),
        ("from 0 (greedy) to 5",)),
    Bad("api-max-tokens", "max_tokens=0", {"max_tokens": 0}, ("max_tokens", "got 0"),
        ("from 1 to 32768",)),
    Bad("api-threads", "threads=0", {"threads": 0}, ("threads", "got 0"),
        ("positive integer",)),
    Bad("api-max-tokens-huge", "max_tokens=10**6", {"max_tokens": 10**6},
        ("max_tokens", "1000000"), ("from 1 to 32768",)),
    Bad("api-top-p", "top_p=1.5", {"top_p": 1.5}, ("top_p", "1.5"), ("in (0, 1]",)),
    Bad("api-stop", "stop=['']", {"stop": [""]}, ("stop",), ("list of non-empty strings",)),
    Bad("api-seed", "seed=-1", {"seed": -1}, ("seed", "-1"), ("non-negative integer",)),
    Bad("api-seed-huge", "seed=2**64 (torch cannot take it)", {"seed": 2**64}, ("seed",),
        ("from 0 to 18446744073709551615",)),
    Bad("api-policy-type", "policy=123", {"policy": 123}, ("policy", "int"),
        ("a shipped policy's name or a policy file path",)),
    Bad("api-alpha-unguided", "alpha on config='base'", {"config": "base", "alpha": {"empathy": 1}},
        ("alpha", "config='base'"), ("set config='arm' or config='full'",)),
    Bad("api-alpha-unknown", "alpha={'kindness': 1}", {**ARM, "alpha": {"kindness": 1}},
        ("alpha", "'kindness=1"), ("ATTRIBUTE one of empathy, sensitivity",)),
    Bad("api-alpha-negative", "alpha='empathy=-1'", {**ARM, "alpha": "empathy=-1"},
        ("alpha", "'empathy'"), ("finite number >= 0",)),
    Bad("api-beta", "beta=0", {**ARM, "beta": 0}, ("beta", "0.0"), ("finite number > 0",)),
    Bad("api-risk", "risk_threshold=2", {**ARM, "risk_threshold": 2}, ("risk_threshold", "2.0"),
        ("in [0, 1]",)),
    Bad("api-direg", "direg_lambda on config='base'", {"config": "base", "direg_lambda": 1.0},
        ("direg_lambda", "config='base'"), ("set config to one of direg, full",)),
    Bad("api-raw-conflict", "raw=True with config='arm'", {"raw": True, "config": "arm"},
        ("raw=True", "config='arm'"), ("drop config='arm' or raw",)),
    Bad("api-zo-settings", "zo_settings='x'", {"zo_settings": "x"}, ("zo_settings", "str"),
        ("must be a psa_guard.zo.ZOSettings",)),
]


@pytest.mark.parametrize("case", API_CONSTRUCTION, ids=_ids(API_CONSTRUCTION))
def test_api_construction(case: Bad, forward_passes: list[int], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as info:  # pydantic's ValidationError or ConfigurationError
        ChatPSAGuard(**case.payload)
    _says(str(info.value), case)
    assert forward_passes == [] and _listing(tmp_path) == []


# =================================================================================================
# Python API: ChatPSAGuard calls on the tiny model
# =================================================================================================
IMAGE = [HumanMessage(content=[{"type": "image_url", "image_url": {"url": "http://x/y.png"}}])]
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}

API_CALLS = [
    Bad("call-unknown-argument", "invoke('hi', frobnicate=1)", ("hi", {"frobnicate": 1}),
        ("frobnicate",), ("supported: model, context, locale",), ConfigurationError),
    Bad("call-override", "invoke('hi', max_tokens=0)", ("hi", {"max_tokens": 0}),
        ("max_tokens", "got 0"), ("from 1 to 32768",), ConfigurationError),
    Bad("call-empty", "invoke([])", ([], {}), ("messages is empty",),
        ("pass at least one user message",), InvalidMessagesError),
    Bad("call-image", "an image_url content block", (IMAGE, {}), ("messages[0]", "'image_url'"),
        ("accepts text only",), InvalidMessagesError),
    Bad("call-context", "context='nope' with a policy", ("hi", {"context": "nope"}),
        ("unknown context 'nope'",), ("valid contexts: general, strict",), PolicyError),
    Bad("call-policy-name", "policy='no_such_policy'", ("hi", {}),
        ("unknown policy 'no_such_policy'",), ("Shipped policies:", "a policy file path"),
        PolicyError, extra={"init": {"policy": "no_such_policy"}}),
    Bad("call-policy-missing", "policy='missing.yaml' (no such file)", ("hi", {}),
        ("missing.yaml", "policy file not found"), ("check the path",), PolicyError,
        extra={"init": {"policy": "missing.yaml"}}),
    Bad("call-model-missing", "model='absent' (no such folder)", ("hi", {}),
        ("model folder absent does not exist",), ("pass an existing Hugging Face model folder",),
        ModelNotFoundError, extra={"init": {"model": "absent"}, "screened": True}),
    Bad("call-too-long", "a prompt past the 256-token window", ("word " * 400, {}),
        ("the prompt has", "accepts at most 256"), ("shorten the conversation",),
        PromptTooLongError, extra={"screened": True}),
    Bad("call-tool-choice", "bind_tools(tool_choice='nope')", None, ("tool_choice 'nope'",),
        ("bound: get_weather",), ConfigurationError, extra={"tools": True}),
]


@pytest.mark.parametrize("case", API_CALLS, ids=_ids(API_CALLS))
def test_api_calls(case: Bad, tiny_model_dir: Path, forward_passes: list[int], tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    scorer = ScriptedScorer()
    init: dict[str, Any] = {"model": str(tiny_model_dir), "max_tokens": 4, "scorer": scorer,
                            "config": "base", "policy": Policy.from_string(POLICY)}
    init.update(case.extra.get("init", {}))
    llm = ChatPSAGuard(**init)
    with pytest.raises(case.error) as info:
        if case.extra.get("tools"):
            llm.bind_tools([WEATHER], tool_choice="nope")
        else:
            value, kwargs = case.payload
            llm.invoke(value, **kwargs)
    _says(str(info.value), case)
    assert forward_passes == [] and _listing(tmp_path) == []
    # the input check runs before the model loads; otherwise the scorer is not even asked
    assert scorer.seen == ([value] if case.extra.get("screened") else [])


# =================================================================================================
# Python API: the agent middleware and guard_chat_model around a fake model
# =================================================================================================
class RecordingFake(GenericFakeChatModel):
    """A fake chat model that records its calls."""

    calls: list[Any] = []

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> Any:
        self.calls.append(messages)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


@dataclass
class AppContext:
    app_context: str = "general"
    locale: str | None = None


BROKEN_YAML = "version: 1\nname: x\ndefault_context: a\ncontexts:\n  a: {preference: [1, 2}\n"

WRAPPERS = [
    Bad("middleware-context", "runtime context app_context='nope'", "middleware",
        ("unknown context 'nope'",), ("valid contexts: general, strict",), PolicyError,
        extra={"context": "nope"}),
    Bad("middleware-policy-file", "a policy file with a YAML syntax error", "middleware",
        ("broken.yaml:5:", "malformed YAML"), ("Fix: correct the syntax on that line",),
        PolicyError, extra={"policy": "file"}),
    Bad("middleware-policy-type", "PSAGuardMiddleware(123)", "middleware", ("policy", "got int"),
        ("a Policy, a policy file path or a shipped policy name",), PolicyError,
        extra={"policy": 123}),
    Bad("guard-policy-name", "guard_chat_model(model, 'no_such_policy')", "guard",
        ("unknown policy 'no_such_policy'",), ("Shipped policies:",), PolicyError,
        extra={"policy": "no_such_policy"}),
    Bad("guard-context", "configurable context='nope'", "guard", ("unknown context 'nope'",),
        ("valid contexts: general, strict",), PolicyError, extra={"context": "nope"}),
    Bad("guard-image", "an image_url content block", "guard", ("messages[0]", "'image_url'"),
        ("accepts text only",), InvalidMessagesError, extra={"input": IMAGE}),
]


@pytest.mark.parametrize("case", WRAPPERS, ids=_ids(WRAPPERS))
def test_middleware_and_guard_chat_model(case: Bad, tmp_path: Path) -> None:
    from langchain.agents import create_agent

    model = RecordingFake(messages=iter([AIMessage("should never be produced")]), calls=[])
    scorer = ScriptedScorer()
    policy: Any = case.extra.get("policy", Policy.from_string(POLICY))
    if policy == "file":
        policy = tmp_path / "broken.yaml"
        policy.write_text(BROKEN_YAML)
    context = case.extra.get("context", "general")
    with pytest.raises(case.error) as info:
        if case.payload == "middleware":
            agent = create_agent(model, tools=[], context_schema=AppContext,
                                 middleware=[PSAGuardMiddleware(policy, scorer=scorer)])
            agent.invoke({"messages": [HumanMessage("hello")]},
                         context=AppContext(app_context=context))
        else:
            guarded = guard_chat_model(model, policy, scorer=scorer)
            guarded.invoke(case.extra.get("input", "hello"),
                           config={"configurable": {"context": context}})
    _says(str(info.value), case)
    assert model.calls == [] and scorer.seen == []  # the wrapped model never ran


# =================================================================================================
# The command line
# =================================================================================================
GOOD_LINE = '{"id": 1, "prompt": "hi"}\n'

CLI = [
    Bad("cli-input-missing", "generate --input missing.jsonl", ["--input", "{tmp}/missing.jsonl"],
        ("missing.jsonl",), ("check the path given to --input",)),
    Bad("cli-input-folder", "generate --input FOLDER", ["--input", "{tmp}"],
        ("cannot read the input file",), ("check the path given to --input",)),
    Bad("cli-input-gzip", "generate --input in.jsonl.gz that is not gzip",
        ["--input", "{tmp}/in.jsonl.gz"], ("in.jsonl.gz", "cannot read the input file"),
        ("check the path given to --input",), extra={"file": "in.jsonl.gz"}),
    Bad("cli-config", "--config nope", ["--config", "nope"], ("unknown configuration 'nope'",),
        ("valid configurations: arm, base",)),
    Bad("cli-context-without-policy", "--raw --context x", ["--raw", "--context", "x"],
        ("--context",), ("needs a policy; drop --raw or --context",)),
    Bad("cli-policy-name", "--policy no_such_policy", ["--policy", "no_such_policy"],
        ("unknown policy 'no_such_policy'",), ("Shipped policies:",)),
    Bad("cli-policy-context", "--policy FILE --context nope",
        ["--policy", "{policy}", "--context", "nope"], ("unknown context 'nope'",),
        ("valid contexts: general, strict",)),
    Bad("cli-alpha-unguided", "--alpha on --config base",
        ["--config", "base", "--alpha", "empathy=1"],
        ("--alpha/--beta/--risk-threshold", "'base'"),
        ("choose a guided configuration (arm, full)",)),
    Bad("cli-alpha-item", "--config arm --alpha kindness=1",
        ["--config", "arm", "--alpha", "kindness=1"], ("--alpha item 'kindness=1'",),
        ("ATTRIBUTE one of empathy",)),
    Bad("cli-max-new-tokens", "--max-new-tokens 0", ["--max-new-tokens", "0"],
        ("max_new_tokens", "got 0"), ("from 1 to 32768",)),
    Bad("cli-temperature", "--temperature -1", ["--temperature", "-1"], ("temperature", "-1.0"),
        ("from 0 (greedy) to 5",)),
    Bad("cli-batch-size", "--batch-size 0", ["--batch-size", "0"], ("--batch-size", "got 0"),
        ("positive integer",)),
    Bad("cli-model-missing", "--model absent", ["--model", "{tmp}/absent"],
        ("absent does not exist",), ("pass an existing Hugging Face model folder",)),
    Bad("cli-argument-missing", "generate without --output", ["--no-output"],
        ("--output",), ("the following arguments are required",), extra={"exit": 2}),
    Bad("cli-argument-type", "--max-new-tokens ten", ["--max-new-tokens", "ten"],
        ("argument --max-new-tokens",), ("invalid int value: 'ten'",), extra={"exit": 2}),
]


@pytest.mark.parametrize("case", CLI, ids=_ids(CLI))
def test_cli(case: Bad, tiny_model_dir: Path, served_policy_file: Path, tmp_path: Path,
             capsys: pytest.CaptureFixture[str], forward_passes: list[int]) -> None:
    given = tmp_path / case.extra.get("file", "in.jsonl")
    given.write_text(GOOD_LINE)
    output = tmp_path / "out" / "out.jsonl"
    before = _listing(tmp_path)
    args = [a.format(tmp=tmp_path, policy=served_policy_file) for a in case.payload]
    argv = ["generate", "--model", str(tiny_model_dir), "--max-new-tokens", "2"]
    if not {"--raw", "--config", "--policy", "--context"} & set(args):
        argv.append("--raw")  # no policy: the local scorer stays unloaded
    if "--input" not in args:
        argv += ["--input", str(given)]
    if "--no-output" in args:
        args.remove("--no-output")
    else:
        argv += ["--output", str(output)]
    if case.extra.get("exit") == 2:  # argparse refuses before the command runs
        with pytest.raises(SystemExit) as exited:
            main(argv + args)
        assert exited.value.code == 2
    else:
        assert main(argv + args) == 1
    captured = capsys.readouterr()
    _says(captured.err, case)
    assert "Traceback" not in captured.err and "generated 1" not in captured.out
    assert _listing(tmp_path) == before  # no output file, no output folder
    assert forward_passes == []


# =================================================================================================
# JSONL inputs (psa-guard generate): one bad line, reported by file and line, never written
# =================================================================================================
JSONL = [
    Bad("jsonl-not-json", "a line that is not JSON", '{"id": 2, "prompt": "hi"',
        ("in.jsonl:3:", "not valid JSON"), ("write one JSON object per line",)),
    Bad("jsonl-not-object", "a JSON array line", "[2, 3]",
        ("in.jsonl:3:",), ("expected a JSON object with 'id' and 'prompt'",)),
    Bad("jsonl-no-id", "no 'id'", '{"prompt": "hi"}', ("in.jsonl:3:", "missing 'id'"),
        ("give each line an 'id' (a string or integer)",)),
    Bad("jsonl-id-type", "'id': 1.5", '{"id": 1.5, "prompt": "hi"}', ("in.jsonl:3:", "'id'"),
        ("must be a string or integer, got 1.5",)),
    Bad("jsonl-no-prompt", "neither 'prompt' nor 'messages'", '{"id": 2}',
        ("in.jsonl:3:", "missing 'prompt'"), ("(a non-empty string) or 'messages'",)),
    Bad("jsonl-blank-prompt", "'prompt': '  '", '{"id": 2, "prompt": "  "}',
        ("in.jsonl:3:", "'prompt'"), ("(a non-empty string) or 'messages'",)),
    Bad("jsonl-prompt-type", "'prompt': 5", '{"id": 2, "prompt": 5}',
        ("in.jsonl:3:", "'prompt'"), ("(a non-empty string) or 'messages'",)),
    Bad("jsonl-messages-type", "'messages': 5", '{"id": 2, "messages": 5}',
        ("in.jsonl:3:", "'messages'"), ("a list of {'role', 'content'} mappings",)),
    Bad("jsonl-messages-empty", "'messages': []", '{"id": 2, "messages": []}',
        ("in.jsonl:3:", "messages is empty"), ("pass at least one user message",)),
    Bad("jsonl-role", "a message with role 'robot'",
        '{"id": 2, "messages": [{"role": "robot", "content": "hi"}]}',
        ("in.jsonl:3:", "messages[0]", "'robot'"), ("use one of system, user, assistant, tool",)),
    Bad("jsonl-content", "a message whose content is a list",
        '{"id": 2, "messages": [{"role": "user", "content": [{"type": "text"}]}]}',
        ("in.jsonl:3:", "messages[0] content is list"), ("accepts text only",)),
    Bad("jsonl-duplicate-id", "an id already used on line 1", '{"id": 1, "prompt": "again"}',
        ("in.jsonl:3:", "duplicate id 1"), ("first on line 1", "give each line its own id")),
    Bad("jsonl-bad-utf8", "a byte that is not UTF-8", b'{"id": 2, "prompt": "caf\xe9"}',
        ("in.jsonl:3:", "not valid UTF-8"), ("save the file as UTF-8",)),
    Bad("jsonl-deep", "JSON nested 100,000 levels deep",
        '{"id": 2, "prompt": ' + "[" * 100_000 + "]" * 100_000 + "}",
        ("in.jsonl:3:", "nested too deeply"), ("write one JSON object per line",)),
]


@pytest.mark.parametrize("case", JSONL, ids=_ids(JSONL))
def test_jsonl(case: Bad, tiny_model_dir: Path, tmp_path: Path,
               capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    bad = case.payload if isinstance(case.payload, bytes) else case.payload.encode()
    source.write_bytes(GOOD_LINE.encode() + b"\n" + bad + b"\n")  # line 2 blank, line 3 bad
    records, errors = read_prompts(source)
    assert [r.id for r in records] == [1]  # the good line is kept
    assert len(errors) == 1 and errors[0].line_number == 3 and isinstance(errors[0], DataError)
    _says(str(errors[0]), case)
    # the command line: reported on stderr, the good line written whole, nothing of the bad one
    output = tmp_path / "out.jsonl"
    assert main(["generate", "--input", str(source), "--output", str(output), "--model",
                 str(tiny_model_dir), "--max-new-tokens", "2", "--raw"]) == 1
    captured = capsys.readouterr()
    _says(captured.err, case)
    text = output.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert [json.loads(line)["id"] for line in text.splitlines()] == [1]


# =================================================================================================
# Policy files: Policy.from_path and `psa-guard policy validate`, by file and line
# =================================================================================================
HEAD = "version: 1\nname: demo\ndefault_context: a\ncontexts:\n  a:\n"  # lines 1-5
PREF = ("    preference: {empathy: 1, sensitivity: 1, non_judgmental: 1, truthfulness: 1, "
        "helpfulness: 1}\n")  # line 6
OK = HEAD + PREF

POLICIES = [
    Bad("policy-yaml", "a YAML syntax error", OK + "    beta: [0.5\n",
        ("p.yaml:8:", "malformed YAML"), ("Fix: correct the syntax on that line",)),
    Bad("policy-empty", "an empty file", "", ("p.yaml:", "the file is empty"),
        ("Fix: start it with 'version: 1'",)),
    Bad("policy-top-list", "a list at the top level", "- a\n- b\n",
        ("p.yaml:", "the top level is a list"), ("Fix: write 'version: 1'",)),
    Bad("policy-version", "version: 2", OK.replace("version: 1", "version: 2"),
        ("p.yaml:1: version:", "unsupported version 2"), ("Fix: set 'version: 1'",)),
    Bad("policy-unknown-key", "a misspelt key 'preferense'", OK.replace("preference", "preferense"),
        ("p.yaml:6: contexts.a.preferense:", "unknown key"), ("allowed keys here:",)),
    Bad("policy-missing-weight", "a preference without helpfulness",
        OK.replace(", helpfulness: 1", ""), ("p.yaml:6: contexts.a.preference.helpfulness:",),
        ("Fix: add 'helpfulness:' under contexts.a.preference",)),
    Bad("policy-quoted-number", "beta: '0.5' (text)", OK + "    beta: '0.5'\n",
        ("p.yaml:7: contexts.a.beta:", "got str '0.5'"), ("(without quotes)",)),
    Bad("policy-negative-weight", "empathy: -1", OK.replace("empathy: 1", "empathy: -1"),
        ("p.yaml:6: contexts.a.preference.empathy:", "out of range"), ("at least 0",)),
    Bad("policy-infinite", "beta: .inf", OK + "    beta: .inf\n",
        ("p.yaml:7: contexts.a.beta:", "not a finite number"), ("use a finite number",)),
    Bad("policy-rule-order", "rules at 0.6 then 0.3",
        OK + "    moderation:\n      rules:\n        - {at: 0.6, action: steer}\n"
        "        - {at: 0.3, action: steer}\n",
        ("p.yaml:8: contexts.a.moderation.rules:", "must increase"),
        ("from the lowest 'at' to the highest",)),
    Bad("policy-no-message", "a refuse rule without a refuse message",
        OK + "    moderation:\n      rules:\n        - {at: 0.5, action: refuse}\n",
        ("p.yaml:9: contexts.a.moderation.rules.0.action:", "no message for it"),
        ("add 'messages: {refuse: ...}'",)),
    Bad("policy-no-resources", "refuse_with_resources without resources",
        OK + "    moderation:\n      rules:\n        - {at: 0.5, action: refuse_with_resources}\n"
        "    messages: {refuse_with_resources: No.}\n",
        ("p.yaml:9:", "has no resources"), ("add 'resources:'",)),
    Bad("policy-extends-unknown", "extends: ghost", OK + "  b:\n    extends: ghost\n",
        ("p.yaml:8: contexts.b.extends:", "'ghost'"), ("use one of: a, b",)),
    Bad("policy-cycle", "a extends b, b extends a",
        OK + "    extends: b\n  b:\n    extends: a\n",
        ("p.yaml:7:", "inheritance cycle: a -> b -> a"), ("remove 'extends' from one context",)),
    Bad("policy-default-context", "default_context names no context",
        OK.replace("default_context: a", "default_context: z"),
        ("p.yaml:3: default_context:", "'z' is not defined"), ("use one of: a",)),
    Bad("policy-duplicate-key", "beta written twice", OK + "    beta: 0.5\n    beta: 0.7\n",
        ("p.yaml:8: contexts.a.beta:", "duplicate key 'beta'"), ("remove one of them",)),
    Bad("policy-removed-key", "direg_lambda (removed)", OK + "    direg_lambda: 0.5\n",
        ("p.yaml:7: contexts.a.direg_lambda:", "no longer a policy key"), ("remove it",)),
    Bad("policy-locale", "locales: [english]",
        OK + "    resources:\n      - {name: L, contact: c, locales: [english]}\n",
        ("p.yaml:8:", "'english' is not a locale"), ("a language-REGION tag such as 'en-GB'",)),
    Bad("policy-context-name", "a context named 'KidsTutor'",
        OK.replace("default_context: a", "default_context: KidsTutor").replace("  a:", "  KidsTutor:"),
        ("p.yaml:", "'KidsTutor' is not a valid name"), ("use lowercase letters",)),
    Bad("policy-category", "a category rule on an unknown category",
        OK + "    moderation:\n      category_rules:\n        - {category: nope, at: 0.5, "
        "action: steer}\n", ("p.yaml:9:", "'nope' is not allowed here"), ("use one of:",)),
    Bad("policy-merge-key", "a YAML merge key '<<'",
        OK + "  b:\n    <<: {beta: 0.5}\n" + PREF,
        ("p.yaml:8:", "merge keys ('<<') are not supported"), ("inherit a whole context with",)),
    Bad("policy-missing-file", "a path that does not exist", None,
        ("absent.yaml", "policy file not found"), ("check the path",)),
    Bad("policy-not-utf8", "a file in Latin-1", "description: caf\xe9\n".encode("latin-1"),
        ("p.yaml", "cannot read policy file"), ("save it as UTF-8 text",)),
]


@pytest.mark.parametrize("case", POLICIES, ids=_ids(POLICIES))
def test_policy_files(case: Bad, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / ("absent.yaml" if case.payload is None else "p.yaml")
    if isinstance(case.payload, bytes):
        path.write_bytes(case.payload)
    elif case.payload is not None:
        path.write_text(case.payload, encoding="utf-8")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(PolicyError) as info:
        Policy.from_path(path)
    _says(str(info.value), case)
    assert main(["policy", "validate", str(path)]) == 1
    captured = capsys.readouterr()
    _says(captured.out + captured.err, case)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written


# =================================================================================================
# The HTTP server (create_app in process on the tiny model)
# =================================================================================================
HI = [{"role": "user", "content": "hi"}]


def _body(**fields: Any) -> dict[str, Any]:
    return {"model": "test_app", "messages": HI, **fields}


HTTP = [
    Bad("http-not-json", "a body that is not JSON", b"{not json", ("request body",),
        ("not valid JSON", "line 1 column 2"), 400),
    Bad("http-not-utf8", "a body that is not UTF-8", b"\xff\xfe{}", ("request body",),
        ("not valid JSON",), 400),
    Bad("http-not-object", "a JSON array body", [], ("request body",),
        ("must be a JSON object",), 400),
    Bad("http-no-model", "no 'model'", {"messages": HI}, ("model:",), ("Field required",), 400,
        "model"),
    Bad("http-model-type", "'model': 5", _body(model=5), ("model:",),
        ("Input should be a valid string",), 400, "model"),
    Bad("http-messages-type", "'messages': 'hi'", _body(messages="hi"), ("messages:",),
        ("Input should be a valid list",), 400, "messages"),
    Bad("http-messages-empty", "'messages': []", _body(messages=[]), ("messages",),
        ("send at least one user message",), 400, "messages"),
    Bad("http-role", "role 'robot'", _body(messages=[{"role": "robot", "content": "hi"}]),
        ("messages[0].role", "'robot'"), ("is not one of system, developer, user",), 400,
        "messages[0].role"),
    Bad("http-image", "an image_url content part",
        _body(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
        ("messages[0].content[0]",), ("accepts text only",), 400, "messages[0].content"),
    Bad("http-tool-arguments", "tool_calls whose arguments are not JSON",
        _body(messages=[*HI, {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{bad"}}]}]),
        ("messages[1].tool_calls",), ("arguments are not JSON",), 400, "messages[1].tool_calls"),
    Bad("http-tool-shape", "a tool without a function name", _body(tools=[{"type": "function"}]),
        ("tools[0]",), ("write each as {'type': 'function', 'function': {'name': ...",), 400,
        "tools[0]"),
    Bad("http-tool-choice", "tool_choice naming no bound tool",
        _body(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}}),
        ("tool_choice 'nope'",), ("bound: get_weather",), 400, "tool_choice"),
    Bad("http-unknown-model", "'model': 'nope'", _body(model="nope"), ("model 'nope'",),
        ("served models: test_app, test_app/strict",), 404, "model"),
    Bad("http-temperature", "'temperature': -1", _body(temperature=-1), ("temperature",),
        (">= 0",), 400, "temperature"),
    Bad("http-temperature-high", "'temperature': 9", _body(temperature=9), ("temperature",),
        ("from 0 (greedy) to 5",), 400, "temperature"),
    Bad("http-top-p", "'top_p': 0", _body(top_p=0), ("top_p",), ("in (0, 1]",), 400, "top_p"),
    Bad("http-seed", "'seed': -1", _body(seed=-1), ("seed",), ("non-negative integer",), 400,
        "seed"),
    Bad("http-seed-huge", "'seed': 2**64", _body(seed=2**64), ("seed",),
        ("from 0 to 18446744073709551615",), 400, "seed"),
    Bad("http-stop", "'stop': ['']", _body(stop=[""]), ("stop",), ("non-empty strings",), 400,
        "stop"),
    Bad("http-max-tokens-zero", "'max_tokens': 0", _body(max_tokens=0), ("max_tokens",),
        (f"from 1 to {SERVED_MAX_TOKENS}",), 400, "max_tokens"),
    Bad("http-max-tokens-cap", "'max_tokens' above the policy's cap",
        _body(max_tokens=SERVED_MAX_TOKENS + 1), ("max_tokens",),
        ("its policy's serving.max_tokens",), 400, "max_tokens"),
    Bad("http-max-completion-tokens", "'max_completion_tokens': 100",
        _body(max_completion_tokens=100), ("max_completion_tokens",),
        (f"from 1 to {SERVED_MAX_TOKENS}",), 400, "max_completion_tokens"),
    Bad("http-max-tokens-type", "'max_tokens': 'ten'", _body(max_tokens="ten"), ("max_tokens:",),
        ("Input should be a valid integer",), 400, "max_tokens"),
    Bad("http-n", "'n': 2", _body(n=2), ("n must be 1",), ("returns one choice",), 400, "n"),
    Bad("http-preference-not-allowed", "a preference on a context that forbids it",
        _body(model="test_app/strict", psa_guard={"preference": {"empathy": 1}}),
        ("psa_guard.preference", "serving.client_preference is false"),
        ("does not let requests override",), 400, "psa_guard.preference"),
    Bad("http-preference-unknown", "psa_guard.preference {'kindness': 1}",
        _body(psa_guard={"preference": {"kindness": 1}}), ("psa_guard.preference", "'kindness"),
        ("ATTRIBUTE one of empathy",), 400, "psa_guard.preference"),
    Bad("http-beta", "psa_guard.beta 0", _body(psa_guard={"beta": 0}), ("psa_guard.beta:",),
        ("greater than 0",), 400, "psa_guard.beta"),
    Bad("http-extension-key", "an unknown psa_guard field", _body(psa_guard={"colour": "red"}),
        ("psa_guard.colour:",), ("Extra inputs are not permitted",), 400, "psa_guard.colour"),
    Bad("http-too-long", "a prompt past the model's window",
        _body(messages=[{"role": "user", "content": "word " * 400}]),
        ("messages", "accepts at most 256"), ("shorten the conversation",), 400, "messages"),
    Bad("http-too-big", "a body over --max-body-bytes",
        _body(messages=[{"role": "user", "content": "x" * 30_000}]),
        ("request body",), ("larger than 20000 bytes",), 413),
    Bad("http-stream-bad", "stream: true with max_tokens 0 (refused before the stream)",
        _body(stream=True, max_tokens=0), ("max_tokens",), ("from 1 to",), 400, "max_tokens"),
]


@pytest.mark.parametrize("case", HTTP, ids=_ids(HTTP))
def test_http_server(case: Bad, client: Any, forward_passes: list[int]) -> None:
    raw = case.payload if isinstance(case.payload, bytes) else json.dumps(case.payload).encode()
    response = client.post("/v1/chat/completions", content=raw,
                           headers={"content-type": "application/json"})
    error = assert_openai_error(response, case.error)
    assert error["param"] == case.param
    _says(f"{error['param']}: {error['message']}", case)  # the field, in param or the message
    assert "--" not in error["message"]  # the field's name over HTTP, not a CLI flag
    assert forward_passes == []  # refused before generation: nothing of a reply exists


# =================================================================================================
# Server configuration: ServeConfig, the policies served and the API key file (create_app)
# =================================================================================================
KEY = "sk-0123456789abcdef"

SERVER_CONFIG = [
    Bad("serve-keys-missing", "--api-keys naming no file", {"keys": None},
        ("absent.yaml", "cannot read the API key file"), ("check the path given to --api-keys",)),
    Bad("serve-keys-utf8", "a key file in Latin-1", {"keys": f"keys: [{{key: {KEY}\xe9}}]\n"},
        ("keys.yaml", "not UTF-8 text"), ("save it as UTF-8",), extra={"latin1": True}),
    Bad("serve-keys-yaml", "a key file with a YAML syntax error",
        {"keys": f'keys:\n  - key: "{KEY}\n'}, ("keys.yaml", "not valid YAML at line"),
        ("correct the syntax there",)),
    Bad("serve-keys-shape", "a key file without a 'keys' list", {"keys": "nope: 1\n"},
        ("keys.yaml", "'keys' list"), ("e.g. keys: [{key: sk-..., apps: [general_assistant]}]",)),
    Bad("serve-key-short", "a key of 5 characters", {"keys": "keys: [{key: short, apps: ['*']}]\n"},
        ("keys.yaml: keys[0].key",), ("at least 16 characters", "openssl rand -hex 24")),
    Bad("serve-key-apps", "a key with no apps", {"keys": f"keys: [{{key: {KEY}, apps: []}}]\n"},
        ("keys.yaml: keys[0].apps",), ("a non-empty list of model ids, or ['*']",)),
    Bad("serve-key-unknown-app", "a key for a misspelt model id",
        {"keys": f"keys: [{{key: {KEY}, apps: [test_ap]}}]\n"},
        ("keys.yaml: keys[0].apps", "'test_ap'"), ("use one of test_app, test_app/strict",)),
    Bad("serve-key-twice", "the same key in two entries",
        {"keys": f"keys: [{{key: {KEY}, apps: ['*']}}, {{key: {KEY}, apps: ['*']}}]\n"},
        ("keys.yaml", "listed twice"), ("give each key one entry",)),
    Bad("serve-public-bind", "host 0.0.0.0 without keys", {"config": {"host": "0.0.0.0"}},
        ("refusing to bind 0.0.0.0",), ("pass --api-keys FILE, bind 127.0.0.1",)),
    Bad("serve-max-queue", "max_queue=0", {"config": {"max_queue": 0}}, ("--max-queue", "got 0"),
        ("positive integer",)),
    Bad("serve-timeout", "timeout_s=0", {"config": {"timeout_s": 0}}, ("--timeout", "got 0"),
        ("positive number of seconds",)),
    Bad("serve-port", "port=70000", {"config": {"port": 70000}}, ("--port", "70000"),
        ("in 0..65535",)),
    Bad("serve-policy", "--policy no_such_policy", {"config": {"policies": ("no_such_policy",)}},
        ("unknown policy 'no_such_policy'",), ("Shipped policies:",), PolicyError),
    Bad("serve-same-model-id", "one policy served twice (the same model ids)",
        {"config": {"policies": "twice"}}, ("both named 'test_app'",), ("serve one of them",),
        PolicyError),
]


@pytest.mark.parametrize("case", SERVER_CONFIG, ids=_ids(SERVER_CONFIG))
def test_server_configuration(case: Bad, tmp_path: Path, tiny_model_dir: Path,
                              served_policy_file: Path) -> None:
    from psa_guard.serve.app import create_app
    from psa_guard.serve.config import ServeConfig

    fields: dict[str, Any] = {"policies": (str(served_policy_file),), "model": str(tiny_model_dir)}
    if "keys" in case.payload:
        keys = case.payload["keys"]
        fields["api_keys"] = tmp_path / ("absent.yaml" if keys is None else "keys.yaml")
        if keys is not None:
            fields["api_keys"].write_bytes(
                keys.encode("latin-1" if case.extra.get("latin1") else "utf-8"))
    fields.update(case.payload.get("config", {}))
    if fields["policies"] == "twice":
        fields["policies"] = (str(served_policy_file),) * 2
    before = _listing(tmp_path)
    with pytest.raises(case.error or ConfigurationError) as info:
        create_app(ServeConfig(**fields), scorer=ScriptedScorer())
    _says(str(info.value), case)
    assert KEY not in str(info.value) and KEY[:12] not in str(info.value)  # keys never shown
    assert _listing(tmp_path) == before


# =================================================================================================
# Moderation HTTP responses: every malformed reply fails closed, naming the field and the fix
# =================================================================================================
URL = "http://moderation.test/v1/moderations"
SCORES = {"category_scores": {"hate": 0.1}}

MODERATION = [
    Bad("moderation-not-json", "200 with an HTML body", (200, b"<html>oops</html>", {}),
        ("response is not JSON",), ('must answer {"results": [',), extra={"attempts": 2}),
    Bad("moderation-no-results", "200 without 'results'", (200, {"data": []}, {}),
        ("no 'results' list",), ('must answer {"results": [',), extra={"attempts": 2}),
    Bad("moderation-count", "two results for one input", (200, {"results": [SCORES, SCORES]}, {}),
        ("2 results for 1 inputs",), ("one result per input",), extra={"attempts": 2}),
    Bad("moderation-result-type", "a result that is a number", (200, {"results": [1]}, {}),
        ("a result is not a JSON object",), ('must answer {"results": [',),
        extra={"attempts": 2}),
    Bad("moderation-no-scores", "a result without category_scores",
        (200, {"results": [{"flagged": True}]}, {}), ("no category_scores object",),
        ('{"category_scores": {',), extra={"attempts": 2}),
    Bad("moderation-score-text", "a category score 'high'",
        (200, {"results": [{"category_scores": {"hate": "high"}}]}, {}),
        ("category_scores['hate']", "'high'"), ("a finite number",), extra={"attempts": 2}),
    Bad("moderation-score-nan", "a category score NaN",
        (200, b'{"results": [{"category_scores": {"hate": NaN}}]}', {}),
        ("category_scores['hate']", "nan"), ("a finite number",), extra={"attempts": 2}),
    Bad("moderation-401", "401 with an OpenAI error body",
        (401, {"error": {"message": "Incorrect API key"}}, {}),
        ("HTTP 401 (Incorrect API key)", "not retried"), ("check the URL and the API key",),
        extra={"attempts": 1}),
    Bad("moderation-400-text", "400 with a plain-text body", (400, b"bad input", {}),
        ("HTTP 400 (bad input)",), ("check the URL and the API key",), extra={"attempts": 1}),
    Bad("moderation-redirect", "302 to another URL",
        (302, b"", {"location": "http://elsewhere.test/"}), ("HTTP 302",),
        ("use the final URL",), extra={"attempts": 1}),
    Bad("moderation-500", "500 on every attempt", (500, b"", {}), ("HTTP 500 after 2 attempts",),
        ("the reply is withheld",), extra={"attempts": 2}),
    Bad("moderation-429", "429 with Retry-After past the budget",
        (429, b"", {"retry-after": "999"}), ("HTTP 429", "Retry-After 999s exceeds"),
        ("the reply is withheld",), extra={"attempts": 1}),
]


def scripted_scorer(status: int, body: Any, headers: dict[str, str],
                    seen: list[httpx.Request] | None = None, **settings: Any
                    ) -> HTTPModerationScorer:
    """An HTTPModerationScorer whose every request gets the same scripted reply (in process:
    an httpx MockTransport stands in for the network)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()

    def reply(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, content=content, headers=headers)

    scorer = HTTPModerationScorer(URL, max_attempts=2, budget=5.0, backoff_initial=0.001,
                                  backoff_max=0.002, jitter=0.0, **settings)
    scorer._client = httpx.Client(transport=httpx.MockTransport(reply))  # noqa: SLF001
    return scorer


@pytest.mark.parametrize("case", MODERATION, ids=_ids(MODERATION))
def test_moderation_responses(case: Bad) -> None:
    seen: list[httpx.Request] = []
    scorer = scripted_scorer(*case.payload, seen=seen)
    with pytest.raises(ModerationUnavailableError) as info:
        scorer.score(["hello"])
    _says(str(info.value), case)
    assert URL in str(info.value)  # which endpoint
    assert len(seen) == case.extra["attempts"]
    scores, reason = score_texts(scorer, ["hello"])
    assert scores == [None] and reason  # no partial score: fail closed, with the reason


def test_moderation_failure_withholds_the_reply() -> None:
    """End to end: a malformed moderation reply means the policy's fail-closed message, and the
    guarded model is never called."""
    model = RecordingFake(messages=iter([AIMessage("should never be produced")]), calls=[])
    scorer = scripted_scorer(200, {"data": []}, {})
    reply = guard_chat_model(model, Policy.from_string(POLICY), scorer=scorer).invoke("hello")
    assert reply.content == "Blocked for safety." and model.calls == []
    actions = reply.response_metadata["psa_guard"]["actions"]
    assert actions[0]["action"] == "block" and "no 'results' list" in actions[0]["reason"]


# =================================================================================================
# The doc lists every case
# =================================================================================================
SURFACES: dict[str, list[Bad]] = {
    "Python API: ChatPSAGuard(...)": API_CONSTRUCTION,
    "Python API: ChatPSAGuard calls": API_CALLS,
    "Python API: middleware, guard_chat_model": WRAPPERS,
    "CLI": CLI,
    "JSONL input": JSONL,
    "policy file": POLICIES,
    "HTTP server": HTTP,
    "server configuration": SERVER_CONFIG,
    "moderation HTTP response": MODERATION,
}


def test_cases_are_distinct_and_enough() -> None:
    cases = [case for group in SURFACES.values() for case in group]
    assert len({case.id for case in cases}) == len(cases) >= 60


def test_the_doc_lists_every_case() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [case.id for group in SURFACES.values() for case in group
               if f"| `{case.id}` |" not in text]
    assert missing == []


def doc_rows() -> str:
    """The markdown rows of the doc's table (``python -c`` prints them when cases change)."""
    checks: dict[str, str] = {
        "Python API: ChatPSAGuard(...)": "no forward pass, no file",
        "Python API: ChatPSAGuard calls": "no forward pass, scorer not asked, no file",
        "Python API: middleware, guard_chat_model": "wrapped model not called, scorer not asked",
        "CLI": "no output file or folder, no forward pass",
        "JSONL input": "good lines written whole, bad line absent",
        "policy file": "folder unchanged",
        "HTTP server": "no `choices`, no forward pass",
        "server configuration": "no app, folder unchanged, no key in the message",
        "moderation HTTP response": "no score (fail closed)",
    }
    rows = []
    for surface, cases in SURFACES.items():
        for case in cases:
            named = " ".join(f"`{p}`" for p in case.place)
            fix = " ".join(f"`{f}`" for f in case.fix)
            rows.append(f"| `{case.id}` | {surface} | {case.what} | {named} | {fix} | "
                        f"{checks[surface]} |")
    return "\n".join(rows)

