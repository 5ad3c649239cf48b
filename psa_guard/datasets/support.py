"""The support suite: messages from people in distress, each labelled with one risk label.

A frozen evaluation set for replies to people who may be at risk (docs/support_suite.md says how it
was made). Every message has one label of :data:`SUPPORT_LABELS`:

=====================  =====================================================================
label                  the person ...
=====================  =====================================================================
suicidal_ideation      thinks of ending their life (directly, indirectly, or asks for a method)
self_harm              hurts themselves without meaning to die, or is about to
abuse                  is being (or was) abused: partner, family, carer, employer, online
medical_emergency      or someone with them needs emergency care now (an overdose already taken
                       is here, whatever its intent: the immediate need is emergency care)
other_distress         is distressed without any of the risks above (breakups, jobs, grief)
=====================  =====================================================================

The frozen file :data:`SUITE_FILE` (package data, one JSON object per line) lists every item:
``id``, ``label``, ``split`` (``tune`` or ``eval``, fixed when the file was built and never
recomputed), ``minor`` (the writer says they are under 18), ``source`` and ``tags``. Items the
project wrote (``source: "written"``) carry their ``text``. ESConv items (``source: "esconv"``)
carry only a reference into the safety-data folder, ``ref: {"file", "dialogue", "turn"}``, the
``sha256`` of the text and the ``rule`` that labelled it: the text is read at load time
(ESConv is CC BY-NC 4.0 and is not copied into the project), whitespace collapsed
(:func:`esconv_text`), and checked against the hash.

``scripts/build_support_suite.py`` rebuilds the file deterministically. The ``eval`` half is for
evaluation only: rules, prompts and thresholds may be tuned on the ``tune`` half, never on ``eval``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psa_guard.core.jsonl import iter_jsonl
from psa_guard.datasets.folder import data_file, require_data_dir
from psa_guard.datasets.suites import SuitePrompt
from psa_guard.errors import ConfigurationError, DataError, InputLineError

__all__ = [
    "ESCONV_FILE",
    "RISK_LABELS",
    "SOURCES",
    "SPLITS",
    "SUITE_FILE",
    "SUITE_NAME",
    "SUPPORT_KIND",
    "SUPPORT_LABELS",
    "EsconvRef",
    "SupportItem",
    "SupportPrompt",
    "esconv_text",
    "load_support_suite",
    "read_support_items",
    "text_sha256",
]

SUITE_NAME = "support"
#: ``SuitePrompt.kind`` of support prompts (beside ``harmful`` and ``benign``).
SUPPORT_KIND = "support"
SUPPORT_LABELS: tuple[str, ...] = (
    "suicidal_ideation", "self_harm", "abuse", "medical_emergency", "other_distress",
)
#: The labels of a person at risk (every label but ``other_distress``).
RISK_LABELS: tuple[str, ...] = SUPPORT_LABELS[:4]
SPLITS: tuple[str, ...] = ("tune", "eval")
SOURCES: tuple[str, ...] = ("written", "esconv")
#: The frozen item list, shipped as package data.
SUITE_FILE = Path(__file__).with_name("support_suite.jsonl")
#: The ESConv file the ``esconv`` items point into (relative to the safety-data folder).
ESCONV_FILE = "preference/esconv/FailedESConv.json"

_REBUILD = "rebuild it with `python scripts/build_support_suite.py`"
_FIELDS = {"id", "label", "split", "minor", "source", "tags", "text", "ref", "sha256", "rule"}


@dataclass(frozen=True)
class SupportPrompt:
    """One message of the support suite.

    Attributes:
        suite: ``"support"``.
        id: stable id (``written-<label>-NN`` or ``esconv-DDD-TT``).
        prompt: the person's message.
        label: one of :data:`SUPPORT_LABELS`.
        split: ``"tune"`` or ``"eval"``.
        minor: the writer says they are under 18.
        source: ``"written"`` (this project) or ``"esconv"`` (FailedESConv seeker turn).
        tags: written items' style and content tags (``teen``, ``non_native``, ``indirect``,
            ``method_request``, ...); empty for ESConv items.
    """

    suite: str
    id: str
    prompt: str
    label: str
    split: str
    minor: bool
    source: str
    tags: tuple[str, ...] = ()

    @property
    def risk(self) -> bool:
        """Whether the label is a risk label (anything but ``other_distress``)."""
        return self.label in RISK_LABELS

    def to_suite_prompt(self) -> SuitePrompt:
        """The prompt as an evaluation-suite prompt: ``kind="support"``, ``category=label``."""
        return SuitePrompt(self.suite, self.id, self.prompt, SUPPORT_KIND, self.label)


@dataclass(frozen=True)
class EsconvRef:
    """Where an ESConv item's text lies: ``file`` (relative to the safety-data folder), the index
    of the dialogue in it, and the index of the seeker turn in that dialogue's ``dialog`` list."""

    file: str
    dialogue: int
    turn: int


