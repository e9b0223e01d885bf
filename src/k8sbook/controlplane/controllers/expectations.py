"""``ControllerExpectations`` from ``pkg/controller/controller_utils.go``.

A controller that has just asked for N creations must not act on the same object again before
its informer has seen them, or it would create them twice: it records "expect N adds", each
observed add lowers the count, and the key is synced again only when the count reaches zero
(or after ``ExpectationsTimeout``, five minutes, in case a watch event was lost).
"""

from __future__ import annotations

from dataclasses import dataclass

#: ``ExpectationsTimeout`` in controller_utils.go
EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class Expectation:
    add: int
    delete: int
    timestamp: float


class ControllerExpectations:
    def __init__(self) -> None:
        self.store: dict[str, Expectation] = {}

    def satisfied(self, key: str, now: float) -> bool:
        """``SatisfiedExpectations``: nothing outstanding, expired, or never set."""
        e = self.store.get(key)
        if e is None:
            return True
        if e.add <= 0 and e.delete <= 0:
            return True
        return now - e.timestamp > EXPECTATIONS_TIMEOUT

    def expect_creations(self, key: str, n: int, now: float) -> None:
        self.store[key] = Expectation(n, 0, now)

    def expect_deletions(self, key: str, n: int, now: float) -> None:
        self.store[key] = Expectation(0, n, now)

    def set_expectations(self, key: str, add: int, delete: int, now: float) -> None:
        """``SetExpectations``: creations and deletions asked for in one sync."""
        self.store[key] = Expectation(add, delete, now)

    def creation_observed(self, key: str) -> None:
        if key in self.store:
            self.store[key].add -= 1

    def deletion_observed(self, key: str) -> None:
        if key in self.store:
            self.store[key].delete -= 1

    def delete(self, key: str) -> None:
        self.store.pop(key, None)
