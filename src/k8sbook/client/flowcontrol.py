"""Client-side rate limiters on virtual time.

Mirrors ``k8s.io/client-go/util/flowcontrol`` (``throttle.go``):
``NewTokenBucketRateLimiter(qps, burst)`` is a token bucket (``golang.org/x/time/rate``) that
starts full with ``burst`` tokens and refills at ``qps`` tokens per second up to ``burst``;
``TryAccept`` takes a token if one is there and never waits. ``NewFakeNeverRateLimiter`` never
accepts: the node lifecycle controller swaps it in for a rate of 0 (no evictions at all).
"""

from __future__ import annotations

from collections.abc import Callable


class TokenBucketRateLimiter:
    """``flowcontrol.NewTokenBucketRateLimiter(qps, burst)`` on the clock ``now``."""

    def __init__(self, qps: float, burst: int, now: Callable[[], float]) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("a token bucket needs qps > 0 and burst >= 1")
        self._qps = float(qps)
        self.burst = burst
        self._now = now
        self._tokens = float(burst)
        self._last = now()

    def qps(self) -> float:
        return self._qps

    def _refill(self) -> None:
        now = self._now()
        # tokens are kept to 1e-9 so that 0.1/s gives exactly one token every 10 s
        self._tokens = min(float(self.burst),
                           round(self._tokens + (now - self._last) * self._qps, 9))
        self._last = now

    def try_accept(self) -> bool:
        """``TryAccept``: take a token now if there is one."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class NeverRateLimiter:
    """``flowcontrol.NewFakeNeverRateLimiter()``: a rate of 0; nothing is ever accepted."""

    def qps(self) -> float:
        return 0.0

    def try_accept(self) -> bool:
        return False


RateLimiter = TokenBucketRateLimiter | NeverRateLimiter
