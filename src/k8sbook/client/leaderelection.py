"""Leader election through a ``coordination.k8s.io/v1`` Lease.

Mirrors ``k8s.io/client-go/tools/leaderelection`` with its ``resourcelock.LeaseLock``: every
candidate tries, every ``retry_period``, to acquire or renew the Lease. It may take the Lease
when it holds it already or when the record it last *observed* has not changed for
``lease_duration`` (measured on the candidate's own clock, from the moment it saw the change:
``observedTime``, not the ``renewTime`` written in the object). A leader that cannot renew for
``renew_deadline`` stops leading. Because ``renew_deadline`` (10 s) is shorter than
``lease_duration`` (15 s), the old leader has given up before anyone else may take over, so
there are never two leaders at once. Writes are compare-and-swap updates (``resourceVersion``),
so two candidates that race for an expired Lease cannot both win. A leader whose Lease is
still valid as it last observed it renews on the fast path: one UPDATE of the Lease it last
read or wrote, with no GET first (``tryAcquireOrRenew``'s step 1); only when that update fails
does it read the Lease again (the slow path every other candidate takes).

Simplified: no jitter on the retry period (client-go waits ``retryPeriod`` with a jitter factor
of 1.2 while acquiring); the identity is supplied by the caller (the real components use
``<hostname>_<uuid>``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.core.clock import Clock, Timer
from k8sbook.core.status import StatusError

#: ``componentbaseconfig.LeaderElectionConfiguration`` defaults for kube-controller-manager and
#: kube-scheduler (``--leader-elect-lease-duration`` etc.).
LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0


class LeaderElector:
    """One candidate. ``run()`` starts trying; callbacks fire on gaining and losing the lead."""

    def __init__(self, client: Client, namespace: str, name: str, identity: str, *,
                 clock: Clock | None = None,
                 on_started_leading: Callable[[], None] = lambda: None,
                 on_stopped_leading: Callable[[], None] = lambda: None,
                 lease_duration: float = LEASE_DURATION, renew_deadline: float = RENEW_DEADLINE,
                 retry_period: float = RETRY_PERIOD) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            # NewLeaderElector's checks
            raise ValueError("leaseDuration must be greater than renewDeadline, and "
                             "renewDeadline must be greater than retryPeriod")
        self.client = client
        #: the candidate's own clock (observedTime is measured on it); the client's by default
        self.clock: Clock = clock if clock is not None else client.clock
        self.namespace, self.name, self.identity = namespace, name, identity
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.leading = False
        self.stopped = True
        self.observed_record: dict[str, Any] | None = None
        self.observed_time = 0.0
        self.last_renew = 0.0
        #: the Lease as last read or written (``LeaseLock.lease``): what the fast path updates
        self.lease: dict[str, Any] | None = None
        self._timer: Timer | None = None
        #: (start, end or None) of every term this candidate led
        self.terms: list[list[float | None]] = []

    def run(self) -> None:
        self.stopped = False
        self._tick()

    def stop(self) -> None:
        """The process stops (a crash or a kill): no more tries, nothing released."""
        self.stopped = True
        if self._timer:
            self._timer.cancel()
        if self.leading:
            self._lose()

    def _tick(self) -> None:
        if self.stopped:
            return
        ok = self.try_acquire_or_renew()
        now = self.clock.now()
        if ok:
            self.last_renew = now
            if not self.leading:
                self.leading = True
                self.terms.append([now, None])
                self.on_started_leading()
        elif self.leading and now - self.last_renew >= self.renew_deadline:
            self._lose()  # "failed to renew lease ...: timed out waiting for the condition"
        self._timer = self.clock.call_later(self.retry_period, self._tick,
                                            label=f"leaderelection {self.identity}")

    def _lose(self) -> None:
        self.leading = False
        self.terms[-1][1] = self.clock.now()
        self.on_stopped_leading()

    def try_acquire_or_renew(self) -> bool:
        """``tryAcquireOrRenew``: True if this candidate holds the Lease after the call."""
        now = self.clock.now()
        stamp = self.clock.micro_timestamp()
        if self.is_leader() and self.lease_valid(now) and self.lease is not None:
            # 1. the fast path: update the Lease last seen, assuming it is still current
            fast = copy.deepcopy(self.lease)
            fast_spec = fast.setdefault("spec", {})
            fast_spec["holderIdentity"] = self.identity
            fast_spec["leaseDurationSeconds"] = int(self.lease_duration)
            fast_spec["renewTime"] = stamp
            try:
                updated = self.client.update(fast)
            except (StatusError, DialError):
                pass  # "Failed to update lease optimistically, falling back to slow path"
            else:
                self._observe(updated, now)
                return True
        try:
            lease = self.client.get("leases", self.name, self.namespace)
            self.lease = lease
        except DialError:
            return False
        except StatusError as err:
            if err.code != 404:
                return False
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {"holderIdentity": self.identity,
                             "leaseDurationSeconds": int(self.lease_duration),
                             "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}}
            try:
                created = self.client.create(body)
            except (StatusError, DialError):
                return False
            self._observe(created, now)
            return True
        spec = lease.get("spec", {})
        if self.observed_record != spec:
            self._observe(lease, now)
        holder = spec.get("holderIdentity", "")
        if holder and holder != self.identity and \
                self.observed_time + self.lease_duration > now:
            return False  # held by another, and not yet expired as far as we have seen
        new = copy.deepcopy(lease)
        new_spec = new.setdefault("spec", {})
        if holder != self.identity:
            new_spec["acquireTime"] = stamp
            new_spec["leaseTransitions"] = spec.get("leaseTransitions", 0) + (1 if holder else 0)
        new_spec["holderIdentity"] = self.identity
        new_spec["leaseDurationSeconds"] = int(self.lease_duration)
        new_spec["renewTime"] = stamp
        try:
            updated = self.client.update(new)  # carries resourceVersion: compare-and-swap
        except (StatusError, DialError):
            return False
        self._observe(updated, now)
        return True

    def is_leader(self) -> bool:
        """``IsLeader``: the record last observed names this candidate."""
        return self.observed_record is not None and \
            self.observed_record.get("holderIdentity") == self.identity

    def lease_valid(self, now: float) -> bool:
        """``isLeaseValid``: the observed record's duration has not run out since it was seen."""
        duration = (self.observed_record or {}).get("leaseDurationSeconds", 0)
        return self.observed_time + duration > now

    def _observe(self, lease: dict[str, Any], now: float) -> None:
        self.lease = lease
        self.observed_record = copy.deepcopy(lease.get("spec", {}))
        self.observed_time = now


def leaders_at(electors: list[LeaderElector], t: float) -> list[str]:
    """Identities that considered themselves leader at virtual time ``t``."""
    out = []
    for e in electors:
        for start, end in e.terms:
            if start is not None and start <= t and (end is None or t < end):
                out.append(e.identity)
    return sorted(out)
