from __future__ import annotations

import json
from pathlib import Path

import pytest

from psa_guard.cli import main
from psa_guard.generation import ChatGenerator, GenerationSettings
from psa_guard.loading import load_model


def test_generate_end_to_end_on_a_model_folder(tmp_path: Path, tiny_model_dir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "prompt": "hi"}\nnot json\n{"id": 2, "prompt": "yo"}\n')
    out = tmp_path / "out.jsonl"
    argv = ["generate", "--input", str(src), "--output", str(out), "--model", str(tiny_model_dir),
            "--max-new-tokens", "3", "--batch-size", "2", "--seed", "1"]
    assert main(argv) == 1  # one bad line is reported, the rest processed
    captured = capsys.readouterr()
    assert f"{src}:2: not valid JSON" in captured.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2]
    assert main(argv) == 1
    assert "generated 0, already done 2" in capsys.readouterr().out


def test_unknown_config_lists_valid_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "prompt": "hi"}\n')
    code = main(["generate", "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
                 "--config", "nope"])
    assert code == 1
    assert "unknown configuration 'nope'" in capsys.readouterr().err


def test_missing_model_folder_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["chat", "--prompt", "hi", "--model", str(tmp_path / "absent")])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err


def test_chat_one_shot(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--prompt", "hi", "--model", str(tiny_model_dir), "--raw",
                 "--max-new-tokens", "4"]) == 0
    expected = ChatGenerator(load_model(tiny_model_dir)).generate(
        ["hi"], GenerationSettings(max_new_tokens=4))[0].text
    assert capsys.readouterr().out == expected + "\n"


def test_info_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "PSA_GUARD_HOME" in out and "base" in out
