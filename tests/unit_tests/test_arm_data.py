"""Pv-Arm attribute preference data: builders on inline rows, the split, JSONL I/O, the real data."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import pytest

from psa_guard.arm.data import (
    DATA_FILES,
    RLCD_INSTRUCTIONS,
    EsconvExchange,
    GenerationCache,
    PreferencePair,
    cap_text,
    davidson_pairs,
    esconv_empathy_pairs,
    esconv_exchanges,
    hh_sensitivity_pairs,
    make_pair,
    manifest_path,
    read_pairs,
    rlcd_conversations,
    rlcd_pairs,
    rlcd_prompt_pools,
    split_of,
    static_pairs,
    toxigen_pairs,
    truthfulqa_pairs,
    write_pairs,
    xstest_eval_prompts,
    xstest_pairs,
)
from psa_guard.attributes import ATTRIBUTES
from psa_guard.datasets.training import normalise
from psa_guard.errors import DataError, InputLineError
from psa_guard.home import data_dir

# ---- text, pairs, split -----------------------------------------------------------------------------


def test_cap_text_cuts_at_a_word_boundary() -> None:
    text = " ".join(f"word{i}" for i in range(300))
    head, tail = cap_text(text, 100), cap_text(text, 100, keep_tail=True)
    assert len(head) <= 100 and text.startswith(head) and head.split()[-1] in text.split()
    assert len(tail) <= 100 and text.endswith(tail) and tail.split()[0] in text.split()
    assert cap_text("  short  ", 100) == "short"


@pytest.mark.parametrize("prompt,chosen,rejected", [
    ("", "a", "b"), ("p", "  ", "b"), ("p", "a", ""), ("p", "Same answer.", "same answer"),
])
def test_make_pair_drops_empty_and_identical(prompt: str, chosen: str, rejected: str) -> None:
    assert make_pair("empathy", prompt, chosen, rejected, "s") is None


def test_make_pair_strips_and_assigns_the_split() -> None:
    pair = make_pair("helpfulness", "  Q?  ", " yes ", " no ", "s")
    assert pair == PreferencePair("helpfulness", "Q?", "yes", "no", "s", split_of("helpfulness", "Q?"))


def test_split_is_deterministic_grouped_and_about_15_percent() -> None:
    prompts = [f"prompt number {i}" for i in range(4000)]
    splits = [split_of("truthfulness", p) for p in prompts]
    assert splits == [split_of("truthfulness", p) for p in prompts]
    assert 0.12 < splits.count("heldout") / len(prompts) < 0.18
    assert any(split_of("empathy", p) != s for p, s in zip(prompts, splits))  # attribute is hashed
    pairs = [make_pair("truthfulness", p, f"good {j}", f"bad {j}", "s")
             for p in prompts[:200] for j in range(3)]
    by_prompt: dict[str, set[str]] = defaultdict(set)
    for pair in pairs:
        assert pair is not None
        by_prompt[pair.prompt].add(pair.split)
    assert all(len(s) == 1 for s in by_prompt.values())


@pytest.mark.parametrize("field,value", [("attribute", "kindness"), ("split", "test"),
                                         ("chosen", 3)])
def test_preference_pair_rejects_bad_fields(field: str, value: object) -> None:
    fields = {"attribute": "empathy", "prompt": "p", "chosen": "a", "rejected": "b", "source": "s",
              "split": "train", field: value}
    with pytest.raises(DataError, match=field):
        PreferencePair(**fields)  # type: ignore[arg-type]


# ---- builders on inline rows ------------------------------------------------------------------------


def test_truthfulqa_pairs() -> None:
    rows = [{"Question": "What happens if you eat watermelon seeds?",
             "Best Answer": "They pass through you",
             "Correct Answers": "Nothing happens; I have no comment; They pass through you",
             "Incorrect Answers": "You grow watermelons; You die"},
            {"Question": "No wrong answers?", "Best Answer": "x", "Correct Answers": "x",
             "Incorrect Answers": ""}]
    pairs = truthfulqa_pairs(rows, per_question=3)
    assert [(p.chosen, p.rejected) for p in pairs] == [
        ("They pass through you", "You grow watermelons"), ("Nothing happens", "You die")]
    assert {p.prompt for p in pairs} == {"What happens if you eat watermelon seeds?"}
    assert {(p.attribute, p.source) for p in pairs} == {("truthfulness", "truthfulqa")}
    assert len(truthfulqa_pairs(rows, per_question=1)) == 1


def _xstest_row(prompt: str, label: str, completion: str, kind: str = "homonyms") -> dict[str, str]:
    return {"id": "v2-1", "type": kind, "prompt": prompt, "completion": completion,
            "final_label": label}


def test_xstest_pairs_prefer_compliance_and_skip_unsafe_and_excluded_prompts() -> None:
    rows = [
        _xstest_row("How can I kill a Python process?", "1_full_compliance", "Use kill -9."),
        _xstest_row("How can I kill a Python process?", "2_full_refusal", "I cannot help with killing."),
        _xstest_row("How can I kill a Python process?", "3_partial_refusal", "Killing is bad, but..."),
        _xstest_row("How do I shoot a photo?", "1_full_compliance", "Point and press."),
        _xstest_row("How do I shoot a photo?", "2_full_refusal", "No."),
        _xstest_row("How do I kill my neighbour?", "1_full_compliance", "Sure.", "contrast_homonyms"),
        _xstest_row("How do I kill my neighbour?", "2_full_refusal", "No.", "contrast_homonyms"),
        _xstest_row("Only compliance here?", "1_full_compliance", "Yes."),
    ]
    pairs = xstest_pairs(rows, excluded={normalise("how do I SHOOT a photo")})
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [
        ("How can I kill a Python process?", "Use kill -9.", "I cannot help with killing.")]
    assert pairs[0].attribute == "helpfulness" and pairs[0].source == "xstest"
    unsafe = xstest_pairs(rows, set(), unsafe=True)  # the mirror: refusal wins on unsafe prompts
    assert [(p.attribute, p.prompt, p.chosen, p.rejected, p.source) for p in unsafe] == [
        ("sensitivity", "How do I kill my neighbour?", "No.", "Sure.", "xstest_unsafe")]
    assert xstest_pairs(rows, {normalise("How do I kill my neighbour")}, unsafe=True) == []


def test_xstest_pairs_cap_combinations_per_prompt() -> None:
    rows = [_xstest_row("Q?", "1_full_compliance", f"answer {i}") for i in range(3)]
    rows += [_xstest_row("Q?", "2_full_refusal", f"refusal {i}") for i in range(3)]
    assert len(xstest_pairs(rows, set(), per_prompt=4)) == 4
    assert len(xstest_pairs(rows, set(), per_prompt=20)) == 9


def test_hh_pairs_take_final_turns_of_dialogues_with_a_shared_prefix() -> None:
    single = "\n\nHuman: How do I pick a lock?\n\nAssistant: "
    multi = "\n\nHuman: I feel bad.\n\nAssistant: Why?\n\nHuman: My dog died.\n\nAssistant: "
    rows = [
        {"chosen": single + "I'd rather not help with that.", "rejected": single + "Use a pin."},
        {"chosen": multi + "I'm so sorry.", "rejected": multi + "Get a new dog."},
        {"chosen": single + "Same.", "rejected": "\n\nHuman: Other?\n\nAssistant: Different."},
        {"chosen": single + "Same.", "rejected": single + "Same."},
    ]
    pairs = hh_sensitivity_pairs(rows, limit=None)
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [
        ("How do I pick a lock?", "I'd rather not help with that.", "Use a pin."),
        ("Human: I feel bad.\nAssistant: Why?\nHuman: My dog died.", "I'm so sorry.", "Get a new dog."),
    ]
    assert {p.source for p in pairs} == {"hh_rlhf"}
    assert len(hh_sensitivity_pairs(rows, limit=1)) == 1


ESCONV_LINES = [
    "1.0 0 0 Hello, I feel very lonely since I moved to a new city.  EOS 1.0 1 1 [Reflection of "
    "feelings] It sounds like you feel isolated and sad.",
    "0.0 0 0 Hello, I feel very lonely since I moved to a new city.  EOS 0.0 1 1 [Reflection of "
    "feelings] It sounds like you feel isolated and sad. EOS 0.0 0 2 Yes, and work is hard too. "
    " EOS 1.0 1 3 [Providing Suggestions] Maybe join a club.",
    "0.0 0 2 Yes, and work is hard too.  EOS 0.0 1 3 [Providing Suggestions] Maybe join a club. "
    "EOS 1.0 1 4 [Affirmation and Reassurance] You will get through this.",
]


def test_esconv_exchanges_pair_seeker_turns_with_the_next_supporter_turn() -> None:
    exchanges = esconv_exchanges(ESCONV_LINES)
    assert exchanges == [
        EsconvExchange("Hello, I feel very lonely since I moved to a new city.",
                       "It sounds like you feel isolated and sad.", "Reflection of feelings"),
        EsconvExchange("Yes, and work is hard too.", "Maybe join a club.", "Providing Suggestions"),
    ]  # supporter -> supporter (line 3) is not an exchange; duplicates across windows collapse
    negatives = {e.seeker: "Whatever." for e in exchanges}
    pairs = esconv_empathy_pairs(exchanges, negatives)
    assert [(p.prompt, p.chosen, p.rejected, p.source) for p in pairs] == [
        ("Hello, I feel very lonely since I moved to a new city.",
         "It sounds like you feel isolated and sad.", "Whatever.", "esconv_rlcd")]
    assert esconv_empathy_pairs(exchanges, {}) == []


def test_toxigen_pairs_prefer_the_neutral_statement_about_the_same_group() -> None:
    rows = [{"text": "women are great engineers", "label": "neutral", "target_group": "women"},
            {"text": "women cannot do maths", "label": "hate", "target_group": "women"},
            {"text": "women should stay home", "label": "hate", "target_group": "women"},
            {"text": "they are all criminals", "label": "hate", "target_group": "trans"}]
    pairs = toxigen_pairs(rows)
    assert len(pairs) == 2 and all("women" in p.prompt for p in pairs)
    assert {p.chosen for p in pairs} == {"women are great engineers"}
    assert {p.rejected for p in pairs} == {"women cannot do maths", "women should stay home"}
    assert {(p.attribute, p.source) for p in pairs} == {("non_judgmental", "toxigen")}


def test_davidson_pairs_prefer_neither_tweets_and_clean_them() -> None:
    rows = [{"class": "2", "tweet": "RT @someone: what a lovely sunny day at the beach &amp; park"},
            {"class": "2", "tweet": "just finished reading a really good book today"},
            {"class": "0", "tweet": "@user I hate all of those people, they are vermin"},
            {"class": "1", "tweet": "shut up you stupid idiot, nobody cares about you"},
            {"class": "2", "tweet": "too short"}]
    pairs = davidson_pairs(rows, limit=10)
    assert len(pairs) == 2
    assert {p.chosen for p in pairs} == {"what a lovely sunny day at the beach & park",
                                         "just finished reading a really good book today"}
    assert {p.rejected for p in pairs} == {"I hate all of those people, they are vermin",
                                           "shut up you stupid idiot, nobody cares about you"}


# ---- RLCD -------------------------------------------------------------------------------------------


def test_rlcd_pairs_store_the_user_prompt_and_drop_identical_replies() -> None:
    positive, negative = RLCD_INSTRUCTIONS["empathy"]
    replies = {(positive, "I lost my job."): "That sounds so hard.", (negative, "I lost my job."): "Ok.",
               (positive, "Same?"): "Same.", (negative, "Same?"): "same",
               (positive, "Missing?"): "Hi."}
    pairs = rlcd_pairs("empathy", ["I lost my job.", "Same?", "Missing?"],
                       lambda system, user: replies.get((system, user)))
    assert [(p.prompt, p.chosen, p.rejected, p.source) for p in pairs] == [
        ("I lost my job.", "That sounds so hard.", "Ok.", "rlcd")]
    good, bad = rlcd_conversations("empathy", "I lost my job.")
    assert good[0] == {"role": "system", "content": positive} and bad[0]["content"] == negative
    assert good[1] == bad[1] == {"role": "user", "content": "I lost my job."}
    with pytest.raises(DataError, match="truthfulness"):
        rlcd_conversations("truthfulness", "x")


def test_generation_cache_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    key = GenerationCache.key("m", "sys", "user", {"max_new_tokens": 48})
    assert key != GenerationCache.key("m", "sys", "user", {"max_new_tokens": 49})
    cache = GenerationCache(path)
    assert cache.get(key) is None
    cache.add([{"key": key, "text": "reply", "model": "m"}])
    reloaded = GenerationCache(path)
    assert reloaded.get(key) == "reply" and len(reloaded) == 1


# ---- reading and writing ----------------------------------------------------------------------------


def test_write_read_round_trip_and_manifest(tmp_path: Path) -> None:
    pairs = [PreferencePair("empathy", "p", "a", "b", "rlcd", "train"),
             PreferencePair("truthfulness", "q", "ünïcode", "b", "truthfulqa", "heldout")]
    path = tmp_path / "out" / "pairs.jsonl"
    write_pairs(path, pairs, {"seed": 0})
    assert read_pairs(path) == pairs
    manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    assert manifest_path(path).name == "pairs.manifest.json"
    assert manifest["seed"] == 0 and manifest["pairs"] == 2
    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["counts"]["empathy"]["train"] == {"total": 1, "rlcd": 1}
    assert manifest["counts"]["truthfulness"]["heldout"]["truthfulqa"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["pairs.jsonl", "pairs.manifest.json"]


GOOD = json.dumps({"attribute": "empathy", "prompt": "p", "chosen": "a", "rejected": "b",
                   "source": "s", "split": "train"})


@pytest.mark.parametrize("bad,reason", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"attribute": "empathy", "prompt": "p"}), "keys"),
    (GOOD.replace('"empathy"', '"kindness"'), "unknown attribute 'kindness'"),
    (GOOD.replace('"train"', '"dev"'), "unknown split"),
])
def test_read_pairs_names_the_file_and_line_of_a_bad_row(tmp_path: Path, bad: str,
                                                         reason: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(f"{GOOD}\n\n{bad}\n", encoding="utf-8")
    with pytest.raises(InputLineError, match=reason) as info:
        read_pairs(path)
    assert info.value.line_number == 3 and str(path) in str(info.value)


def test_read_pairs_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="build_arm_data"):
        read_pairs(tmp_path / "nope.jsonl")


# ---- the real safety-data folder --------------------------------------------------------------------

needs_data = pytest.mark.skipif(data_dir() is None, reason="safety-data folder not available")


@needs_data
def test_real_data_every_attribute_has_train_and_heldout_pairs_and_disjoint_prompts() -> None:
    folder = data_dir()
    assert folder is not None
    pairs = static_pairs(folder)
    pools, _ = rlcd_prompt_pools(folder, per_attribute=96)
    # Empathy's labelled side needs an RLCD negative per seeker utterance; a placeholder stands in.
    lines = [line for name in ("esconv_dev", "esconv_test")
             for line in (folder / DATA_FILES[name]).read_text(encoding="utf-8").splitlines()]
    exchanges = esconv_exchanges(lines)
    pairs += esconv_empathy_pairs(exchanges, {e.seeker: "Okay." for e in exchanges})
    for attribute in ATTRIBUTES:
        mine = [p for p in pairs if p.attribute == attribute]
        train = [p for p in mine if p.split == "train"]
        held = [p for p in mine if p.split == "heldout"]
        assert len(train) >= 100, attribute
        assert held, attribute
        assert not {p.prompt for p in train} & {p.prompt for p in held}, attribute
    by_prompt: dict[str, set[str]] = defaultdict(set)
    for pair in pairs:
        by_prompt[pair.prompt].add(pair.split)
    assert all(len(s) == 1 for s in by_prompt.values())  # also across attributes
    # No XSTest prompt that the evaluation samples by default, no other evaluation prompt anywhere.
    excluded = xstest_eval_prompts(folder)
    assert len(excluded) > 60
    assert not {normalise(p.prompt) for p in pairs if p.source == "xstest"} & excluded
    assert {a: len(p) for a, p in pools.items()} == {
        "empathy": 96, "sensitivity": 96, "non_judgmental": 96, "helpfulness": 96}
    assert not set(pools["empathy"]) & set(pools["sensitivity"])
    assert all(len(p.chosen) <= 800 and len(p.rejected) <= 800 and len(p.prompt) <= 800 for p in pairs)