@dataclass(frozen=True)
class SupportItem:
    """One line of the frozen file (an ESConv item's text is not in it).

    Attributes:
        id, label, split, minor, source, tags: as in :class:`SupportPrompt`.
        text: the message of a written item (None for ESConv items).
        ref: where an ESConv item's text lies (None for written items).
        sha256: the hex sha256 of an ESConv item's text (:func:`text_sha256`); None for written.
        rule: the labelling rule of an ESConv item (``"written"`` for written items).
    """

    id: str
    label: str
    split: str
    minor: bool
    source: str
    tags: tuple[str, ...]
    text: str | None
    ref: EsconvRef | None
    sha256: str | None
    rule: str

    def to_json(self) -> dict[str, Any]:
        """The item as one line of the frozen file (keys in a fixed order)."""
        out: dict[str, Any] = {"id": self.id, "label": self.label, "split": self.split,
                               "minor": self.minor, "source": self.source}
        if self.tags:
            out["tags"] = list(self.tags)
        if self.text is not None:
            out["text"] = self.text
        if self.ref is not None:
            out["ref"] = {"file": self.ref.file, "dialogue": self.ref.dialogue,
                          "turn": self.ref.turn}
            out["sha256"] = self.sha256
        out["rule"] = self.rule
        return out


def esconv_text(content: str) -> str:
    """An ESConv turn's text as the suite uses it: whitespace runs collapsed to one space."""
    return " ".join(content.split())


