from __future__ import annotations

from pathlib import Path

import numpy as np

from psa_guard.core.embedder import encode_cached


class CountingEmbedder:
    """Embeds a text as [len(text), number of 'a'] and counts the texts it was asked for."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)


def test_repeats_are_embedded_once_and_order_is_kept(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    out = encode_cached(embedder, ["bb", "a", "bb"], tmp_path / "cache")
    assert out.tolist() == [[2, 0], [1, 1], [2, 0]]
    assert embedder.calls == [["a", "bb"]]
    again = encode_cached(embedder, ["a", "bb", "bb"], tmp_path / "cache")  # same distinct texts
    assert again.tolist() == [[1, 1], [2, 0], [2, 0]]
    assert len(embedder.calls) == 1  # served from the cache
    encode_cached(embedder, ["a"], None)
    assert len(embedder.calls) == 2
