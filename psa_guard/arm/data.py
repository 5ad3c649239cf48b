"""Attribute preference pairs for the Pv-Arm reward model (docs/arm_data.md says how each set is made).

Every set comes from the *training side* of the safety data (docs/method.md section 7):

=============== ================================================================================
attribute        sources (``PreferencePair.source``)
=============== ================================================================================
empathy          ``esconv_rlcd``: ESConv supporter turn with an empathic strategy tag (chosen) vs the
                 default model told to be cold (rejected); ``rlcd``: warm vs cold instruction
sensitivity      ``hh_rlhf``: HH-RLHF harmless-base final assistant turns; ``xstest_unsafe``:
                 human-labelled full refusal vs full compliance of one unsafe XSTest prompt;
                 ``rlcd`` on ESConv seeker utterances
non_judgmental   ``toxigen``: neutral vs hateful statement on one target group; ``davidson``:
                 "neither" vs hate/offensive tweet; ``rlcd`` on FailedESConv seeker situations
truthfulness     ``truthfulqa``: a correct vs an incorrect answer to one question
helpfulness      ``xstest``: human-labelled full compliance vs full refusal of one safe XSTest prompt
                 (prompts the evaluation samples by default are excluded); ``rlcd`` on Alpaca
=============== ================================================================================

RLCD (Yang et al. 2023): one user prompt answered twice by the default model, under a positive and a
negative system instruction (:data:`RLCD_INSTRUCTIONS`); the stored prompt is the user message
only. Generation itself happens in ``scripts/build_arm_data.py``; this module builds the requests,
caches the replies (:class:`GenerationCache`) and turns them into pairs.

Split: a pair is held out when a stable hash of ``attribute + prompt`` falls in the lowest
:data:`HELDOUT_FRACTION` (:func:`split_of`), so all pairs of one prompt share a split.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from psa_guard.arm.pairs import (
    SPLITS,
    GenerationCache,
    PreferencePair,
    count_pairs,
    manifest_path,
    read_pairs,
    write_pairs,
)
from psa_guard.core.jsonl import read_jsonl
from psa_guard.datasets.folder import data_file
from psa_guard.datasets.training import evaluation_texts, normalise
from psa_guard.errors import DataError

__all__ = [
    "DATA_FILES",
    "EMPATHIC_STRATEGIES",
    "HELDOUT_FRACTION",
    "MAX_CHARS",
    "RLCD_INSTRUCTIONS",
    "SPLITS",
    "EsconvExchange",
    "GenerationCache",
    "PreferencePair",
    "cap_text",
    "count_pairs",
    "davidson_pairs",
    "esconv_empathy_pairs",
    "esconv_exchanges",
    "hh_sensitivity_pairs",
    "make_pair",
    "manifest_path",
    "read_pairs",
    "rlcd_conversations",
    "rlcd_pairs",
    "rlcd_prompt_pools",
    "split_of",
    "static_pairs",
    "toxigen_pairs",
    "truthfulqa_pairs",
    "write_pairs",
    "xstest_eval_prompts",
    "xstest_pairs",
]

#: Share of each attribute's prompts held out (by a stable hash; the realised share varies a little).
HELDOUT_FRACTION = 0.15
#: Every prompt and response is cut to about this many characters, at a word boundary.
MAX_CHARS = 800

#: Training-side files read (relative to the safety-data folder).
DATA_FILES = {
    "truthfulqa": "preference/truthfulqa/TruthfulQA.csv",
    "xstest": "over_refusal/xstest/human_labeled_completions",
    "hh_rlhf": "preference/hh_rlhf_harmless_base/test.jsonl.gz",
    "esconv_dev": "preference/esconv/devWithStrategy_short.tsv",
    "esconv_test": "preference/esconv/testWithStrategy_short.tsv",
    "failed_esconv": "preference/esconv/FailedESConv.json",
    "toxigen": "toxicity/toxigen/toxigen_demonstration_statements.jsonl",
    "davidson": "toxicity/davidson_hatesonar/labeled_data.csv",
    "alpaca": "harmful_prompts/refusal_direction/splits/harmless_train.json",
}

#: ESConv supporter strategies that count as empathic responses.
EMPATHIC_STRATEGIES = frozenset({
    "Reflection of feelings", "Affirmation and Reassurance", "Restatement or Paraphrasing",
    "Self-disclosure",
})

#: RLCD system instructions per attribute: (positive -> chosen, negative -> rejected).
RLCD_INSTRUCTIONS: dict[str, tuple[str, str]] = {
    "empathy": (
        "You are a warm, caring listener. Acknowledge the person's feelings with compassion before "
        "anything else.",
        "You are cold and dismissive. Ignore the person's feelings and reply curtly.",
    ),
    "sensitivity": (
        "You are tactful and careful. Respond gently, choose considerate words, and treat painful "
        "or personal topics with care.",
        "You are blunt and tactless. Say whatever comes to mind, however hurtful, insensitive or "
        "alarming it may be.",
    ),
    "non_judgmental": (
        "You are accepting and non-judgmental. Do not blame or criticise the person; respect their "
        "choices and feelings.",
        "You are judgmental and preachy. Blame the person, criticise their choices and tell them "
        "what they did wrong.",
    ),
    "helpfulness": (
        "You are a helpful assistant. Answer the request directly, accurately and completely.",
        "You are an evasive, unhelpful assistant. Do not answer the request: deflect, stay vague, "
        "or change the subject.",
    ),
}

_TOXIGEN_GROUPS = {
    "lgbtq": "LGBTQ+ people", "bisexual": "bisexual people", "trans": "trans people",
    "immigrant": "immigrants", "physical_disability": "people with physical disabilities",
    "mental_disability": "people with mental disabilities", "middle_east": "people from the Middle East",
    "women": "women", "mexican": "Mexican people", "muslim": "Muslims", "black": "Black people",
    "chinese": "Chinese people", "asian": "Asian people", "jewish": "Jewish people",
    "latino": "Latino people", "native_american": "Native American people",
}
_GROUP_TEMPLATES = (
    "Say something about {group}.", "What do you think of {group}?", "Tell me about {group}.",
    "Write a sentence about {group}.", "Share a thought about {group}.",
    "Describe {group} in one sentence.",
)
_TWEET_TEMPLATES = (
    "Write a tweet.", "Write a short tweet.", "Post something on Twitter.",
    "Write a tweet about your day.", "Tweet something.", "Write a social media post.",
)




# ---- text and split ---------------------------------------------------------------------------------
def cap_text(text: str, limit: int = MAX_CHARS, *, keep_tail: bool = False) -> str:
    """``text`` stripped and cut to at most ``limit`` characters at a word boundary.

    Args:
        text: the text.
        limit: the maximum length in characters.
        keep_tail: keep the end of the text instead of its start (dialogue prefixes).
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    if keep_tail:
        cut = text[-limit:]
        space = cut.find(" ")
        return (cut[space + 1:] if 0 <= space < limit // 2 else cut).strip()
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).strip()


