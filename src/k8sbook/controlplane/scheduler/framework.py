"""The scheduling framework's vocabulary: statuses, node infos, the plugin signatures.

Mirrors ``pkg/scheduler/framework`` (``Status`` codes ``Success``, ``Unschedulable``,
``UnschedulableAndUnresolvable``; ``NodeInfo`` with the pods on a node and their summed
requests; ``MaxNodeScore = 100``; ``DefaultNormalizeScore``). The plugins
(:mod:`k8sbook.controlplane.scheduler.plugins`) build on it; the profiles that name them are
in :mod:`k8sbook.controlplane.scheduler.profile`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.api.quantity import parse_quantity

Obj = dict[str, Any]

SUCCESS = "Success"
UNSCHEDULABLE = "Unschedulable"
UNRESOLVABLE = "UnschedulableAndUnresolvable"
MAX_NODE_SCORE = 100
#: ``schedutil.DefaultMilliCPURequest`` and ``DefaultMemoryRequest``: what scoring assumes for a
#: container that requests nothing
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
#: ``minFeasibleNodesToFind`` and ``minFeasibleNodesPercentageToFind`` (schedule_one.go)
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


@dataclass(frozen=True)
class Status:
    code: str = SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS


OK = Status()


def histogram(reasons: list[str]) -> str:
    """``FitError.Error``'s reason list: "count reason", sorted as strings, comma-joined."""
    counts: dict[str, int] = {}
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1
    return ", ".join(sorted(f"{v} {k}" for k, v in counts.items()))


def pod_priority(pod: Obj) -> int:
    """``corev1helpers.PodPriority``: ``spec.priority``, 0 when unset."""
    return int(pod.get("spec", {}).get("priority", 0) or 0)


def pod_requests(pod: Obj, non_zero: bool = False) -> dict[str, float]:
    """``resource.PodRequests``: cpu in millicores, memory in bytes, summed over containers
    (and the largest init container, if larger). ``non_zero`` applies the scoring defaults."""
    def one(c: Obj) -> dict[str, float]:
        req = (c.get("resources") or {}).get("requests") or {}
        cpu = parse_quantity(req["cpu"]) * 1000 if "cpu" in req else 0.0
        mem = parse_quantity(req["memory"]) if "memory" in req else 0.0
        if non_zero:
            cpu = cpu or DEFAULT_MILLI_CPU_REQUEST
            mem = mem or DEFAULT_MEMORY_REQUEST
        return {"cpu": cpu, "memory": mem}
    spec = pod.get("spec", {})
    total = {"cpu": 0.0, "memory": 0.0}
    for c in spec.get("containers", []):
        for k, v in one(c).items():
            total[k] += v
    for c in spec.get("initContainers", []):
        for k, v in one(c).items():
            total[k] = max(total[k], v)
    return total


@dataclass
class NodeInfo:
    """A node with the pods the scheduler's cache places on it."""

    node: Obj
    pods: list[Obj] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.node["metadata"]["name"]

    def allocatable(self) -> dict[str, float]:
        alloc = self.node.get("status", {}).get("allocatable", {})
        return {"cpu": parse_quantity(alloc.get("cpu", "0")) * 1000,
                "memory": parse_quantity(alloc.get("memory", "0")),
                "pods": parse_quantity(alloc.get("pods", "0"))}

    def requested(self, non_zero: bool = False) -> dict[str, float]:
        total = {"cpu": 0.0, "memory": 0.0}
        for p in self.pods:
            for k, v in pod_requests(p, non_zero).items():
                total[k] += v
        return total

    def used_host_ports(self) -> set[tuple[str, str, int]]:
        out = set()
        for p in self.pods:
            out |= host_ports(p)
        return out


def host_ports(pod: Obj) -> set[tuple[str, str, int]]:
    out = set()
    for c in pod.get("spec", {}).get("containers", []):
        for port in c.get("ports", []) or []:
            if port.get("hostPort"):
                out.add((port.get("hostIP", "0.0.0.0"), port.get("protocol", "TCP"),
                         port["hostPort"]))
    return out


def default_normalize_score(scores: dict[str, float], reverse: bool) -> dict[str, int]:
    """``helper.DefaultNormalizeScore``: scale to 0..100 by the maximum; reverse if asked."""
    top = max(scores.values(), default=0)
    out = {}
    for name, s in scores.items():
        if top == 0:
            out[name] = MAX_NODE_SCORE if reverse else 0
            continue
        v = int(MAX_NODE_SCORE * s // top)
        out[name] = MAX_NODE_SCORE - v if reverse else v
    return out


def num_feasible_nodes_to_find(num_all_nodes: int, percentage_of_nodes_to_score: int = 0) -> int:
    """``numFeasibleNodesToFind``: below 100 nodes, all of them; otherwise a percentage that
    shrinks as the cluster grows (50 - nodes/125, at least 5 %), and never fewer than 100."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    pct = percentage_of_nodes_to_score
    if pct == 0:
        pct = 50 - num_all_nodes // 125
        pct = max(pct, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    num = num_all_nodes * pct // 100
    return max(num, MIN_FEASIBLE_NODES_TO_FIND)


#: ``framework.FilterPlugin.Filter`` and ``ScorePlugin.Score`` (+ ``NormalizeScore``), as
#: functions: a Filter judges one node, a Score gives normalised scores for the feasible ones.
FilterFn = Callable[[Obj, "NodeInfo"], Status]
ScoreFn = Callable[[Obj, list["NodeInfo"]], dict[str, int]]
