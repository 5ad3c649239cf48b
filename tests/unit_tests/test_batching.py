from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from psa_guard.batching import MicroBatcher


def _run_concurrently(batcher: MicroBatcher[tuple[str, int], str], requests: list[tuple[str, int]]):
    results: dict[int, object] = {}
    barrier = threading.Barrier(len(requests))

    def call(index: int) -> None:
        barrier.wait()
        try:
            results[index] = batcher(requests[index])
        except Exception as exc:  # recorded for the assertion
            results[index] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return [results[i] for i in range(len(requests))]


def test_concurrent_requests_are_coalesced_and_keys_kept_apart() -> None:
    batches: list[list[tuple[str, int]]] = []

    def run(requests: Sequence[tuple[str, int]]) -> list[str]:
        batches.append(list(requests))
        return [f"{text}:{key}" for text, key in requests]

    batcher = MicroBatcher(run, key=lambda r: r[1], max_batch=8, window_s=0.05)
    requests = [(f"q{i}", i % 2) for i in range(8)]
    results = _run_concurrently(batcher, requests)
    assert results == [f"q{i}:{i % 2}" for i in range(8)]
    assert len(batches) < 8  # coalesced
    for batch in batches:
        assert len({key for _, key in batch}) == 1  # never mixes keys


def test_max_batch_is_respected() -> None:
    sizes: list[int] = []

    def run(requests: Sequence[tuple[str, int]]) -> list[str]:
        sizes.append(len(requests))
        return ["ok"] * len(requests)

    batcher = MicroBatcher(run, key=lambda r: r[1], max_batch=3, window_s=0.05)
    assert _run_concurrently(batcher, [("q", 0)] * 7) == ["ok"] * 7
    assert max(sizes) <= 3 and sum(sizes) == 7


def test_a_failing_batch_raises_in_every_caller() -> None:
    def run(requests: Sequence[tuple[str, int]]) -> list[str]:
        raise RuntimeError("boom")

    batcher = MicroBatcher(run, key=lambda r: r[1], window_s=0.02)
    results = _run_concurrently(batcher, [("q", 0)] * 3)
    assert all(isinstance(r, RuntimeError) for r in results)
    with pytest.raises(RuntimeError, match="boom"):
        batcher(("again", 0))  # the batcher is still usable (and still failing) afterwards


def test_staggered_arrivals_still_share_one_batch() -> None:
    sizes: list[int] = []

    def run(requests: Sequence[tuple[str, int]]) -> list[str]:
        sizes.append(len(requests))
        return ["ok"] * len(requests)

    batcher = MicroBatcher(run, key=lambda r: r[1], max_batch=8, window_s=0.03, max_wait_s=1.0)
    threads = []
    for _ in range(5):  # each arrives 10 ms after the previous one: inside the 30 ms window
        threads.append(threading.Thread(target=batcher, args=(("q", 0),)))
        threads[-1].start()
        threading.Event().wait(0.01)
    for thread in threads:
        thread.join(timeout=10)
    assert sizes == [5]
