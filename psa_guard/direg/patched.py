"""A *patched copy* of the loaded model, cached per (model, vector, lambda, K): what the ``direg``
and ``full`` configurations generate with.

:func:`psa_guard.loading.load_model` caches one model per process and the ``base`` configuration
generates with it, so the shared model is never patched in place: :func:`load_patched` deep-copies
it, patches the copy (:func:`psa_guard.direg.patch.apply_harm_vector`) and caches the result.
"""

from __future__ import annotations

import copy
import logging
import threading
from pathlib import Path

from psa_guard.direg.config import DEFAULT_K_PERCENT, DEFAULT_LAMBDA, DiRegSettings
from psa_guard.direg.patch import PatchHandle, apply_harm_vector
from psa_guard.direg.vector import SHIPPED_VECTOR, HarmVector, base_checksum
from psa_guard.generation import ChatGenerator
from psa_guard.loading import LoadedModel

__all__ = ["clear_patched_cache", "direg_generator", "load_patched"]

logger = logging.getLogger(__name__)

_cache: dict[tuple[int, str, float, float], tuple[LoadedModel, LoadedModel, PatchHandle]] = {}
_lock = threading.Lock()


def load_patched(loaded: LoadedModel, *, vector_path: Path | None = None,
                 lam: float | None = None, k_percent: float | None = None,
                 vector: HarmVector | None = None, checksum: str | None = None,
                 ) -> tuple[LoadedModel, PatchHandle]:
    """A patched copy of ``loaded`` (cached), and the handle of its patch.

    Args:
        loaded: the shared model; it is not modified.
        vector_path: harm vector file (default: the shipped one).
        lam: lambda (default :data:`DEFAULT_LAMBDA`).
        k_percent: K in % (default :data:`DEFAULT_K_PERCENT`).
        vector: an already-loaded harm vector (wins over ``vector_path``; not cached by path).
        checksum: the model's base checksum (default: :func:`base_checksum` of ``loaded``).

    Raises:
        HarmVectorError: unreadable vector, wrong base model, shape mismatch, or NaN/inf.
    """
    lam = DEFAULT_LAMBDA if lam is None else float(lam)
    k = DEFAULT_K_PERCENT if k_percent is None else float(k_percent)
    path = Path(vector_path) if vector_path is not None else SHIPPED_VECTOR
    key = (id(loaded.model), f"obj:{id(vector)}" if vector is not None else str(path.resolve()),
           lam, k)
    with _lock:
        if key in _cache:
            return _cache[key][1], _cache[key][2]
        harm = vector if vector is not None else HarmVector.load(path)
        model = copy.deepcopy(loaded.model)
        handle = apply_harm_vector(model, harm, lam, k,
                                   checksum=checksum if checksum is not None
                                   else base_checksum(loaded))
        model.eval()
        patched = LoadedModel(model, loaded.tokenizer, f"{loaded.name}+direg(lambda={lam:g},K={k:g}%)",
                              loaded.source)
        _cache[key] = (loaded, patched, handle)  # keeps ``loaded`` alive, so its id stays unique
        logger.info("direg: patched copy of %s (lambda=%s, K=%s%%) in %.3f s", loaded.name, lam, k,
                    handle.seconds)
        return patched, handle


def direg_generator(loaded: LoadedModel, settings: DiRegSettings | None = None) -> ChatGenerator:
    """A generator on the patched copy of ``loaded`` (the ``direg`` configuration)."""
    settings = settings or DiRegSettings()
    patched, _ = load_patched(loaded, vector_path=settings.vector, lam=settings.lam,
                              k_percent=settings.k_percent)
    return ChatGenerator(patched)


def clear_patched_cache() -> None:
    """Forget every patched copy (frees their memory)."""
    with _lock:
        _cache.clear()
