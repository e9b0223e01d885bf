"""Virtual time and the event loop every model component runs on.

Mirrors the role of ``k8s.io/utils/clock`` (``clock.WithTicker`` and its ``testing.FakeClock``):
Kubernetes components never read the wall clock directly but through a clock interface, which
their own tests replace with a fake one. The model goes one step further and has *only* a fake
clock: time advances when the loop runs the next scheduled callback, never by itself. There
are no threads; callbacks scheduled for the same instant run in the order they were scheduled.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

#: Virtual time 0 is this instant; timestamps in objects are rendered from it.
EPOCH = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)


@dataclass(order=True, slots=True)
class Timer:
    """A callback scheduled on the loop; ``cancel()`` stops it from running."""

    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    label: str = field(default="", compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """Virtual time plus a single-threaded event loop.

    >>> c = Clock()
    >>> seen = []
    >>> _ = c.call_later(2.0, lambda: seen.append(c.now()))
    >>> c.run_until(5.0)
    >>> seen, c.now()
    ([2.0], 5.0)
    """

    def __init__(self, start: float = 0.0) -> None:
        """``start``: the virtual time the loop begins at (seconds since :data:`EPOCH`;
        ``k8sbook serve`` starts at the wall clock's instant, everything else at 0)."""
        self._now = float(start)
        self._seq = 0
        self._queue: list[Timer] = []
        self._stamp_second: int | None = None
        self._stamp = ""
        self._micro_at: float | None = None
        self._micro = ""

    # -- time ------------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds of virtual time since :data:`EPOCH`."""
        return self._now

    def timestamp(self, at: float | None = None) -> str:
        """RFC 3339 time as the API writes it (``metav1.Time``: whole seconds, UTC)."""
        second = int(self._now if at is None else at)
        if second != self._stamp_second:  # the text of the last second asked, kept
            self._stamp_second = second
            self._stamp = (EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._stamp

    def micro_timestamp(self, at: float | None = None) -> str:
        """RFC 3339 with microseconds (``metav1.MicroTime``, used by Leases and Events)."""
        t = self._now if at is None else at
        if t != self._micro_at:  # the text of the last instant asked, kept
            self._micro = (EPOCH + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self._micro_at = t
        return self._micro

    def nano_timestamp(self, at: float | None = None) -> str:
        """Go's ``time.RFC3339Nano`` (nanoseconds, trailing zeros dropped): the time of each
        line of a container log file and of ``kubectl logs --timestamps``."""
        t = self._now if at is None else at
        whole = EPOCH + timedelta(seconds=int(t))
        nanos = round((t - int(t)) * 1e9)
        frac = f".{nanos:09d}".rstrip("0") if nanos else ""
        return whole.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"

    @staticmethod
    def parse(stamp: str) -> float:
        """Inverse of :meth:`timestamp` / :meth:`micro_timestamp`."""
        if "." in stamp:  # at most microseconds for strptime
            head, frac = stamp.rstrip("Z").split(".", 1)
            stamp = f"{head}.{frac[:6]}Z"
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in stamp else "%Y-%m-%dT%H:%M:%SZ"
        return (datetime.strptime(stamp, fmt).replace(tzinfo=UTC) - EPOCH).total_seconds()

    # -- scheduling ------------------------------------------------------------------------
    def call_at(self, when: float, callback: Callable[[], None], label: str = "") -> Timer:
        """Run ``callback`` at virtual time ``when`` (never in the past)."""
        self._seq += 1
        timer = Timer(max(when, self._now), self._seq, callback, label)
        heapq.heappush(self._queue, timer)
        return timer

    def call_later(self, delay: float, callback: Callable[[], None], label: str = "") -> Timer:
        return self.call_at(self._now + max(delay, 0.0), callback, label)

    def call_soon(self, callback: Callable[[], None], label: str = "") -> Timer:
        return self.call_at(self._now, callback, label)

    def pending(self) -> int:
        return sum(1 for t in self._queue if not t.cancelled)

    def next_time(self) -> float | None:
        while self._queue and self._queue[0].cancelled:
            heapq.heappop(self._queue)
        return self._queue[0].when if self._queue else None

    # -- running ---------------------------------------------------------------------------
    def step(self) -> bool:
        """Run the next callback; False when nothing is scheduled."""
        when = self.next_time()
        if when is None:
            return False
        timer = heapq.heappop(self._queue)
        self._now = timer.when
        timer.callback()
        return True

    def run_until(self, until: float, max_steps: int = 1_000_000) -> None:
        """Run every callback due up to ``until``, then set the time to ``until``."""
        steps = 0
        while True:
            when = self.next_time()
            if when is None or when > until:
                break
            self.step()
            steps += 1
            if steps >= max_steps:
                raise RuntimeError(f"more than {max_steps} steps before t={until}")
        self._now = max(self._now, until)

    def run_for(self, seconds: float) -> None:
        self.run_until(self._now + seconds)

    def run_until_idle(self, limit: float = 3600.0) -> None:
        """Run until nothing is due before ``now + limit`` (periodic timers never go idle)."""
        self.run_until(self._now + limit)
