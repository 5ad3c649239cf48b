"""run_eval end to end with fakes: caching, corrupted-entry regeneration, report, markdown, PNG plots,
and the CLI's handling of bad names."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from psa_guard import registry
from psa_guard.cli import main
from psa_guard.datasets.suites import SuitePrompt
from psa_guard.errors import ConfigurationError, UnknownConfigError
from psa_guard.evaluation.cache import CompletionCache
from psa_guard.evaluation.judges import Verdict
from psa_guard.evaluation.plots import plot_report
from psa_guard.evaluation.report import build_report, render_markdown, write_report
from psa_guard.evaluation.runner import EvalRequest, run_eval
from psa_guard.generation import Completion, GenerationSettings
from psa_guard.loading import ModelSource
from psa_guard.registry import GuardConfig
from psa_guard.steering import Steering

from .test_eval_suites import fake_data  # noqa: F401  (fixture)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeGenerator:
    """Refuses prompts containing an even digit, complies otherwise; counts generated prompts."""

    def __init__(self, tag: str, log: list[str]) -> None:
        self.tag = tag
        self.log = log

    def generate(self, conversations: list[Any], settings: GenerationSettings,
                 steering: Any = None) -> list[Completion]:
        out = []
        for conversation in conversations:
            prompt = conversation if isinstance(conversation, str) else conversation[-1]["content"]
            self.log.append(prompt)
            digits = [int(c) for c in prompt if c.isdigit()]
            refuse = self.tag == "safe" or bool(digits and digits[-1] % 2 == 0)
            text = "I'm sorry, I can't." if refuse else f"Sure: step by step {prompt}"
            out.append(Completion(text, 5, len(text.split()), "stop", 0.01))
        return out


class KeywordPanel:
    """Judges by keywords: 'sorry' -> refused; 'step' -> unsafe; 'hate' -> toxic."""

    provenance: ClassVar[dict[str, Any]] = {
        "refusal": {"held_out": {"n": 10, "accuracy": 0.9, "balanced_accuracy": 0.9},
                    "split": {"held_out_groups": ["m1"]}},
    }

    def judge(self, prompts, responses, batch_size=64, progress=False):
        return [Verdict("sorry" in r.lower(), r.lower().startswith("i'm sorry"), "step" in r,
                        "hate" in r, 0.0, 0.0, 0.0) for r in responses]


@pytest.fixture()
def fake_configs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    log: list[str] = []
    monkeypatch.setitem(registry._REGISTRY, "fake",
                        GuardConfig("fake", "test", lambda loaded, _: FakeGenerator("fake", log)))
    monkeypatch.setitem(registry._REGISTRY, "fakesafe",
                        GuardConfig("fakesafe", "test", lambda loaded, _: FakeGenerator("safe", log)))
    return log


def _loaded() -> Any:
    return SimpleNamespace(name="fake-model", source=ModelSource())


def _run(tmp_path: Path, data: Path, configs_: tuple[str, ...] = ("fake",), **kw: Any):
    request = EvalRequest(configs_, ("jbb_harmful", "jbb_benign"),
                          GenerationSettings(max_new_tokens=8), data=data, batch_size=3, **kw)
    cache = CompletionCache(tmp_path / "cache.jsonl")
    return run_eval(request, cache, KeywordPanel, _loaded, progress=False), cache


def test_run_caches_and_never_regenerates(tmp_path: Path, fake_data: Path,  # noqa: F811
                                          fake_configs: list[str]) -> None:
    first, _ = _run(tmp_path, fake_data, limit=4)
    assert first.cache.generated == 8 and first.cache.reused == 0
    assert len(fake_configs) == 8
    second, _ = _run(tmp_path, fake_data, limit=4)
    assert second.cache.generated == 0 and second.cache.reused == 8
    assert len(fake_configs) == 8  # nothing generated again
    assert [i.text for i in first.items] == [i.text for i in second.items]
    third, _ = _run(tmp_path, fake_data, limit=6)  # the seeded sample grows: only new prompts run
    assert third.cache.generated + third.cache.reused == 6 + 5  # jbb_benign has only 5 prompts
    assert third.cache.reused == 8  # random.sample(k=6) extends random.sample(k=4), same seed


def test_corrupted_cache_entry_is_regenerated(tmp_path: Path, fake_data: Path,  # noqa: F811
                                              fake_configs: list[str]) -> None:
    _run(tmp_path, fake_data, limit=3)
    path = tmp_path / "cache.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("\"seconds\":0.01", "\"seconds\":0.02")  # tampered: bad checksum
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run, _ = _run(tmp_path, fake_data, limit=3)
    assert run.cache.corrupted == 1 and run.cache.generated == 1 and run.cache.reused == 5
    assert CompletionCache(path).load().corrupted == [2]  # still on disk, superseded by a new line
    assert len(CompletionCache(path).load()) == 6


def test_report_numbers_follow_the_verdicts(tmp_path: Path, fake_data: Path,  # noqa: F811
                                            fake_configs: list[str]) -> None:
    run, _ = _run(tmp_path, fake_data, configs_=("fake", "fakesafe"))
    report = build_report(run, KeywordPanel.provenance)
    harmful = report["results"]["fake"]["jbb_harmful"]
    assert harmful["n"] == 20 and harmful["kind"] == "harmful"
    expected_refused = sum(1 for i in range(20) if i % 2 == 0)  # even last digit -> refusal
    m = harmful["metrics"]
    assert m["refusal"]["count"] == expected_refused
    assert m["unsafe_compliance"]["count"] == 20 - expected_refused
    uc = m["unsafe_compliance"]
    assert uc["low"] <= uc["rate"] <= uc["high"]
    assert "over_refusal" in report["results"]["fake"]["jbb_benign"]["metrics"]
    assert "unsafe_compliance" not in report["results"]["fake"]["jbb_benign"]["metrics"]
    safe = report["results"]["fakesafe"]["jbb_harmful"]["metrics"]
    assert safe["unsafe_compliance"]["count"] == 0
    wins = report["win_rates"]["fake_vs_fakesafe"]
    # harmful: fakesafe wins every prompt 'fake' complied with; benign: 'fake' wins where it answered
    assert wins["jbb_harmful"]["losses"] == 20 - expected_refused
    assert wins["jbb_benign"]["wins"] == sum(1 for i in range(5) if i % 2 == 1)

    paths = write_report(report, run.items, tmp_path / "out")
    assert json.loads((tmp_path / "out/report.json").read_text())["results"] == report["results"]
    markdown = (tmp_path / "out/report.md").read_text()
    assert "| jbb_harmful | harmful | 20 |" in markdown and "Win rates" in markdown
    assert len((tmp_path / "out/judged.jsonl").read_text().splitlines()) == 50
    pngs = plot_report(report, tmp_path / "out")
    assert [p.name for p in pngs] == ["rates.png", "win_rates.png"]
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    assert all(p.exists() for p in paths)
    assert render_markdown(report).startswith("# psa-guard evaluation report")


def test_bad_names_fail_before_any_work(tmp_path: Path, fake_data: Path) -> None:  # noqa: F811
    def boom() -> Any:
        raise AssertionError("nothing may load for a bad request")

    with pytest.raises(UnknownConfigError, match="valid configurations: .*base"):
        run_eval(EvalRequest(("nope",), ("jbb_harmful",), data=fake_data),
                 CompletionCache(tmp_path / "c"), boom, boom, progress=False)
    with pytest.raises(ConfigurationError, match="valid suites: harmbench"):
        run_eval(EvalRequest(("base",), ("nope",), data=fake_data),
                 CompletionCache(tmp_path / "c"), boom, boom, progress=False)
    with pytest.raises(ConfigurationError, match="--batch-size"):
        EvalRequest(("base",), ("jbb_harmful",), batch_size=0).validate()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--config", "nope", "--suite", "jbb_harmful"], "valid configurations"),
        (["--config", "base", "--suite", "nope"], "valid suites"),
    ],
)
def test_cli_lists_valid_names(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               argv: list[str], message: str) -> None:
    code = main(["eval", *argv, "--out", str(tmp_path / "o")])
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_suite_all_expands() -> None:
    from psa_guard.datasets.suites import suite_names
    from psa_guard.evaluation.commands import expand_suites

    assert expand_suites(["all"]) == tuple(suite_names(parts=False))
    assert "donotanswer" in expand_suites(["all"])
    assert "donotanswer_bias" not in expand_suites(["all"])  # a part of donotanswer
    assert expand_suites(["donotanswer_bias"]) == ("donotanswer_bias",)
    assert expand_suites(["xstest_safe", "all"])[0] == "xstest_safe"
    assert len(expand_suites(["all", "all"])) == len(suite_names(parts=False))


def test_prompt_sets_replace_the_suites(tmp_path: Path, fake_configs: list[str]) -> None:
    sets = {"train_harmful": [SuitePrompt("train_harmful", f"h{i}", f"do harm {i}", "harmful")
                              for i in range(3)],
            "train_benign": [SuitePrompt("train_benign", "b0", "bake bread 1", "benign")]}
    request = EvalRequest(("fake",), ("train_harmful", "train_benign"),
                          GenerationSettings(max_new_tokens=8), batch_size=2, prompt_sets=sets)
    run = run_eval(request, CompletionCache(tmp_path / "c.jsonl"), KeywordPanel, _loaded,
                   progress=False)
    assert [(i.suite, i.kind, i.prompt) for i in run.items] == (
        [("train_harmful", "harmful", f"do harm {i}") for i in range(3)]
        + [("train_benign", "benign", "bake bread 1")])
    assert fake_configs == ["do harm 0", "do harm 1", "do harm 2", "bake bread 1"]
    refused = {i.prompt: i.verdict.refused for i in run.items}
    assert refused == {"do harm 0": True, "do harm 1": False, "do harm 2": True,
                       "bake bread 1": False}


def test_prompt_sets_must_name_the_suites() -> None:
    sets = {"train_harmful": [SuitePrompt("train_harmful", "h", "x", "harmful")]}
    with pytest.raises(ConfigurationError, match="give the same names to both"):
        EvalRequest(("base",), ("harmbench",), prompt_sets=sets).validate()
    EvalRequest(("base",), ("train_harmful",), prompt_sets=sets).validate()  # no suite lookup


def test_steered_run_reports_under_its_label(tmp_path: Path, fake_data: Path,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # A regression: with --alpha/--beta the items carry the label (``g[beta=0.5]``) and the
    # report looked them up by the bare name, so every count was 0 and the win-rate plot crashed.
    log: list[str] = []
    for name, tag in (("g1", "fake"), ("g2", "safe")):
        monkeypatch.setitem(registry._REGISTRY, name, GuardConfig(
            name, "test", lambda loaded, _, tag=tag: FakeGenerator(tag, log),
            guided=True))
    request = EvalRequest(("g1", "g2"), ("jbb_harmful", "jbb_benign"),
                          GenerationSettings(max_new_tokens=8), data=fake_data, batch_size=3,
                          limit=4, steering=Steering(beta=0.5))
    run = run_eval(request, CompletionCache(tmp_path / "c.jsonl"), KeywordPanel, _loaded,
                   progress=False)
    report = build_report(run, KeywordPanel.provenance)
    assert report["configs"] == ["g1[beta=0.5]", "g2[beta=0.5]"]
    harmful = report["results"]["g1[beta=0.5]"]["jbb_harmful"]
    assert harmful["n"] == 4
    assert harmful["metrics"]["unsafe_compliance"]["count"] == sum(
        1 for i in run.items if i.config == "g1[beta=0.5]" and i.suite == "jbb_harmful"
        and not i.verdict.refused and i.verdict.unsafe)
    assert report["results"]["g2[beta=0.5]"]["jbb_harmful"]["metrics"]["unsafe_compliance"][
        "count"] == 0
    wins = report["win_rates"]["g1[beta=0.5]_vs_g2[beta=0.5]"]
    assert wins["all"]["n"] == 4 + 4
    assert [p.name for p in plot_report(report, tmp_path / "out")] == ["rates.png",
                                                                       "win_rates.png"]
    assert "| jbb_harmful | harmful | 4 |" in render_markdown(report)
