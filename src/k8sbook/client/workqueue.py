"""The controllers' work queue: deduplicating, rate limited, delayed.

Mirrors ``k8s.io/client-go/util/workqueue``: ``Type`` (an item added while queued is not added
twice; an item added while being processed is queued again only after ``Done``), the
``DelayingInterface`` (``AddAfter``) and the ``RateLimitingInterface`` (``AddRateLimited``,
``Forget``, ``NumRequeues``) with ``DefaultControllerRateLimiter``: the larger of a per-item
exponential backoff (5 ms doubling up to 1000 s) and an overall token bucket (10 per second,
burst 100). Workers are callbacks on the virtual-time loop instead of goroutines.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from k8sbook.core.clock import Clock


class ItemExponentialFailureRateLimiter:
    def __init__(self, base: float = 0.005, maximum: float = 1000.0) -> None:
        self.base, self.maximum = base, maximum
        self.failures: dict[Hashable, int] = {}

    def when(self, item: Hashable, now: float) -> float:
        n = self.failures.get(item, 0)
        self.failures[item] = n + 1
        return min(self.base * (2 ** n), self.maximum)

    def forget(self, item: Hashable) -> None:
        self.failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self.failures.get(item, 0)


class BucketRateLimiter:
    """A token bucket (``golang.org/x/time/rate``): ``qps`` tokens a second, ``burst`` max."""

    def __init__(self, qps: float = 10.0, burst: int = 100) -> None:
        self.qps, self.burst = qps, burst
        self.tokens = float(burst)
        self.last = 0.0

    def when(self, item: Hashable, now: float) -> float:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.qps)
        self.last = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.qps

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    def __init__(self, *limiters: Any) -> None:
        self.limiters = limiters

    def when(self, item: Hashable, now: float) -> float:
        return max(lim.when(item, now) for lim in self.limiters)

    def forget(self, item: Hashable) -> None:
        for lim in self.limiters:
            lim.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(lim.num_requeues(item) for lim in self.limiters)


def default_controller_rate_limiter() -> MaxOfRateLimiter:
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(), BucketRateLimiter())


class RateLimitingQueue:
    """A work queue; call :meth:`run_worker` to have items processed on the loop."""

    def __init__(self, clock: Clock, name: str = "", rate_limiter: Any = None) -> None:
        self.clock = clock
        self.name = name
        self.rate_limiter = rate_limiter or default_controller_rate_limiter()
        #: the items waiting, oldest first (``Type.queue``)
        self.queue: deque[Hashable] = deque()
        self.dirty: set[Hashable] = set()
        self.processing: set[Hashable] = set()
        self.shutting_down = False
        self._worker: Callable[[Hashable], None] | None = None
        self._scheduled = False
        self.adds = 0
        #: (time, item, error) for every failed sync, as ``utilruntime.HandleError`` logs them
        self.errors: list[tuple[float, Hashable, str]] = []

    def __len__(self) -> int:
        return len(self.queue)

    def add(self, item: Hashable) -> None:
        if self.shutting_down or item in self.dirty:
            return
        self.adds += 1
        self.dirty.add(item)
        if item in self.processing:
            return
        self.queue.append(item)
        self._wake()

    def add_after(self, item: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(item)
        else:
            self.clock.call_later(delay, lambda: self.add(item), label=f"{self.name} add-after")

    def add_rate_limited(self, item: Hashable) -> None:
        self.add_after(item, self.rate_limiter.when(item, self.clock.now()))

    def forget(self, item: Hashable) -> None:
        self.rate_limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.rate_limiter.num_requeues(item)

    def get(self) -> Hashable | None:
        if not self.queue:
            return None
        item = self.queue.popleft()
        self.processing.add(item)
        self.dirty.discard(item)
        return item

    def done(self, item: Hashable) -> None:
        self.processing.discard(item)
        if item in self.dirty:
            self.queue.append(item)
            self._wake()

    def shut_down(self) -> None:
        self.shutting_down = True

    # -- workers on the loop ---------------------------------------------------------------
    def run_worker(self, sync: Callable[[Hashable], None]) -> None:
        """Process items with ``sync``; an exception requeues the item rate-limited
        (``processNextWorkItem``), a clean return forgets its failures."""
        self._worker = sync
        self._wake()

    def _wake(self) -> None:
        if self._worker is not None and not self._scheduled and self.queue:
            self._scheduled = True
            self.clock.call_soon(self._process, label=f"{self.name} worker")

    def _process(self) -> None:
        self._scheduled = False
        item = self.get()
        if item is None or self._worker is None:
            return
        try:
            self._worker(item)
        except Exception as err:  # noqa: BLE001 - a failed sync is retried, as in controllers
            self.errors.append((self.clock.now(), item, f"{type(err).__name__}: {err}"))
            self.add_rate_limited(item)
        else:
            self.forget(item)
        finally:
            self.done(item)
        self._wake()
