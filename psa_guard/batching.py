"""Micro-batching: concurrent single requests are coalesced into one batched call.

LangChain's ``batch`` and concurrent ``ainvoke`` calls reach a chat model as parallel single
requests. :class:`MicroBatcher` lets the first caller wait while others keep arriving (until a
``window_s`` passes with no new arrival, ``max_batch`` are pending, or ``max_wait_s`` is spent),
then runs every pending request that shares its key (same decoding settings) as one batch, so eight
parallel invokes cost one batch-8 forward per token rather than eight batch-1 forwards.
No thread is started: callers take turns leading.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["MicroBatcher"]

Req = TypeVar("Req")
Res = TypeVar("Res")


@dataclass
class _Slot(Generic[Req]):
    request: Req
    key: Hashable
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class MicroBatcher(Generic[Req, Res]):
    """Coalesce concurrent calls into batches.

    Args:
        run: processes a batch of requests, returning one result per request, in order.
        key: requests are only batched with requests of an equal key.
        max_batch: most requests per batch.
        window_s: the leader runs once this long passes with no new request.
        max_wait_s: the most a leader waits in all.
    """

    def __init__(
        self,
        run: Callable[[Sequence[Req]], Sequence[Res]],
        key: Callable[[Req], Hashable],
        max_batch: int = 8,
        window_s: float = 0.01,
        max_wait_s: float = 0.1,
    ) -> None:
        self.run = run
        self.key = key
        self.max_batch = max_batch
        self.window_s = window_s
        self.max_wait_s = max_wait_s
        self._cond = threading.Condition()
        self._pending: list[_Slot[Req]] = []
        self._leading = False

    def __call__(self, request: Req) -> Res:
        """Submit one request and block until its result is ready."""
        slot = _Slot(request, self.key(request))
        with self._cond:
            self._pending.append(slot)
        while True:
            with self._cond:
                while not slot.done and self._leading:
                    self._cond.wait()
                if slot.done:
                    break
                self._leading = True
            self._lead()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _gather(self) -> None:
        """Wait while requests keep arriving (bounded by ``max_batch`` and ``max_wait_s``)."""
        deadline = time.monotonic() + self.max_wait_s
        seen = -1
        while time.monotonic() < deadline:
            with self._cond:
                count = len(self._pending)
            if count >= self.max_batch or count == seen:
                return
            seen = count
            time.sleep(self.window_s)

    def _lead(self) -> None:
        self._gather()
        with self._cond:
            first = self._pending[0].key
            group = [s for s in self._pending if s.key == first][: self.max_batch]
            for slot in group:
                self._pending.remove(slot)
        try:
            results = self.run([s.request for s in group])
            if len(results) != len(group):
                raise RuntimeError(f"batch returned {len(results)} results for {len(group)} requests")
            for slot, result in zip(group, results):
                slot.result = result
        except BaseException as exc:  # every request of the batch sees the failure
            for slot in group:
                slot.error = exc
        with self._cond:
            for slot in group:
                slot.done = True
            self._leading = False
            self._cond.notify_all()