def split_of(attribute: str, prompt: str, heldout_fraction: float = HELDOUT_FRACTION) -> str:
    """``"heldout"`` or ``"train"`` from a SHA-256 of attribute and prompt (stable across runs)."""
    digest = hashlib.sha256(f"{attribute}\x1f{prompt}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < heldout_fraction else "train"


def make_pair(attribute: str, prompt: str, chosen: str, rejected: str,
              source: str) -> PreferencePair | None:
    """A split-assigned pair with stripped, capped texts; None if a text is empty or both match."""
    prompt, chosen, rejected = cap_text(prompt), cap_text(chosen), cap_text(rejected)
    if not (prompt and chosen and rejected) or normalise(chosen) == normalise(rejected):
        return None
    return PreferencePair(attribute, prompt, chosen, rejected, source, split_of(attribute, prompt))


def _collect(items: Iterable[PreferencePair | None]) -> list[PreferencePair]:
    """Non-None pairs, first occurrence of each (attribute, prompt, chosen, rejected) only."""
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for pair in items:
        if pair is not None:
            key = (pair.attribute, pair.prompt, pair.chosen, pair.rejected)
            if key not in seen:
                seen.add(key)
                out.append(pair)
    return out


# ---- labelled sets ---------------------------------------------------------------------------------
def truthfulqa_pairs(rows: Iterable[Mapping[str, str]], per_question: int = 3) -> list[PreferencePair]:
    """Truthfulness pairs: a correct answer (Best Answer first) vs an incorrect one, per question.

    "I have no comment" is never a chosen answer (true, but it would reward evasion).

    Args:
        rows: TruthfulQA.csv rows (``Question``, ``Best Answer``, ``Correct Answers``,
            ``Incorrect Answers``; answer lists separated by ``;``).
        per_question: at most this many pairs per question.
    """
    out = []
    for row in rows:
        correct = [row.get("Best Answer", ""), *row.get("Correct Answers", "").split(";")]
        chosen = list(dict.fromkeys(a.strip() for a in correct
                                    if a.strip() and a.strip().lower() != "i have no comment"))
        rejected = list(dict.fromkeys(a.strip() for a in row.get("Incorrect Answers", "").split(";")
                                      if a.strip()))
        if not chosen or not rejected:
            continue
        for i in range(min(per_question, max(len(chosen), len(rejected)))):
            out.append(make_pair("truthfulness", row.get("Question", ""), chosen[i % len(chosen)],
                                 rejected[i % len(rejected)], "truthfulqa"))
    return _collect(out)


def xstest_pairs(rows: Iterable[Mapping[str, str]], excluded: set[str], *, unsafe: bool = False,
                 per_prompt: int = 4, seed: int = 0) -> list[PreferencePair]:
    """XSTest's human labels as pairs, one side of the suite at a time.

    * safe prompts (type not starting with ``contrast_``): **helpfulness**, full compliance
      preferred to full refusal (``source="xstest"``);
    * unsafe prompts (``contrast_*``, ``unsafe=True``): **sensitivity**, full refusal preferred to
      full compliance (``source="xstest_unsafe"``). Without this mirror, the reward model learns
      only that answering beats refusing, and prefers compliance on harmful prompts too.

    Args:
        rows: human-labelled completion rows (``type``, ``prompt``, ``completion``, ``final_label``)
            of all models.
        excluded: :func:`~psa_guard.direg.data.normalise`\\ d prompts to skip (the evaluation's).
        unsafe: build the unsafe side (sensitivity) instead of the safe side (helpfulness).
        per_prompt: at most this many (preferred, dispreferred) combinations per prompt (seeded).
        seed: sampling seed.
    """
    groups: dict[str, tuple[str, list[str], list[str]]] = {}
    for row in rows:
        prompt = row.get("prompt", "").strip()
        key = normalise(prompt)
        if row.get("type", "").startswith("contrast_") != unsafe or not key or key in excluded:
            continue
        _, comply, refuse = groups.setdefault(key, (prompt, [], []))
        label, text = row.get("final_label", ""), row.get("completion", "").strip()
        if label == "1_full_compliance":
            comply.append(text)
        elif label == "2_full_refusal":
            refuse.append(text)
    attribute, source = ("sensitivity", "xstest_unsafe") if unsafe else ("helpfulness", "xstest")
    rng = random.Random(seed)
    out = []
    for key in sorted(groups):
        prompt, comply, refuse = groups[key]
        combos = [(r, c) if unsafe else (c, r) for c in comply for r in refuse]
        if len(combos) > per_prompt:
            combos = [combos[i] for i in sorted(rng.sample(range(len(combos)), per_prompt))]
        out += [make_pair(attribute, prompt, chosen, rejected, source)
                for chosen, rejected in combos]
    return _collect(out)


_TURN = re.compile(r"\n\n(Human|Assistant):")


def _hh_final(dialogue: str) -> tuple[str, str] | None:
    """(prefix before the last assistant turn, that turn) of an HH-RLHF dialogue."""
    index = dialogue.rfind("\n\nAssistant:")
    if index < 0:
        return None
    return dialogue[:index], dialogue[index + len("\n\nAssistant:"):].strip()


def _hh_prompt(prefix: str) -> str:
    """The last Human turn alone, or the whole prefix flattened (``Human: ...``) when multi-turn."""
    parts = _TURN.split(prefix)
    turns = [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]
    if not turns or turns[-1][0] != "Human":
        return ""
    if len(turns) == 1:
        return turns[0][1]
    return cap_text("\n".join(f"{role}: {text}" for role, text in turns), keep_tail=True)


def hh_sensitivity_pairs(rows: Iterable[Mapping[str, str]], limit: int | None = 600,
                         seed: int = 0) -> list[PreferencePair]:
    """Sensitivity pairs from HH-RLHF harmless-base: the final assistant turns of two dialogues that
    share everything before them (``chosen`` is the more harmless one).

    Args:
        rows: ``{"chosen": dialogue, "rejected": dialogue}`` rows.
        limit: seeded sample size (None: all).
        seed: sampling seed.
    """
    out = []
    for row in rows:
        good, bad = _hh_final(row.get("chosen", "")), _hh_final(row.get("rejected", ""))
        if good is None or bad is None or good[0] != bad[0]:
            continue
        out.append(make_pair("sensitivity", _hh_prompt(good[0]), good[1], bad[1], "hh_rlhf"))
    pairs = _collect(out)
    if limit is not None and len(pairs) > limit:
        pairs = [pairs[i] for i in sorted(random.Random(seed).sample(range(len(pairs)), limit))]
    return pairs


def toxigen_pairs(rows: Iterable[Mapping[str, str]], seed: int = 0) -> list[PreferencePair]:
    """Non-judgmental pairs: a neutral (chosen) vs a hateful (rejected) statement on one group.

    Each statement of a group appears at least once (the shorter list is cycled); the prompt is a
    seeded pick of a few templates ("Say something about {group}.", ...). Groups that lack neutral
    or hateful statements are skipped.
    """
    groups: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        text, label = row.get("text", "").strip(), row.get("label", "")
        if text and label in ("hate", "neutral"):
            bucket = groups.setdefault(row.get("target_group", ""), {"hate": [], "neutral": []})
            bucket[label].append(text)
    rng = random.Random(seed)
    out = []
    for group in sorted(groups):
        hate, neutral = groups[group]["hate"], groups[group]["neutral"]
        if not hate or not neutral:
            continue
        rng.shuffle(neutral)
        name = _TOXIGEN_GROUPS.get(group, group.replace("_", " "))
        for i in range(max(len(hate), len(neutral))):
            prompt = rng.choice(_GROUP_TEMPLATES).format(group=name)
            out.append(make_pair("non_judgmental", prompt, neutral[i % len(neutral)],
                                 hate[i % len(hate)], "toxigen"))
    return _collect(out)


_MENTION = re.compile(r"(^|\s)(RT\s+)?@\w+:?|https?://\S+|\bRT\b")


def _clean_tweet(text: str) -> str:
    """Unescape HTML, drop retweet markers, @mentions and links, collapse whitespace."""
    text = _MENTION.sub(" ", html.unescape(text))
    return re.sub(r"\s+", " ", text).strip(" !\"")


def davidson_pairs(rows: Iterable[Mapping[str, str]], limit: int = 300, seed: int = 0,
                   min_chars: int = 20) -> list[PreferencePair]:
    """Non-judgmental pairs: a "neither" tweet (class 2) vs a hate (0) or offensive (1) tweet.

    Rejected tweets are drawn half from class 0 and half from class 1 (class 1 is 13 times larger);
    the prompt is a seeded pick of a few "Write a tweet." templates.
    """
    by_class: dict[str, list[str]] = {"0": [], "1": [], "2": []}
    for row in rows:
        text = _clean_tweet(row.get("tweet", ""))
        if row.get("class") in by_class and len(text) >= min_chars:
            by_class[row["class"]].append(text)
    rng = random.Random(seed)
    n = min(limit, len(by_class["2"]))
    chosen = rng.sample(by_class["2"], n)
    hate = rng.sample(by_class["0"], min(n // 2, len(by_class["0"])))
    rejected = hate + rng.sample(by_class["1"], min(n - len(hate), len(by_class["1"])))
    rng.shuffle(rejected)
    return _collect(make_pair("non_judgmental", rng.choice(_TWEET_TEMPLATES), c, r, "davidson")
                    for c, r in zip(chosen, rejected))


# ---- ESConv -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EsconvExchange:
    """A seeker utterance and the supporter turn that follows it, with the supporter's strategy."""

    seeker: str
    supporter: str
    strategy: str


_ESCONV_TURN = re.compile(r"^\S+ ([01]) \d+ (.*)$", re.DOTALL)
_STRATEGY = re.compile(r"^\[([^\]]+)\]\s*(.*)$", re.DOTALL)


def esconv_exchanges(lines: Iterable[str]) -> list[EsconvExchange]:
    """Seeker -> next supporter turns in ESConv ``*WithStrategy_short.tsv`` lines (deduplicated).

    A line is a window of turns separated by `` EOS ``; a turn is ``<flag> <speaker> <index> <text>``
    with speaker 0 the seeker and 1 the supporter, whose text starts with ``[Strategy]``.
    """
    seen: set[tuple[str, str]] = set()
    out = []
    for line in lines:
        turns = []
        for raw in line.rstrip("\n").split(" EOS "):
            match = _ESCONV_TURN.match(raw.strip())
            if match:
                turns.append((match.group(1), match.group(2).strip()))
        for (speaker, text), (next_speaker, reply) in zip(turns, turns[1:]):
            tagged = _STRATEGY.match(reply)
            if speaker == "0" and next_speaker == "1" and tagged:
                exchange = EsconvExchange(text, tagged.group(2).strip(), tagged.group(1))
                if (exchange.seeker, exchange.supporter) not in seen and exchange.supporter:
                    seen.add((exchange.seeker, exchange.supporter))
                    out.append(exchange)
    return out


def esconv_empathy_pairs(exchanges: Iterable[EsconvExchange],
                         negatives: Mapping[str, str]) -> list[PreferencePair]:
    """Empathy pairs: an empathic-strategy supporter turn vs the negative reply to the same seeker
    utterance (``negatives``: seeker utterance -> RLCD cold reply). Utterances without one are skipped.
    """
    return _collect(make_pair("empathy", e.seeker, e.supporter, negatives[e.seeker], "esconv_rlcd")
                    for e in exchanges
                    if e.strategy in EMPATHIC_STRATEGIES and e.seeker in negatives)


def _usable_prompt(text: str, min_words: int = 6) -> bool:
    return len(text.split()) >= min_words and len(text) <= MAX_CHARS


# ---- RLCD -------------------------------------------------------------------------------------------
def rlcd_conversations(attribute: str, prompt: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The (positive, negative) chat conversations for one RLCD prompt.

    Raises:
        DataError: the attribute has no RLCD instructions.
    """
    if attribute not in RLCD_INSTRUCTIONS:
        raise DataError(f"no RLCD instructions for {attribute!r}; "
                        f"available: {', '.join(RLCD_INSTRUCTIONS)}")
    positive, negative = RLCD_INSTRUCTIONS[attribute]
    user = {"role": "user", "content": prompt}
    return ([{"role": "system", "content": positive}, user],
            [{"role": "system", "content": negative}, user])


def rlcd_pairs(attribute: str, prompts: Iterable[str],
               reply: Callable[[str, str], str | None]) -> list[PreferencePair]:
    """Positive-instruction reply (chosen) vs negative-instruction reply (rejected), per prompt.

    Args:
        attribute: an attribute of :data:`RLCD_INSTRUCTIONS`.
        prompts: the user messages.
        reply: ``reply(system, user)``: the generated text, or None if not generated.
    """
    positive, negative = RLCD_INSTRUCTIONS[attribute]
    out = []
    for prompt in prompts:
        good, bad = reply(positive, prompt), reply(negative, prompt)
        if good is not None and bad is not None:
            out.append(make_pair(attribute, prompt, good, bad, "rlcd"))
    return _collect(out)




# ---- reading the data folder ------------------------------------------------------------------------
def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def xstest_eval_prompts(folder: Path, limit: int = 60, seed: int = 0) -> set[str]:
    """Normalised XSTest prompts that the evaluation samples by default (safe and unsafe suites)."""
    from psa_guard.datasets.suites import load_suite

    return {normalise(p.prompt) for name in ("xstest_safe", "xstest_unsafe")
            for p in load_suite(name, limit=limit, seed=seed, data=folder)}


def _esconv_lines(folder: Path) -> list[str]:
    lines = []
    for name in ("esconv_dev", "esconv_test"):
        lines += data_file(folder, DATA_FILES[name]).read_text(encoding="utf-8").splitlines()
    return lines


def static_pairs(folder: Path, seed: int = 0) -> list[PreferencePair]:
    """Every pair that needs no generation: TruthfulQA, XSTest, HH-RLHF, ToxiGen, Davidson.

    Pairs whose prompt is an evaluation-suite prompt (after normalisation) are dropped, except
    XSTest's, where only the prompts the evaluation samples by default are excluded.

    Raises:
        DataError: a file is missing or malformed.
    """
    try:
        xstest_dir = folder / DATA_FILES["xstest"]
        xstest_rows = [r for path in sorted(xstest_dir.glob("*.csv")) for r in _csv(path)]
        if not xstest_rows:
            raise DataError(f"no XSTest completion files in {xstest_dir}")
        hh = read_jsonl(data_file(folder, DATA_FILES["hh_rlhf"]))  # .jsonl.gz
        toxigen = read_jsonl(data_file(folder, DATA_FILES["toxigen"]))
        others = [
            *truthfulqa_pairs(_csv(data_file(folder, DATA_FILES["truthfulqa"]))),
            *hh_sensitivity_pairs(hh, seed=seed),
            *toxigen_pairs(toxigen, seed=seed),
            *davidson_pairs(_csv(data_file(folder, DATA_FILES["davidson"])), seed=seed),
        ]
        eval_texts = evaluation_texts(folder)
        excluded = xstest_eval_prompts(folder)
        return [
            *xstest_pairs(xstest_rows, excluded, seed=seed),
            *xstest_pairs(xstest_rows, excluded, unsafe=True, seed=seed),
            *(p for p in others if normalise(p.prompt) not in eval_texts),
        ]
    except (KeyError, TypeError, ValueError, OSError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"malformed attribute data in {folder}: {exc}") from exc


def rlcd_prompt_pools(folder: Path, per_attribute: int, seed: int = 0
                      ) -> tuple[dict[str, list[str]], list[EsconvExchange]]:
    """Seeded RLCD prompts per attribute, and the ESConv exchanges of the empathy prompts.

    Empathy draws seeker utterances answered with an empathic strategy, sensitivity draws other
    seeker utterances (disjoint from empathy's), non_judgmental draws FailedESConv situations,
    helpfulness draws Alpaca instructions (``harmless_train.json``). Prompts shorter than six
    words are skipped.

    Raises:
        DataError: a file is missing or malformed.
    """
    rng = random.Random(seed)

    eval_texts = evaluation_texts(folder)

    def draw(pool: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
        unique = sorted({p.strip() for p in pool if _usable_prompt(p.strip())
                         and normalise(p) not in eval_texts} - set(exclude))
        return rng.sample(unique, min(per_attribute, len(unique)))

    try:
        exchanges = esconv_exchanges(_esconv_lines(folder))
        failed = json.loads(data_file(folder, DATA_FILES["failed_esconv"]).read_text(encoding="utf-8"))
        alpaca = json.loads(data_file(folder, DATA_FILES["alpaca"]).read_text(encoding="utf-8"))
        empathy = draw(e.seeker for e in exchanges if e.strategy in EMPATHIC_STRATEGIES)
        pools = {
            "empathy": empathy,
            "sensitivity": draw((e.seeker for e in exchanges), set(empathy)),
            "non_judgmental": draw(str(d.get("situation", "")) for d in failed),
            "helpfulness": draw(str(r["instruction"]) for r in alpaca),
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"malformed RLCD prompt data in {folder}: {exc}") from exc
    chosen = set(empathy)
    return pools, [e for e in exchanges if e.seeker in chosen]


# ---- reading and writing pairs ----------------------------------------------------------------------












