"""Per-key exponential back-off, as the kubelet uses it for image pulls and crash loops.

Mirrors ``k8s.io/client-go/util/flowcontrol.Backoff`` (v1.35.0), which ``pkg/kubelet``
creates with ``backOffPeriod`` (10 s) and ``MaxContainerBackOff`` (5 min).
"""

from __future__ import annotations


class Backoff:
    """``flowcontrol.Backoff``: per-id exponential back-off."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.entries: dict[str, tuple[float, float]] = {}  # id -> (backoff, lastUpdate)

    def get(self, key: str) -> float:
        return self.entries.get(key, (0.0, 0.0))[0]

    def next(self, key: str, now: float) -> float:
        entry = self.entries.get(key)
        if entry is None or now - entry[1] > 2 * self.maximum:  # hasExpired
            backoff = self.initial
        else:
            backoff = min(entry[0] * 2, self.maximum)
        self.entries[key] = (backoff, now)
        return backoff

    def in_backoff_since(self, key: str, event_time: float, now: float) -> bool:
        """``IsInBackOffSince``: less than the back-off has passed since ``event_time``."""
        entry = self.entries.get(key)
        if entry is None or event_time - entry[1] > 2 * self.maximum:
            return False
        return now - event_time < entry[0]

    def in_backoff_since_update(self, key: str, now: float) -> bool:
        """``IsInBackOffSinceUpdate``: less than the back-off has passed since the last
        ``next``."""
        entry = self.entries.get(key)
        if entry is None or now - entry[1] > 2 * self.maximum:
            return False
        return now - entry[1] < entry[0]


def duration(seconds: int) -> str:
    """Go's ``time.Duration.String`` for whole seconds: 10s, 1m20s, 5m0s."""
    if seconds < 60:
        return f"{seconds}s"
    return f"{seconds // 60}m{seconds % 60}s"
