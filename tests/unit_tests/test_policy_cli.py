"""``psa-guard policy validate`` and ``psa-guard policy schema``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from psa_guard.policy import commands, policy_json_schema_text

ROOT = Path(__file__).resolve().parents[2]
GOOD = (
    "version: 1\nname: good\ndefault_context: a\ncontexts:\n  a:\n"
    "    preference: {empathy: 1, sensitivity: 1, non_judgmental: 1, truthfulness: 1, "
    "helpfulness: 1}\n"
)


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="psa-guard")
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_validate_exit_0_when_all_files_are_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert _run(["policy", "validate", str(good), str(ROOT / "policies")]) == 0
    out = capsys.readouterr().out
    assert f"ok {good}" in out
    assert "mental_health_support.yaml" in out


def test_validate_exit_1_prints_file_line_key_and_fix_per_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    typo = tmp_path / "typo.yaml"
    typo.write_text(GOOD.replace("empathy: 1", "empathi: 1"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nname: [x\n")
    assert _run(["policy", "validate", str(good), str(typo), str(broken)]) == 1
    captured = capsys.readouterr()
    assert f"ok {good}" in captured.out
    assert f"{typo}:6: contexts.a.preference.empathi: unknown key 'empathi'" in captured.err
    assert "Fix: remove it or correct the spelling" in captured.err
    assert f"{broken}:" in captured.err and "malformed YAML" in captured.err
    assert "2 of 3 policy files invalid" in captured.err


def test_validate_missing_file_and_empty_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["policy", "validate", str(tmp_path / "absent.yaml")]) == 1
    assert "not found" in capsys.readouterr().err
    assert _run(["policy", "validate", str(tmp_path)]) == 1


def test_validate_accepts_shipped_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run(["policy", "validate", "kids_tutor", "medical_info"]) == 0
    out = capsys.readouterr().out
    assert "ok kids_tutor: policy 'kids_tutor', contexts kids_tutor, kids_tutor_teen" in out
    assert "ok medical_info: policy 'medical_info'" in out
    assert _run(["policy", "validate", "kids"]) == 1
    err = capsys.readouterr().err
    assert "unknown policy 'kids'" in err and "kids_tutor" in err
    assert "1 of 1 policy files invalid" in err


def test_schema_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["policy", "schema"]) == 0
    out = capsys.readouterr().out
    assert out == policy_json_schema_text()
    assert json.loads(out)["title"] == "psa-guard policy"


def test_policy_without_subcommand_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["policy"]) == 1
    assert "validate" in capsys.readouterr().err


def test_cli_entry_point_runs_policy_validate(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD + "    beta: -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "psa_guard.cli", "policy", "validate", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert f"{bad}:7: contexts.a.beta:" in result.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "psa_guard.cli", "policy", "validate", "policies"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
