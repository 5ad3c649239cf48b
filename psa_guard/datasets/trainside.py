"""Training-side prompt sets, for tuning benchmark settings without touching the evaluation suites.

docs/method.md section 7: settings are chosen on training-side data and the evaluation suites are used
once, to measure. These two sets have the shape of suite prompts (:class:`SuitePrompt`), so the
benchmarks can run them through the same code as the suites, and every prompt that also occurs in
an evaluation suite (after normalisation) is dropped:

* :func:`training_harmful`: ``splits/harmful_train.json`` and AdvBench goals (DiReg's training-side
  requests, :func:`psa_guard.direg.data.training_prompts`);
* :func:`training_benign`: ``splits/harmless_train.json`` (Alpaca instructions);
* :func:`training_bias`: CatQA's ``Hate/Harass/Violence`` category (50 requests for hateful or
  demeaning content about a group), the training-side stand-in for ``donotanswer_bias``.
"""

from __future__ import annotations

import json
from pathlib import Path

from psa_guard.datasets.folder import data_file, require_data_dir
from psa_guard.datasets.suites import BENIGN, HARMFUL, SuitePrompt, sample
from psa_guard.datasets.training import RED_INSTRUCT, evaluation_texts, normalise, training_prompts
from psa_guard.errors import DataError

__all__ = [
    "CATQA_HATE",
    "HARMLESS_TRAIN",
    "TRAIN_BENIGN",
    "TRAIN_BIAS",
    "TRAIN_HARMFUL",
    "training_benign",
    "training_bias",
    "training_harmful",
]

HARMLESS_TRAIN = "harmful_prompts/refusal_direction/splits/harmless_train.json"
#: The ``suite`` names the two sets carry.
TRAIN_HARMFUL = "train_harmful"
TRAIN_BENIGN = "train_benign"
TRAIN_BIAS = "train_bias"
#: The CatQA category whose requests invite hateful or demeaning content about a group.
CATQA_HATE = "Hate/Harass/Violence"


def training_harmful(limit: int | None, seed: int = 0,
                     data: str | Path | None = None) -> list[SuitePrompt]:
    """A seeded sample of ``limit`` training-side harmful requests absent from every suite.

    Raises:
        DataError: the data folder or a file is missing or malformed.
        ConfigurationError: ``limit`` is not a positive integer.
    """
    folder = require_data_dir(data)
    prompts = training_prompts(folder, advbench_limit=None, red_instruct_per_source=0, seed=seed)
    items = [SuitePrompt(TRAIN_HARMFUL, p.id, p.prompt, HARMFUL, p.source) for p in prompts]
    return _sample_outside_suites(items, folder, limit, seed)


def training_benign(limit: int | None, seed: int = 0,
                    data: str | Path | None = None) -> list[SuitePrompt]:
    """A seeded sample of ``limit`` Alpaca instructions (``harmless_train.json``) absent from suites.

    Raises:
        DataError: the data folder or the file is missing or malformed.
        ConfigurationError: ``limit`` is not a positive integer.
    """
    folder = require_data_dir(data)
    path = data_file(folder, HARMLESS_TRAIN)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        items = [SuitePrompt(TRAIN_BENIGN, f"harmless_train:{i}", r["instruction"], BENIGN,
                             "harmless_train") for i, r in enumerate(rows)]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"malformed {path}: {exc}; expected a list of "
                        '{"instruction": ...} records') from exc
    return _sample_outside_suites(items, folder, limit, seed)


def training_bias(limit: int | None, seed: int = 0,
                  data: str | Path | None = None) -> list[SuitePrompt]:
    """A seeded sample of ``limit`` CatQA ``Hate/Harass/Violence`` requests absent from suites.

    Raises:
        DataError: the data folder or the file is missing, or it has no such category.
        ConfigurationError: ``limit`` is not a positive integer.
    """
    folder = require_data_dir(data)
    path = data_file(folder, RED_INSTRUCT["catqa"])
    try:
        category = json.loads(path.read_text(encoding="utf-8"))[CATQA_HATE]
        items = [SuitePrompt(TRAIN_BIAS, f"catqa:{sub}:{i}", text, HARMFUL, sub)
                 for sub, texts in category.items() for i, text in enumerate(texts)
                 if isinstance(text, str) and text.strip()]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"malformed {path}: {exc!r}; expected {{category: {{subcategory: "
                        f"[question, ...]}}}} with a {CATQA_HATE!r} category") from exc
    return _sample_outside_suites(items, folder, limit, seed)


def _sample_outside_suites(items: list[SuitePrompt], folder: Path, limit: int | None,
                           seed: int) -> list[SuitePrompt]:
    """The seeded sample of ``items`` whose normalised text is in no evaluation suite."""
    in_suites = evaluation_texts(folder)
    return sample([p for p in items if normalise(p.prompt) not in in_suites], limit, seed)
