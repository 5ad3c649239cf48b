"""The local moderation scorer: all-MiniLM-L6-v2 embeddings and a trained logistic head, offline.

The head is the moderation scorer's own (``artifacts/moderation.*``, built by
``scripts/train_moderation.py`` on training-side data only); it is not an evaluation judge, so the
judges stay independent of what they measure. The embedder is the one the judges use
(:mod:`psa_guard.core.embedder`), loaded once per process.

Artifacts (one head named ``moderation``)::

    moderation.safetensors   weight, bias, mean, std (float32)
    moderation.json          provenance: data files and their sha256, counts, split, metrics
    moderation.sha256        sha256sum lines of the two files above

A head whose files do not match the recorded checksums is refused with
:class:`~psa_guard.errors.ChecksumError` (:func:`psa_guard.core.checksums.load_head`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from psa_guard.core.checksums import load_head
from psa_guard.core.embedder import EMBEDDING_DIM
from psa_guard.core.heads import LinearHead
from psa_guard.errors import ModerationUnavailableError
from psa_guard.moderation.base import check_texts

__all__ = [
    "ARTIFACTS_DIR",
    "HEAD_NAME",
    "LazyDefaultScorer",
    "LocalModerationScorer",
    "default_scorer",
    "load_moderation_head",
]

logger = logging.getLogger(__name__)

#: Where the committed moderation head lives.
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
#: File stem of the moderation head.
HEAD_NAME = "moderation"
_REBUILD = (
    "restore it (`git checkout -- psa_guard/moderation/artifacts`) or rebuild it with "
    "`python scripts/train_moderation.py`"
)

_default_lock = threading.Lock()
_default: LocalModerationScorer | None = None


def load_moderation_head(folder: Path = ARTIFACTS_DIR,
                         name: str = HEAD_NAME) -> tuple[LinearHead, dict[str, Any]]:
    """Load the verified moderation head and its provenance.

    Raises:
        ModelNotFoundError: a file is missing.
        ChecksumError: a file does not match its recorded checksum.
        ModelLoadError: the head is unreadable or does not take 384-d embeddings.
    """
    return load_head(name, folder, fix=_REBUILD, kind="moderation head", dim=EMBEDDING_DIM)


class LocalModerationScorer:
    """Harm probability of each text from a logistic head on MiniLM sentence embeddings.

    It reads a text as it is, so it scores user requests and assistant responses alike (see
    ``docs/moderation.md`` for what it was trained on and how well it does on each).

    Args:
        embedder: anything with ``encode(texts, batch_size=...) -> (n, 384) float32 array``
            (normally :func:`psa_guard.core.embedder.load_embedder`).
        head: the trained :class:`~psa_guard.core.heads.LinearHead`.
        provenance: the head's provenance record (kept for reports).
        name: the scorer name.
        batch_size: texts per embedding batch.
    """

    def __init__(self, embedder: Any, head: LinearHead, provenance: dict[str, Any] | None = None,
                 name: str = "local", batch_size: int = 64) -> None:
        self.embedder = embedder
        self.head = head
        self.provenance = dict(provenance or {})
        self.name = name
        self.batch_size = batch_size
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: Path = ARTIFACTS_DIR, name: str = "local") -> LocalModerationScorer:
        """Load the committed head (verified) and the shared offline embedder.

        Raises:
            ModelNotFoundError: the head files or the embedding model are missing.
            ChecksumError: the head does not match its recorded checksums.
            ModelLoadError: the head is unreadable or has the wrong width.
        """
        from psa_guard.core.embedder import load_embedder

        head, provenance = load_moderation_head(Path(folder))
        return cls(load_embedder(), head, provenance, name=name)

    def score(self, texts: Sequence[str]) -> list[float]:
        """One harm probability in ``[0, 1]`` per text, in order.

        Raises:
            ConfigurationError: ``texts`` is not a sequence of strings.
            ModerationUnavailableError: the embedder failed (the cause is chained).
        """
        items = check_texts(texts)
        if not items:
            return []
        return self.score_features(self.features(items))

    def features(self, items: list[str]) -> np.ndarray:
        """The sentence embeddings of ``items`` ``(n, 384)`` float32 (shared with other heads).

        Raises:
            ModerationUnavailableError: the embedder failed (the cause is chained).
        """
        try:
            with self._lock:  # one forward at a time: torch already uses every core
                features = self.embedder.encode(items, batch_size=self.batch_size)
        except Exception as exc:  # any embedder failure means "cannot answer", never "safe"
            raise ModerationUnavailableError(
                f"local embedder failed: {type(exc).__name__}: {exc}"
            ) from exc
        return np.asarray(features, dtype=np.float32)

    def score_features(self, features: np.ndarray) -> list[float]:
        """The harm probability of each row of :meth:`features`."""
        probs = self.head.predict_proba(features)
        return [float(min(1.0, max(0.0, p))) for p in probs]

    def __repr__(self) -> str:
        return f"LocalModerationScorer(name={self.name!r}, dim={self.head.dim})"


def default_scorer() -> LocalModerationScorer:
    """The local scorer on the committed head, loaded lazily once per process.

    Raises:
        ModelNotFoundError: the head or the embedding model is missing.
        ChecksumError: the head does not match its recorded checksums.
    """
    global _default
    with _default_lock:
        if _default is None:
            logger.info("loading the local moderation scorer from %s", ARTIFACTS_DIR)
            _default = LocalModerationScorer.load()
        return _default


class LazyDefaultScorer:
    """Stands for :func:`default_scorer`, loading it on the first :meth:`score` call.

    For constructors that must do no I/O: holding one costs nothing until a text is scored.
    """

    name = "local"

    def score(self, texts: Sequence[str]) -> list[float]:
        """:meth:`LocalModerationScorer.score` of the default scorer (loaded on first use)."""
        return default_scorer().score(texts)

    def score_detailed(self, texts: Sequence[str]) -> list[tuple[float, dict[str, float]]]:
        """The default scorer's harm score and the category head's scores (``categories.*``),
        from one embedding of each text; what policies with category rules read.

        Raises:
            ModerationUnavailableError: the embedder failed.
            ModelNotFoundError, ChecksumError: a head is missing or does not match its checksum.
        """
        from psa_guard.categories import CATEGORIES
        from psa_guard.moderation.categories import default_category_scorer

        items = check_texts(texts)
        if not items:
            return []
        base, categories = default_scorer(), default_category_scorer()
        features = base.features(items)
        probs = np.clip(categories.head.predict_proba(features), 0.0, 1.0)
        return [(overall, dict(zip(CATEGORIES, map(float, row), strict=True)))
                for overall, row in zip(base.score_features(features), probs, strict=True)]

    def __repr__(self) -> str:
        return "LazyDefaultScorer()"
