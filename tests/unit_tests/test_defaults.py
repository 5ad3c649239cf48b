"""The default protects: ChatPSAGuard() and the CLI apply the general policy with the default
guarded configuration; the raw model is one argument away."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from langchain_psa_guard import ChatPSAGuard
from psa_guard.cli import main
from psa_guard.defaults import DEFAULT_CONFIG, DEFAULT_POLICY, RAW_CONFIG
from psa_guard.errors import ConfigurationError
from psa_guard.generation import ChatGenerator, GenerationSettings
from psa_guard.loading import LoadedModel
from psa_guard.pipeline import RequestOptions, RequestPipeline
from tests.doubles import ScriptedScorer


def test_chat_model_defaults_to_the_guarded_app() -> None:
    llm = ChatPSAGuard()
    assert llm.configuration == DEFAULT_CONFIG == "direg"
    assert llm.policy == DEFAULT_POLICY == "general_assistant"
    pipeline = llm.pipeline()
    assert pipeline.guarded and pipeline.policy_guard().policy.name == "general_assistant"
    assert llm._identifying_params["policy"] == "general_assistant"


def test_raw_is_one_argument_away() -> None:
    llm = ChatPSAGuard(raw=True)
    assert llm.configuration == RAW_CONFIG and llm.policy is None
    assert not llm.pipeline().guarded
    assert ChatPSAGuard(raw=True, config="base", policy=None).policy is None


@pytest.mark.parametrize("kwargs, named", [({"config": "full"}, "config='full'"),
                                           ({"policy": "mental_health_support"}, "policy=")])
def test_raw_with_a_guard_is_refused(kwargs: dict, named: str) -> None:
    with pytest.raises((ConfigurationError, ValidationError), match=named):
        ChatPSAGuard(raw=True, **kwargs)


def test_policy_none_is_no_policy_with_the_default_config() -> None:
    llm = ChatPSAGuard(policy=None)
    assert llm.configuration == DEFAULT_CONFIG and not llm.pipeline().guarded


def test_default_config_falls_back_to_base_where_no_harm_vector_fits(
        tiny_loaded: LoadedModel, caplog: pytest.LogCaptureFixture) -> None:
    # the shipped harm vector is for SmolLM2-135M: the tiny model's checksum does not match
    pipeline = RequestPipeline(None, scorer=ScriptedScorer(), loader=lambda _: tiny_loaded)
    with caplog.at_level("WARNING"):
        generator = pipeline.generator()
    assert "cannot apply" in caplog.text and "direg" in caplog.text
    settings = GenerationSettings(max_new_tokens=4)
    assert generator.generate(["hi"], settings)[0].text == ChatGenerator(tiny_loaded).generate(
        ["hi"], settings)[0].text


def test_an_explicit_direg_on_a_model_it_does_not_fit_is_an_error(tiny_loaded: LoadedModel
                                                                   ) -> None:
    from psa_guard.errors import HarmVectorError

    pipeline = RequestPipeline("direg", loader=lambda _: tiny_loaded)
    with pytest.raises(HarmVectorError):
        pipeline.run("hi", RequestOptions(settings=GenerationSettings(max_new_tokens=2)))


def test_cli_generate_applies_the_default_policy(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "prompt": "hi"}\n')
    out = tmp_path / "out.jsonl"
    assert main(["generate", "--input", str(src), "--output", str(out), "--model",
                 str(tiny_model_dir), "--max-new-tokens", "3"]) == 0
    row = json.loads(out.read_text())
    assert row["context"] == "general_assistant" and row["config"] == "base"  # fell back
    assert [a["stage"] for a in row["actions"]] == ["input", "output"]
    raw = tmp_path / "raw.jsonl"
    assert main(["generate", "--input", str(src), "--output", str(raw), "--model",
                 str(tiny_model_dir), "--max-new-tokens", "3", "--raw"]) == 0
    row = json.loads(raw.read_text())
    assert "actions" not in row and row["config"] == "base"


def test_cli_raw_with_a_policy_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    assert main(["chat", "--prompt", "hi", "--raw", "--policy", "kids_tutor"]) == 1
    assert "--raw means no policy" in capsys.readouterr().err
