"""API Priority and Fairness, at the level a reader needs.

Mirrors ``k8s.io/apiserver/pkg/util/flowcontrol`` and the filter
``pkg/server/filters/priority-and-fairness.go``, which ``DefaultBuildHandlerChain`` puts after
authentication and before authorization:

* every request is **classified** by the first FlowSchema (lowest ``matchingPrecedence``)
  whose rules match its user, verb and resource; the schema names a **priority level** and how
  to tell flows apart (``ByUser``: the user name; ``ByNamespace``: the namespace). The
  bootstrap configuration is v1.35's (``pkg/apis/flowcontrol/bootstrap/default.go``):
  :data:`FLOW_SCHEMAS`, :data:`PRIORITY_LEVELS`;
* each limited level gets a share of the server's concurrency: its nominal concurrency limit
  is ``ceil(ServerCL * NominalConcurrencyShares / sum of shares)``, with
  ``ServerCL = --max-requests-inflight + --max-mutating-requests-inflight = 400 + 200``
  (seat borrowing between levels is not modelled);
* a request that finds its level's seats all taken waits in its **flow's queue** (fair
  queuing picks the queue to serve next round-robin, so a flooding flow cannot starve
  another); past ``queueLengthLimit`` (50) it is rejected; the ``catch-all`` level rejects
  at once (``LimitResponse: Reject``). A rejection is ``429`` with ``Retry-After`` from the
  dropped-requests tracker (``dropped_requests_tracker.go``: starts at 1 s, doubles while
  drops go on, at most 32) and the text ``Too many requests, please try again later.``
  (upstream writes it with ``http.Error``; client-go builds the Status with reason
  ``TooManyRequests`` and ``retryAfterSeconds`` from the header; the model answers that
  Status directly);
* the ``exempt`` level (``system:masters``, hence the loopback client) is never limited.

Simplified, said out loud: the model serves a request in no virtual time, so by default a
seat is free again at once and nothing is ever queued or refused
(:attr:`FlowControl.service_time` = 0); a scenario gives requests a duration to make the limits bite. A queued
request is answered at once (the model cannot hold a caller), its seat taken from when one
frees; the queue wait limit (15 s) and long-running (watch) requests are not counted.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from k8sbook.api.request import Request, UserInfo
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError, too_many_requests

#: --max-requests-inflight (400) + --max-mutating-requests-inflight (200)
SERVER_CONCURRENCY_LIMIT = 600
REJECT_MESSAGE = "Too many requests, please try again later."
MAX_RETRY_AFTER = 32


@dataclass(frozen=True)
class PriorityLevel:
    name: str
    shares: int  # NominalConcurrencyShares; 0 with exempt
    exempt: bool = False
    queue_length_limit: int = 50  # 0: LimitResponse Reject
    lendable_percent: int = 0


#: v1.35's bootstrap PriorityLevelConfigurations (mandatory and suggested)
PRIORITY_LEVELS = (
    PriorityLevel("exempt", 0, exempt=True),
    PriorityLevel("system", 30, lendable_percent=33),
    PriorityLevel("node-high", 40, lendable_percent=25),
    PriorityLevel("leader-election", 10),
    PriorityLevel("workload-high", 40, lendable_percent=50),
    PriorityLevel("workload-low", 100, lendable_percent=90),
    PriorityLevel("global-default", 20, lendable_percent=50),
    PriorityLevel("catch-all", 5, queue_length_limit=0),
)

Match = Callable[[UserInfo, Request], bool]


@dataclass(frozen=True)
class FlowSchema:
    name: str
    level: str
    precedence: int
    distinguisher: str  # "ByUser", "ByNamespace" or "" (one flow)
    matches: Match


def _in_group(group: str) -> Callable[[UserInfo], bool]:
    return lambda u: group in u.groups


def _kube_system_sa(u: UserInfo) -> bool:
    return u.name.startswith("system:serviceaccount:kube-system:")


def _rule(subject: Callable[[UserInfo], bool], verbs: tuple[str, ...] = (),
          resources: tuple[tuple[str, str], ...] = ()) -> Match:
    """A ``PolicyRulesWithSubjects``: subjects, and (empty: all) verbs and (group, resource)."""
    def match(u: UserInfo, r: Request) -> bool:
        res = f"{r.resource}/{r.subresource}" if r.subresource else r.resource
        return subject(u) and (not verbs or r.verb in verbs) and (
            not resources or (r.group, res) in resources)
    return match


def _anyone(u: UserInfo) -> bool:
    return True


#: v1.35's bootstrap FlowSchemas (``probes`` only matches non-resource URLs: not modelled)
FLOW_SCHEMAS = tuple(sorted((
    FlowSchema("exempt", "exempt", 1, "", _rule(_in_group("system:masters"))),
    FlowSchema("system-leader-election", "leader-election", 100, "ByUser", _rule(
        lambda u: u.name in ("system:kube-controller-manager", "system:kube-scheduler")
        or _kube_system_sa(u), ("get", "create", "update"),
        (("coordination.k8s.io", "leases"),))),
    FlowSchema("system-node-high", "node-high", 400, "ByUser", _rule(
        _in_group("system:nodes"), (), (("", "nodes"), ("", "nodes/status"),
                                        ("coordination.k8s.io", "leases")))),
    FlowSchema("system-nodes", "system", 500, "ByUser", _rule(_in_group("system:nodes"))),
    FlowSchema("kube-controller-manager", "workload-high", 800, "ByNamespace",
               _rule(lambda u: u.name == "system:kube-controller-manager")),
    FlowSchema("kube-scheduler", "workload-high", 800, "ByNamespace",
               _rule(lambda u: u.name == "system:kube-scheduler")),
    FlowSchema("kube-system-service-accounts", "workload-high", 900, "ByNamespace",
               _rule(_kube_system_sa)),
    FlowSchema("service-accounts", "workload-low", 9000, "ByUser",
               _rule(_in_group("system:serviceaccounts"))),
    FlowSchema("global-default", "global-default", 9900, "ByUser", _rule(_anyone)),
    FlowSchema("catch-all", "catch-all", 10000, "ByUser", _rule(_anyone)),
), key=lambda s: (s.precedence, s.name)))


@dataclass
class _Level:
    config: PriorityLevel
    limit: int
    busy: list[float] = field(default_factory=list)  # seat release times (a heap)
    queues: dict[str, deque[float]] = field(default_factory=dict)  # flow -> arrival times
    turn: int = 0  # the round-robin position among the flows' queues
    retry_after: int = 1
    retry_after_updated: int = 0
    drops: dict[int, int] = field(default_factory=dict)  # unix second -> dropped requests


@dataclass(frozen=True)
class Classification:
    flow_schema: str
    priority_level: str
    flow: str


class FlowControl:
    """The APF filter of one kube-apiserver (:meth:`admit`), on the model's virtual clock."""

    def __init__(self, clock: Clock, *, server_concurrency: int = SERVER_CONCURRENCY_LIMIT,
                 service_time: float = 0.0) -> None:
        self.clock = clock
        #: how long a request holds its seat, in virtual seconds (0: the model's instant)
        self.service_time = service_time
        total = sum(p.shares for p in PRIORITY_LEVELS)
        self.levels = {p.name: _Level(p, math.ceil(server_concurrency * p.shares / total))
                       for p in PRIORITY_LEVELS}
        #: what each flow got: (flow schema, flow) -> {code: count}
        self.outcomes: dict[tuple[str, str], dict[int, int]] = {}

    def configure(self, level: str, *, concurrency: int | None = None,
                  queue_length_limit: int | None = None) -> None:
        """Change one level's nominal concurrency limit or queue length (a scenario's knob,
        as editing a PriorityLevelConfiguration is the administrator's)."""
        lv = self.levels[level]
        if concurrency is not None:
            lv.limit = concurrency
        if queue_length_limit is not None:
            cfg = lv.config
            lv.config = PriorityLevel(cfg.name, cfg.shares, cfg.exempt, queue_length_limit,
                                      cfg.lendable_percent)

    def classify(self, user: UserInfo, req: Request) -> Classification:
        schema = next(s for s in FLOW_SCHEMAS if s.matches(user, req))
        flow = {"ByUser": user.name, "ByNamespace": req.namespace}.get(schema.distinguisher, "")
        return Classification(schema.name, schema.level, flow)

    def admit(self, user: UserInfo, req: Request) -> Classification:
        """Classify ``req`` and take (or queue for) a seat; raise the 429 if neither."""
        c = self.classify(user, req)
        lv = self.levels[c.priority_level]
        if lv.config.exempt or req.verb == "watch":
            return c
        now = self.clock.now()
        self._dispatch(lv, now)
        if len(lv.busy) < lv.limit:
            heapq.heappush(lv.busy, now + self.service_time)
        elif len(lv.queues.setdefault(c.flow, deque())) < lv.config.queue_length_limit:
            lv.queues[c.flow].append(now)
        else:
            retry = self._drop(lv, now)
            self.note(c, 429)
            raise too_many_requests(REJECT_MESSAGE, retry_after=retry)
        return c

    def note(self, c: Classification, code: int) -> None:
        counts = self.outcomes.setdefault((c.flow_schema, c.flow), {})
        counts[code] = counts.get(code, 0) + 1

    def _dispatch(self, lv: _Level, now: float) -> None:
        """Free the seats whose requests finished by ``now``, giving each to the next queue
        in round-robin order (fair queuing among the level's flows)."""
        while lv.busy and lv.busy[0] <= now:
            freed = heapq.heappop(lv.busy)
            waiting = [f for f, q in lv.queues.items() if q]
            if waiting:
                flow = waiting[lv.turn % len(waiting)]
                lv.turn += 1
                lv.queues[flow].popleft()
                heapq.heappush(lv.busy, freed + self.service_time)
                if self.service_time <= 0:
                    break  # an instant request frees its seat at once: nothing to wait for

    def _drop(self, lv: _Level, now: float) -> int:
        """``droppedRequestsStats``: record the drop, update and return Retry-After."""
        unix = int(now)
        lv.drops[unix] = lv.drops.get(unix, 0) + 1
        recent = sum(n for t, n in lv.drops.items() if unix - lv.retry_after <= t < unix)
        if unix - lv.retry_after_updated >= lv.retry_after and recent >= 3 * lv.retry_after:
            lv.retry_after = min(lv.retry_after * 2, MAX_RETRY_AFTER)
            lv.retry_after_updated = unix
        elif recent < lv.retry_after and lv.retry_after > 1:
            lv.retry_after -= 1
        return lv.retry_after

    def queued(self, level: str) -> dict[str, int]:
        """How many requests each flow of ``level`` has waiting, now."""
        lv = self.levels[level]
        self._dispatch(lv, self.clock.now())
        return {f: len(q) for f, q in sorted(lv.queues.items()) if q}


__all__ = ["FLOW_SCHEMAS", "PRIORITY_LEVELS", "REJECT_MESSAGE", "SERVER_CONCURRENCY_LIMIT",
           "Classification", "FlowControl", "FlowSchema", "PriorityLevel", "StatusError"]
