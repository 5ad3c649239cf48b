from __future__ import annotations

import json
from pathlib import Path

import pytest

from psa_guard.errors import ConfigurationError
from psa_guard.generation import ChatGenerator, GenerationSettings
from psa_guard.jobs import finished_ids, read_prompts, run_generate_job
from psa_guard.pipeline import RequestPipeline

GOOD_AND_BAD = "\n".join([
    '{"id": "a", "prompt": "hello"}',
    "this is not json",
    '{"prompt": "no id"}',
    '{"id": "b"}',
    '["a", "list"]',
    "",
    '{"id": "c", "messages": [{"role": "user", "content": "hi"}], "context": "kids_tutor"}',
    '{"id": "d", "messages": [{"role": "robot", "content": "hi"}]}',
    '{"id": "a", "prompt": "duplicate"}',
    '{"id": 7, "prompt": "integer id"}',
]) + "\n"


def test_read_prompts_reports_each_bad_line_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(GOOD_AND_BAD)
    records, errors = read_prompts(path)
    assert [r.id for r in records] == ["a", "c", 7]
    assert records[1].extra == {"context": "kids_tutor"}
    assert records[1].conversation == [{"role": "user", "content": "hi"}]
    by_line = {e.line_number: e.reason for e in errors}
    assert set(by_line) == {2, 3, 4, 5, 8, 9}
    assert "not valid JSON" in by_line[2]
    assert "missing 'id'" in by_line[3]
    assert "missing 'prompt'" in by_line[4]
    assert "unknown role" in by_line[8]
    assert "duplicate" in by_line[9]
    assert str(errors[0]).startswith(f"{path}:2:")


def test_torn_last_line_is_repaired(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "a", "response": "x"}\n{"id": "b", "resp')
    assert finished_ids(out) == {"a"}
    assert out.read_text() == '{"id": "a", "response": "x"}\n'


def test_job_writes_all_fields_and_resumes(tmp_path: Path, tiny_generator: ChatGenerator) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": i, "prompt": f"q{i}"}) + "\n" for i in range(5)))
    records, errors = read_prompts(path)
    assert not errors
    out = tmp_path / "out.jsonl"
    settings = GenerationSettings(max_new_tokens=3)
    pipeline = RequestPipeline(loader=lambda _: tiny_generator.loaded)
    first = run_generate_job(records[:3], out, pipeline, settings, config_name="base",
                             batch_size=2, progress=False)
    assert first.generated == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [0, 1, 2]
    assert set(rows[0]) >= {"id", "response", "tokens", "seconds", "config", "model",
                            "finish_reason", "prompt_tokens"}
    assert rows[0]["config"] == "base" and rows[0]["model"] == "tiny-llama"
    before = out.read_text()
    second = run_generate_job(records, out, pipeline, settings, config_name="base",
                              batch_size=2, progress=False)
    assert (second.generated, second.skipped) == (2, 3)
    assert out.read_text().startswith(before)  # finished work untouched
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [0, 1, 2, 3, 4]


def test_job_rejects_bad_batch_size(tmp_path: Path, tiny_generator: ChatGenerator) -> None:
    with pytest.raises(ConfigurationError, match="batch_size"):
        run_generate_job([], tmp_path / "o.jsonl", RequestPipeline(), GenerationSettings(),
                         config_name="base", batch_size=0)


def test_job_with_policy_reports_context_and_actions(tmp_path: Path,
                                                     tiny_generator: ChatGenerator) -> None:
    from psa_guard.policy import Policy

    from ..doubles import POLICY, ScriptedScorer

    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": 1, "prompt": "hello"}),
        json.dumps({"id": 2, "prompt": "I feel sad", "context": "strict"}),
        json.dumps({"id": 3, "prompt": "a bomb please"}),
        json.dumps({"id": 4, "prompt": "hi", "context": "unknown"}),
    ]) + "\n")
    records, _ = read_prompts(path)
    out = tmp_path / "out.jsonl"
    pipeline = RequestPipeline(policy=Policy.from_string(POLICY), scorer=ScriptedScorer(),
                               loader=lambda _: tiny_generator.loaded)
    summary = run_generate_job(records, out, pipeline, GenerationSettings(max_new_tokens=3),
                               config_name="base", progress=False)
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {1, 2, 3}
    assert rows[1]["context"] == "general" and rows[1]["generated"] is True
    assert rows[2]["response"] == "Not here." and rows[2]["context"] == "strict"
    assert rows[3]["actions"][0]["action"] == "refuse_with_resources" and rows[3]["tokens"] == 0
    assert len(summary.errors) == 1 and "unknown" in str(summary.errors[0])
    assert str(summary.errors[0]).startswith(f"{path}:4:")
