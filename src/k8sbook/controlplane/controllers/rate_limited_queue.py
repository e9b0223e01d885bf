"""The node lifecycle controller's per-zone queue of nodes to taint ``NoExecute``.

Mirrors ``pkg/controller/nodelifecycle/scheduler/rate_limited_queue.go``:
``RateLimitedTimedQueue`` is a queue of node names ordered by the time each may be processed
(``TimedQueue``), with a set beside it (``UniqueQueue``) so a node is queued once: ``Add``
refuses a node already in the set, ``Remove`` takes it out of both, and a node processed
successfully leaves the queue but stays in the set (``RemoveFromQueue``), so it is not queued
again until the controller sees it healthy and calls ``Remove``. ``Try`` processes the head
while the zone's rate limiter (a token bucket, burst 1: ``EvictionRateLimiterBurst``) accepts;
``SwapLimiter`` replaces the limiter when the zone's state changes (a rate of 0 never accepts),
draining the new bucket if the old one was empty.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from k8sbook.client.flowcontrol import NeverRateLimiter, RateLimiter, TokenBucketRateLimiter

#: ``EvictionRateLimiterBurst``
EVICTION_RATE_LIMITER_BURST = 1


def new_limiter(qps: float, now: Callable[[], float]) -> RateLimiter:
    """A token bucket of burst 1 at ``qps``, or the never-accepting limiter for ``qps <= 0``."""
    if qps <= 0:
        return NeverRateLimiter()
    return TokenBucketRateLimiter(qps, EVICTION_RATE_LIMITER_BURST, now)


class RateLimitedTimedQueue:
    """Node names to process, at most as fast as the limiter allows."""

    def __init__(self, qps: float, now: Callable[[], float]) -> None:
        self.now = now
        self.limiter: RateLimiter = new_limiter(qps, now)
        self._heap: list[tuple[float, int, str]] = []
        self._queued: dict[str, int] = {}  # name -> sequence of its live heap entry
        self._set: set[str] = set()
        self._seq = 0

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, name: str) -> bool:
        """``Add``: queue ``name`` to be processed now, unless it is already in the set."""
        if name in self._set:
            return False
        self._set.add(name)
        self._push(name, self.now())
        return True

    def _push(self, name: str, at: float) -> None:
        self._seq += 1
        self._queued[name] = self._seq
        heapq.heappush(self._heap, (at, self._seq, name))

    def remove(self, name: str) -> bool:
        """``Remove``: out of the queue and the set (the node is healthy again)."""
        self._queued.pop(name, None)
        if name in self._set:
            self._set.discard(name)
            return True
        return False

    def _head(self) -> tuple[float, int, str] | None:
        while self._heap and self._queued.get(self._heap[0][2]) != self._heap[0][1]:
            heapq.heappop(self._heap)  # an entry removed or replaced since it was pushed
        return self._heap[0] if self._heap else None

    def try_process(self, fn: Callable[[str], tuple[bool, float]]) -> None:
        """``Try``: while a token is free and the head is due, run ``fn(name)``; on
        ``(False, wait)`` the node is retried after ``wait``, on ``(True, _)`` it leaves the
        queue (but not the set)."""
        head = self._head()
        while head is not None:
            if not self.limiter.try_accept():
                break
            now = self.now()
            if now < head[0]:
                break
            ok, wait = fn(head[2])
            if ok:
                self._queued.pop(head[2], None)
            else:
                self._push(head[2], now + wait + 1e-9)
            head = self._head()

    def swap_limiter(self, qps: float) -> None:
        """``SwapLimiter``: a new rate; burst 1, so an empty old bucket means an empty new one."""
        if self.limiter.qps() == qps:
            return
        new = new_limiter(qps, self.now)
        if not isinstance(new, NeverRateLimiter) and not self.limiter.try_accept():
            new.try_accept()
        self.limiter = new
