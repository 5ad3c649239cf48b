"""Moderation categories, and the local scorer that gives a probability for each of them.

The categories are OpenAI's moderation categories (the 13 keys of ``category_scores`` in a
response of ``omni-moderation-latest``) followed by two distress signals of psa-guard's own:

==========================  =======  ==========================================================
category                    kind     a text ...
==========================  =======  ==========================================================
harassment                  harm     harasses, insults or bullies someone
harassment/threatening      harm     ... and threatens violence or serious harm
hate                        harm     demeans a group for a protected attribute
hate/threatening            harm     ... and calls for violence against it
illicit                     harm     asks for or gives help with wrongdoing (fraud, hacking, ...)
illicit/violent             harm     ... that is violent, or with weapons
self-harm                   distress is about self-harm or suicide (a person at risk)
self-harm/intent            distress the writer means to harm or kill themselves
self-harm/instructions      harm     asks for or gives methods of self-harm, or encourages it
sexual                      harm     sexual content
sexual/minors               harm     sexual content involving minors
violence                    harm     violence, physical injury, or incitement to it
violence/graphic            harm     ... in graphic detail
abuse_disclosure            distress the writer discloses abuse they suffer (child or adult)
medical_emergency           distress someone needs emergency medical help now
==========================  =======  ==========================================================

*Harm* categories are texts that ask for (or are) harmful content; *distress* categories are a
person at risk, who needs care and resources rather than a refusal. A request for self-harm methods
is both (``self-harm/instructions`` with ``self-harm/intent``).

:class:`LocalCategoryScorer` scores every category with one logistic head per category on the
all-MiniLM-L6-v2 sentence embedding (``artifacts/categories.*``, built by
``scripts/train_category_scorer.py`` from ``scripts/build_category_data.py``'s data). Its ``score``
is the overall harm probability, the maximum over the harm categories, so it is a
:class:`~psa_guard.moderation.base.ModerationScorer`; ``score_categories`` gives every category.
See ``docs/moderation_categories.md`` for the data and the held-out numbers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from psa_guard.categories import (
    CATEGORIES,
    DISTRESS_CATEGORIES,
    HARM_CATEGORIES,
    OPENAI_CATEGORIES,
)
from psa_guard.core.embedder import EMBEDDER_NAME, EMBEDDING_DIM
from psa_guard.core.multihead import MatrixHead, load_matrix_head
from psa_guard.errors import ConfigurationError, ModelLoadError, ModerationUnavailableError
from psa_guard.moderation.base import check_texts
from psa_guard.moderation.local import ARTIFACTS_DIR

__all__ = [
    "CATEGORIES",
    "CATEGORY_HEAD_NAME",
    "DISTRESS_CATEGORIES",
    "HARM_CATEGORIES",
    "OPENAI_CATEGORIES",
    "OPENAI_CATEGORY_MAP",
    "LocalCategoryScorer",
    "default_category_scorer",
    "load_category_head",
]

logger = logging.getLogger(__name__)

#: A key of an OpenAI moderation response's ``categories``/``category_scores`` -> our category.
#: The identity on the 13 keys: psa-guard uses OpenAI's names and meanings unchanged, so an HTTP
#: scorer's per-category answers line up with the local scorer's. The two distress categories
#: have no OpenAI counterpart. (The OpenAI Python SDK's attribute names, such as
#: ``self_harm_intent``, are aliases of these keys; ``model_dump(by_alias=True)`` gives the keys.)
OPENAI_CATEGORY_MAP: dict[str, str] = {name: name for name in OPENAI_CATEGORIES}

#: File stem of the committed category head (``artifacts/categories.*``).
CATEGORY_HEAD_NAME = "categories"
_REBUILD = (
    "restore it (`git checkout -- psa_guard/moderation/artifacts`) or rebuild it with "
    "`python scripts/build_category_data.py` and `python scripts/train_category_scorer.py`"
)
_HARM_INDEX = np.asarray([CATEGORIES.index(c) for c in HARM_CATEGORIES])

_default_lock = threading.Lock()
_default: LocalCategoryScorer | None = None


def load_category_head(folder: Path = ARTIFACTS_DIR, name: str = CATEGORY_HEAD_NAME
                       ) -> tuple[MatrixHead, dict[str, Any]]:
    """Load the verified category head and its provenance.

    Raises:
        ModelNotFoundError: a file is missing.
        ChecksumError: a file does not match its recorded checksum.
        ModelLoadError: the head is unreadable, its outputs are not :data:`CATEGORIES` in order,
            it does not take 384-d embeddings, or it was trained on other features.
    """
    head, provenance = load_matrix_head(name, folder, fix=_REBUILD, kind="category head",
                                        outputs=CATEGORIES, dim=EMBEDDING_DIM)
    features = provenance.get("features", {})
    if not isinstance(features, dict) or features.get("model") != EMBEDDER_NAME:
        raise ModelLoadError(f"category head {name!r} in {folder} was trained on features "
                             f"{features!r}, not {EMBEDDER_NAME} embeddings; {_REBUILD}")
    return head, provenance


class LocalCategoryScorer:
    """A probability for each of :data:`CATEGORIES`, from logistic heads on MiniLM embeddings.

    It reads a text as it is (a user request or an assistant reply). The constructor does no
    I/O; :meth:`load` reads the committed head and the shared embedder.

    Args:
        embedder: anything with ``encode(texts, batch_size=...) -> (n, D) float32 array``
            (normally :func:`psa_guard.core.embedder.load_embedder`).
        head: a :class:`~psa_guard.core.multihead.MatrixHead` with one row per category, in
            :data:`CATEGORIES` order.
        provenance: the head's provenance record (kept for reports).
        name: the scorer name.
        batch_size: texts per embedding batch.

    Raises:
        ConfigurationError: the head does not have one output per category.
    """

    def __init__(self, embedder: Any, head: MatrixHead, provenance: dict[str, Any] | None = None,
                 name: str = "local-categories", batch_size: int = 64) -> None:
        if head.outputs != len(CATEGORIES):
            raise ConfigurationError(f"the category head has {head.outputs} outputs; it needs one "
                                     f"per category ({len(CATEGORIES)}: {', '.join(CATEGORIES)})")
        self.embedder = embedder
        self.head = head
        self.provenance = dict(provenance or {})
        self.name = name
        self.batch_size = batch_size
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: Path = ARTIFACTS_DIR, name: str = "local-categories"
             ) -> LocalCategoryScorer:
        """The scorer on the verified head in ``folder`` and the shared offline embedder.

        Raises:
            ModelNotFoundError: the head files or the embedding model are missing.
            ChecksumError: the head does not match its recorded checksums.
            ModelLoadError: the head is unreadable or does not fit (see :func:`load_category_head`).
        """
        from psa_guard.core.embedder import load_embedder

        head, provenance = load_category_head(Path(folder))
        return cls(load_embedder(), head, provenance, name=name)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities ``(len(texts), len(CATEGORIES))`` float32 in [0, 1], rows in input order.

        Raises:
            ConfigurationError: ``texts`` is not a sequence of strings.
            ModerationUnavailableError: the embedder failed, or gave non-finite features.
        """
        items = check_texts(texts)
        if not items:
            return np.zeros((0, len(CATEGORIES)), dtype=np.float32)
        try:
            with self._lock:  # one forward at a time: torch already uses every core
                features = np.asarray(self.embedder.encode(items, batch_size=self.batch_size),
                                      dtype=np.float32)
        except Exception as exc:  # any embedder failure means "cannot answer", never "safe"
            raise ModerationUnavailableError(
                f"local embedder failed: {type(exc).__name__}: {exc}") from exc
        if features.shape != (len(items), self.head.dim) or not np.isfinite(features).all():
            raise ModerationUnavailableError(
                f"local embedder gave features of shape {features.shape} (expected "
                f"{(len(items), self.head.dim)}) or non-finite values")
        return np.clip(self.head.predict_proba(features), 0.0, 1.0)

    def score(self, texts: Sequence[str]) -> list[float]:
        """The harm probability of each text: the maximum over :data:`HARM_CATEGORIES`.

        Raises:
            ConfigurationError: ``texts`` is not a sequence of strings.
            ModerationUnavailableError: the embedder failed.
        """
        probs = self.probabilities(texts)
        return [float(p) for p in probs[:, _HARM_INDEX].max(axis=1)] if len(probs) else []

    def score_categories(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """``{category: probability}`` for each text, keys in :data:`CATEGORIES` order.

        Raises:
            ConfigurationError: ``texts`` is not a sequence of strings.
            ModerationUnavailableError: the embedder failed.
        """
        return [dict(zip(CATEGORIES, map(float, row))) for row in self.probabilities(texts)]

    def __repr__(self) -> str:
        return f"LocalCategoryScorer(name={self.name!r}, categories={len(CATEGORIES)})"


def default_category_scorer() -> LocalCategoryScorer:
    """The category scorer on the committed head, loaded lazily once per process.

    Raises:
        ModelNotFoundError: the head or the embedding model is missing.
        ChecksumError: the head does not match its recorded checksums.
        ModelLoadError: the head does not fit this version of psa-guard.
    """
    global _default
    with _default_lock:
        if _default is None:
            logger.info("loading the local category scorer from %s", ARTIFACTS_DIR)
            _default = LocalCategoryScorer.load()
        return _default
