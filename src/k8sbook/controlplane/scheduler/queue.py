"""The scheduling queue: activeQ, backoffQ and the unschedulable pods.

Mirrors ``pkg/scheduler/backend/queue/scheduling_queue.go`` (``PriorityQueue``): new pods go
to ``activeQ``, ordered by the ``PrioritySort`` plugin (higher ``spec.priority`` first, then
the older entry). A pod the filters rejected goes to the unschedulable pods and waits for a
cluster event that may help (a node added or changed, an assigned pod deleted); the event
moves it back to ``activeQ``, or to ``backoffQ`` while its back-off lasts. The back-off is
``podInitialBackoffSeconds`` (1 s) doubled on every attempt up to ``podMaxBackoffSeconds``
(10 s). Every second completed back-offs are flushed to ``activeQ``; every 30 s pods that have
waited ``podMaxInUnschedulablePodsDuration`` (5 min) are moved too. A pod with
``schedulingGates`` is held back by the ``SchedulingGates`` PreEnqueue plugin.

activeQ is a heap, as upstream's: popping the next pod costs log(n), not a scan of the queue.

Simplified: no queueing hints (any of those events moves every unschedulable pod), and no
"move request during the cycle" bookkeeping.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from k8sbook.controlplane.scheduler.framework import Obj, pod_key, pod_priority

__all__ = ["QueuedPodInfo", "SchedulingQueue", "pod_key"]
from k8sbook.core.clock import Clock, Timer

POD_INITIAL_BACKOFF = 1.0
POD_MAX_BACKOFF = 10.0
POD_MAX_IN_UNSCHEDULABLE_PODS_DURATION = 300.0
FLUSH_BACKOFF_PERIOD = 1.0
FLUSH_UNSCHEDULABLE_PERIOD = 30.0


@dataclass
class QueuedPodInfo:
    key: str
    pod: Obj
    timestamp: float
    attempts: int = 0
    initial_attempt: float | None = None
    unschedulable_plugins: set[str] = field(default_factory=set)
    seq: int = 0


class SchedulingQueue:
    def __init__(self, clock: Clock, initial_backoff: float = POD_INITIAL_BACKOFF,
                 max_backoff: float = POD_MAX_BACKOFF) -> None:
        self.clock = clock
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.active: dict[str, QueuedPodInfo] = {}
        #: activeQ's order as upstream keeps it, a heap (``heap.Heap`` ordered by the
        #: PrioritySort ``Less``): (-priority, timestamp, seq, key); an entry whose pod has left
        #: activeQ (or came back with a new seq) is skipped when it reaches the top
        self._heap: list[tuple[int, float, int, str]] = []
        self.backoff: dict[str, QueuedPodInfo] = {}
        self.unschedulable: dict[str, QueuedPodInfo] = {}
        self.in_flight: dict[str, QueuedPodInfo] = {}
        self._seq = 0
        self._timers: list[Timer] = []
        self.on_active = lambda: None  # the scheduler's wake-up call
        #: (time, key, "activeQ"|"backoffQ"|"unschedulable", why) for figures and tests
        self.moves: list[tuple[float, str, str, str]] = []

    # -- periodic flushes ----------------------------------------------------------------
    def run(self) -> None:
        self._every(FLUSH_BACKOFF_PERIOD, self.flush_backoff_completed)
        self._every(FLUSH_UNSCHEDULABLE_PERIOD, self.flush_unschedulable_leftover)

    def _every(self, period: float, fn) -> None:
        def tick() -> None:
            fn()
            self._timers.append(self.clock.call_later(period, tick, label="scheduling queue"))
        self._timers.append(self.clock.call_later(period, tick, label="scheduling queue"))

    def close(self) -> None:
        for t in self._timers:
            t.cancel()

    # -- moves ---------------------------------------------------------------------------
    def _note(self, info: QueuedPodInfo, where: str, why: str) -> None:
        self.moves.append((round(self.clock.now(), 6), info.key, where, why))

    def _to_active(self, info: QueuedPodInfo, why: str) -> None:
        if info.pod["spec"].get("schedulingGates"):
            info.unschedulable_plugins = {"SchedulingGates"}
            self.unschedulable[info.key] = info
            self._note(info, "unschedulable", "gated")
            return
        self._seq += 1
        info.seq = self._seq
        self.active[info.key] = info
        heapq.heappush(self._heap, (-pod_priority(info.pod), info.timestamp, info.seq, info.key))
        self._note(info, "activeQ", why)
        self.on_active()

    def backoff_duration(self, info: QueuedPodInfo) -> float:
        """``calculateBackoffDuration``: initial x 2^(attempts-1), capped."""
        d = self.initial_backoff
        for _ in range(1, info.attempts):
            d *= 2
            if d > self.max_backoff:
                return self.max_backoff
        return d

    def backing_off(self, info: QueuedPodInfo) -> bool:
        return info.attempts > 0 and \
            self.clock.now() < info.timestamp + self.backoff_duration(info)

    def add(self, pod: Obj) -> None:
        key = pod_key(pod)
        if key in self.active or key in self.backoff or key in self.unschedulable \
                or key in self.in_flight:
            return
        self._to_active(QueuedPodInfo(key, pod, self.clock.now()), "PodAdd")

    def update(self, pod: Obj) -> None:
        key = pod_key(pod)
        for q in (self.active, self.backoff, self.in_flight):
            if key in q:
                q[key].pod = pod
                return
        if key in self.unschedulable:
            info = self.unschedulable[key]
            changed = info.pod.get("spec") != pod.get("spec") or \
                info.pod["metadata"].get("labels") != pod["metadata"].get("labels")
            info.pod = pod
            if changed:
                del self.unschedulable[key]
                self._requeue(info, "PodUpdate")
            return
        self.add(pod)

    def delete(self, pod: Obj) -> None:
        key = pod_key(pod)
        for q in (self.active, self.backoff, self.unschedulable, self.in_flight):
            q.pop(key, None)

    def pop(self) -> QueuedPodInfo | None:
        if not self.active:
            return None
        while True:
            _, _, seq, key = heapq.heappop(self._heap)
            info = self.active.get(key)
            if info is not None and info.seq == seq:
                break
        del self.active[info.key]
        info.attempts += 1
        if info.initial_attempt is None:
            info.initial_attempt = self.clock.now()
        self.in_flight[info.key] = info
        return info

    def done(self, key: str) -> None:
        self.in_flight.pop(key, None)

    def add_unschedulable(self, info: QueuedPodInfo, plugins: set[str]) -> None:
        """``AddUnschedulableIfNotPresent`` after a failed attempt."""
        self.in_flight.pop(info.key, None)
        info.timestamp = self.clock.now()
        info.unschedulable_plugins = set(plugins)
        if plugins:
            self.unschedulable[info.key] = info
            self._note(info, "unschedulable", ",".join(sorted(plugins)))
        else:  # an error, not a rejection: straight to back-off
            self.backoff[info.key] = info
            self._note(info, "backoffQ", "error")

    def _requeue(self, info: QueuedPodInfo, why: str) -> None:
        if self.backing_off(info):
            self.backoff[info.key] = info
            self._note(info, "backoffQ", why)
        else:
            self._to_active(info, why)

    def move_all_to_active_or_backoff(self, event: str) -> None:
        """``MoveAllToActiveOrBackoffQueue``: a cluster event that may make pods fit."""
        for key in sorted(self.unschedulable):
            info = self.unschedulable[key]
            if info.unschedulable_plugins == {"SchedulingGates"}:
                continue
            del self.unschedulable[key]
            self._requeue(info, event)

    def flush_backoff_completed(self) -> None:
        for key in sorted(self.backoff):
            info = self.backoff[key]
            if not self.backing_off(info):
                del self.backoff[key]
                self._to_active(info, "BackoffComplete")

    def flush_unschedulable_leftover(self) -> None:
        now = self.clock.now()
        for key in sorted(self.unschedulable):
            info = self.unschedulable[key]
            if now - info.timestamp > POD_MAX_IN_UNSCHEDULABLE_PODS_DURATION:
                del self.unschedulable[key]
                self._requeue(info, "UnschedulableTimeout")

    def pending(self) -> dict[str, list[str]]:
        return {"activeQ": sorted(self.active), "backoffQ": sorted(self.backoff),
                "unschedulable": sorted(self.unschedulable)}