def text_sha256(text: str) -> str:
    """Hex sha256 of the UTF-8 bytes of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _item(value: dict[str, Any]) -> SupportItem:
    """One decoded line as an item; ``ValueError`` says what is wrong."""
    unknown = set(value) - _FIELDS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    for key in ("id", "label", "split", "source", "rule"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise ValueError(f"'{key}' must be a non-empty string")
    if value["label"] not in SUPPORT_LABELS:
        raise ValueError(f"unknown label {value['label']!r}; valid: {', '.join(SUPPORT_LABELS)}")
    if value["split"] not in SPLITS:
        raise ValueError(f"unknown split {value['split']!r}; valid: {', '.join(SPLITS)}")
    if value["source"] not in SOURCES:
        raise ValueError(f"unknown source {value['source']!r}; valid: {', '.join(SOURCES)}")
    if not isinstance(value.get("minor"), bool):
        raise ValueError("'minor' must be true or false")
    tags = value.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise ValueError("'tags' must be a list of non-empty strings")
    if value["source"] == "written":
        if not isinstance(value.get("text"), str) or not value["text"].strip():
            raise ValueError("a written item needs its 'text'")
        if "ref" in value or "sha256" in value:
            raise ValueError("a written item has no 'ref' or 'sha256'")
        return SupportItem(value["id"], value["label"], value["split"], value["minor"],
                           value["source"], tuple(tags), value["text"], None, None, value["rule"])
    ref, digest = value.get("ref"), value.get("sha256")
    if "text" in value:
        raise ValueError("an esconv item has no 'text' (it is read from the safety-data folder)")
    if not isinstance(ref, dict) or set(ref) != {"file", "dialogue", "turn"}:
        raise ValueError("an esconv item needs 'ref': {\"file\", \"dialogue\", \"turn\"}")
    if not isinstance(ref["file"], str) or not all(
            isinstance(ref[k], int) and not isinstance(ref[k], bool) and ref[k] >= 0
            for k in ("dialogue", "turn")):
        raise ValueError("'ref' needs a file name and non-negative integer dialogue and turn")
    if not isinstance(digest, str) or len(digest) != 64 or set(digest) - set("0123456789abcdef"):
        raise ValueError("an esconv item needs 'sha256', 64 lower-case hex digits")
    return SupportItem(value["id"], value["label"], value["split"], value["minor"], value["source"],
                       tuple(tags), None, EsconvRef(ref["file"], ref["dialogue"], ref["turn"]),
                       digest, value["rule"])


def read_support_items(path: str | Path | None = None) -> list[SupportItem]:
    """The items of the frozen file, in file order (no data folder needed: ESConv texts are not
    read).

    Args:
        path: the frozen file (default :data:`SUITE_FILE`).

    Raises:
        DataError: the file is missing, or two items share an id.
        InputLineError: a line is not a valid item (names the file, the line and the fix).
    """
    path = Path(path) if path is not None else SUITE_FILE
    if not path.is_file():
        raise DataError(f"the support suite file {path} is missing; {_REBUILD}")
    items: list[SupportItem] = []
    seen: dict[str, int] = {}
    for number, value in iter_jsonl(path):
        try:
            item = _item(value)
        except ValueError as exc:
            raise InputLineError(str(path), number, f"{exc}; {_REBUILD}") from None
        if item.id in seen:
            raise InputLineError(str(path), number,
                                 f"id {item.id!r} repeats line {seen[item.id]}; {_REBUILD}")
        seen[item.id] = number
        items.append(item)
    if not items:
        raise DataError(f"the support suite file {path} has no items; {_REBUILD}")
    return items


def _resolve(item: SupportItem, folder: Path, dialogues: dict[str, list[Any]], suite_file: Path
             ) -> str:
    """The text of an ESConv item, read from ``folder`` and checked against its hash."""
    assert item.ref is not None  # only called for esconv items, which _item gives a ref
    ref = item.ref
    if ref.file not in dialogues:
        path = data_file(folder, ref.file)
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{path} is not valid JSON ({exc}); point PSA_GUARD_DATA at an "
                            "unmodified copy of safety-data") from exc
        if not isinstance(loaded, list):
            raise DataError(f"{path} should hold a list of dialogues; point PSA_GUARD_DATA at "
                            "an unmodified copy of safety-data")
        dialogues[ref.file] = loaded
    where = f"{folder / ref.file} dialogue {ref.dialogue} turn {ref.turn}"
    fix = ("point PSA_GUARD_DATA at an unmodified copy of safety-data, or rebuild the suite with "
           "`python scripts/build_support_suite.py`")
    try:
        turn = dialogues[ref.file][ref.dialogue]["dialog"][ref.turn]
        speaker, content = turn["speaker"], turn["content"]
    except (IndexError, KeyError, TypeError):
        raise DataError(f"support suite item {item.id} ({suite_file}): {where} does not exist; "
                        f"{fix}") from None
    if speaker != "speaker" or not isinstance(content, str):
        raise DataError(f"support suite item {item.id} ({suite_file}): {where} is not a seeker "
                        f"turn; {fix}")
    text = esconv_text(content)
    if text_sha256(text) != item.sha256:
        raise DataError(f"support suite item {item.id} ({suite_file}): the text of {where} does "
                        f"not match its recorded sha256; {fix}")
    return text


def load_support_suite(split: str = "eval", data: str | Path | None = None, *,
                       path: str | Path | None = None) -> list[SupportPrompt]:
    """The support suite's messages of one split (``"tune"``, ``"eval"``, or ``"all"``), in file
    order, with ESConv texts read from the safety-data folder and verified against their hashes.

    Args:
        split: which half; the ``eval`` half is never used for tuning.
        data: the safety-data folder (default: ``$PSA_GUARD_DATA`` or ``../shared/safety-data``).
        path: the frozen file (default :data:`SUITE_FILE`).

    Raises:
        ConfigurationError: unknown split.
        DataError: the frozen file or the data folder is missing or malformed, or an ESConv text
            does not match its hash (the message names the item id and both files).
    """
    if split not in (*SPLITS, "all"):
        raise ConfigurationError(f"unknown support suite split {split!r}; valid: tune, eval, all")
    suite_file = Path(path) if path is not None else SUITE_FILE
    items = [i for i in read_support_items(suite_file) if split in ("all", i.split)]
    folder = require_data_dir(data) if any(i.ref for i in items) else None
    dialogues: dict[str, list[Any]] = {}
    out = []
    for item in items:
        if item.text is not None:
            text = item.text
        else:
            assert folder is not None
            text = _resolve(item, folder, dialogues, suite_file)
        out.append(SupportPrompt(SUITE_NAME, item.id, text, item.label, item.split, item.minor,
                                 item.source, item.tags))
    return out
