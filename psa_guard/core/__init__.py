"""The bottom layer: files, checksums, logistic heads and the sentence embedder.

Everything above (evaluation, moderation, DiReg, Pv-Arm, jobs) builds on these; they import only
the standard library, numpy, safetensors, torch and :mod:`psa_guard.errors`, never a higher
psa-guard module (the embedder reads its model with ``transformers`` when it is loaded).

* :mod:`~psa_guard.core.atomic`: whole-file writes that are never half-done.
* :mod:`~psa_guard.core.jsonl`: JSON Lines reading with line-numbered errors, appending, repair.
* :mod:`~psa_guard.core.checksums`: ``file_sha256`` and the verified head loader and writer.
* :mod:`~psa_guard.core.heads`: :class:`LinearHead` and its training (pure functions).
* :mod:`~psa_guard.core.embedder`: all-MiniLM-L6-v2 sentence embeddings, offline.
"""

from __future__ import annotations

from psa_guard.core.atomic import atomic_path, write_atomic
from psa_guard.core.checksums import file_sha256, load_head, save_head, verify_head
from psa_guard.core.embedder import (
    EMBEDDER_NAME,
    EMBEDDING_DIM,
    Embedder,
    encode_cached,
    load_embedder,
)
from psa_guard.core.heads import LinearHead, balanced_weights, fit_logistic
from psa_guard.core.jsonl import (
    append_jsonl,
    dumps_line,
    iter_jsonl,
    parse_line,
    read_jsonl,
    read_jsonl_lenient,
    repair_jsonl_tail,
    write_jsonl,
)

__all__ = [
    "EMBEDDER_NAME",
    "EMBEDDING_DIM",
    "Embedder",
    "LinearHead",
    "append_jsonl",
    "atomic_path",
    "balanced_weights",
    "dumps_line",
    "encode_cached",
    "file_sha256",
    "fit_logistic",
    "iter_jsonl",
    "load_embedder",
    "load_head",
    "parse_line",
    "read_jsonl",
    "read_jsonl_lenient",
    "repair_jsonl_tail",
    "save_head",
    "verify_head",
    "write_atomic",
    "write_jsonl",
]
