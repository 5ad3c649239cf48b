"""Training-side harmful requests read from the safety-data folder, and the overlap key that keeps
every evaluation-suite prompt out of them (see docs/method.md section 7 on the train/evaluate split)."""

from __future__ import annotations

import csv
import json
import logging
import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from psa_guard.datasets.folder import data_file, flatten_strings
from psa_guard.datasets.suites import SUITES
from psa_guard.errors import DataError

__all__ = [
    "ADVBENCH",
    "HARMFUL_TRAIN",
    "RED_INSTRUCT",
    "HarmPrompt",
    "evaluation_texts",
    "normalise",
    "training_prompts",
]

logger = logging.getLogger(__name__)

HARMFUL_TRAIN = "harmful_prompts/refusal_direction/splits/harmful_train.json"
ADVBENCH = "harmful_prompts/refusal_direction/raw/advbench.csv"
RED_INSTRUCT = {
    "harmfulqa": "harmful_prompts/red_instruct/harmfulqa.json",
    "catqa": "harmful_prompts/red_instruct/catqa_english.json",
    "dangerousqa": "harmful_prompts/red_instruct/dangerousqa.json",
}

@dataclass(frozen=True)
class HarmPrompt:
    """A harmful training request.

    Attributes:
        id: ``"<source>:<index>"``, stable across runs.
        prompt: the request text.
        source: the source name (``harmful_train``, ``advbench``, ``harmfulqa``, ...).
        file: the data file it came from (relative to the data folder).
    """

    id: str
    prompt: str
    source: str
    file: str


_PUNCT = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Overlap key: NFKC, lower case, punctuation removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def training_prompts(folder: Path, *, advbench_limit: int | None = None,
                     red_instruct_per_source: int = 40, seed: int = 0) -> list[HarmPrompt]:
    """Harmful training-side requests, deduplicated on normalised text (first occurrence wins).

    Args:
        folder: the safety-data folder.
        advbench_limit: seeded sample size of AdvBench (None: all 520).
        red_instruct_per_source: seeded sample size of each of HarmfulQA, CatQA, DangerousQA.
        seed: sampling seed.

    Raises:
        DataError: a file is missing or malformed.
    """
    rng = random.Random(seed)
    out: list[HarmPrompt] = []
    try:
        rows = json.loads(data_file(folder, HARMFUL_TRAIN).read_text(encoding="utf-8"))
        out += [HarmPrompt(f"harmful_train:{i}", r["instruction"], "harmful_train", HARMFUL_TRAIN)
                for i, r in enumerate(rows)]
        with open(data_file(folder, ADVBENCH), encoding="utf-8", newline="") as handle:
            adv = [HarmPrompt(f"advbench:{i}", r["goal"], "advbench", ADVBENCH)
                   for i, r in enumerate(csv.DictReader(handle))]
        if advbench_limit is not None and advbench_limit < len(adv):
            adv = [adv[i] for i in sorted(rng.sample(range(len(adv)), advbench_limit))]
        out += adv
        for name, relative in RED_INSTRUCT.items():
            texts = flatten_strings(json.loads(data_file(folder, relative).read_text(encoding="utf-8")))
            items = [HarmPrompt(f"{name}:{i}", t, name, relative) for i, t in enumerate(texts)]
            if red_instruct_per_source < len(items):
                items = [items[i] for i in sorted(rng.sample(range(len(items)),
                                                             red_instruct_per_source))]
            out += items
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"malformed harmful training data in {folder}: {exc}") from exc
    seen: set[str] = set()
    unique = []
    for item in out:
        key = normalise(item.prompt)
        if key and key not in seen:
            seen.add(key)
            unique.append(item)
    logger.info("training prompts: %d read, %d after dedup", len(out), len(unique))
    return unique


def evaluation_texts(folder: Path) -> dict[str, str]:
    """Normalised prompt text of every evaluation-suite prompt -> the suite it belongs to."""
    texts: dict[str, str] = {}
    for name, suite in SUITES.items():
        for item in suite.read(folder):
            texts.setdefault(normalise(item.prompt), name)
    return texts
