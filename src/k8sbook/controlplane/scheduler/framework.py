"""The scheduling framework's vocabulary: statuses, node infos, the plugin signatures.

Mirrors ``pkg/scheduler/framework`` (``Status`` codes ``Success``, ``Unschedulable``,
``UnschedulableAndUnresolvable``; ``NodeInfo`` with the pods on a node and their summed
requests; ``MaxNodeScore = 100``; ``DefaultNormalizeScore``). The plugins
(:mod:`k8sbook.controlplane.scheduler.plugins`) build on it; the profiles that name them are
in :mod:`k8sbook.controlplane.scheduler.profile`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


def _container_requests(c: Obj, non_zero: bool) -> tuple[float, float]:
    req = (c.get("resources") or {}).get("requests") or {}
    cpu = parse_quantity(req["cpu"]) * 1000 if "cpu" in req else 0.0
    mem = parse_quantity(req["memory"]) if "memory" in req else 0.0
    if non_zero:
        cpu = cpu or DEFAULT_MILLI_CPU_REQUEST
        mem = mem or DEFAULT_MEMORY_REQUEST
    return cpu, mem


def compute_pod_requests(pod: Obj, non_zero: bool = False) -> dict[str, float]:
    """``resource.PodRequests``: cpu in millicores, memory in bytes, summed over containers
    (and the largest init container, if larger). ``non_zero`` applies the scoring defaults."""
    spec = pod.get("spec", {})
    cpu = mem = 0.0
    for c in spec.get("containers", []):
        c_cpu, c_mem = _container_requests(c, non_zero)
        cpu += c_cpu
        mem += c_mem
    for c in spec.get("initContainers", []):
        c_cpu, c_mem = _container_requests(c, non_zero)
        cpu, mem = max(cpu, c_cpu), max(mem, c_mem)
    return {"cpu": cpu, "memory": mem}


#: the last pod whose requests were computed, and its two answers: a scheduling cycle asks
#: for the requests of the pod being scheduled once per node and plugin, and upstream computes
#: them once, in PreFilter, into the cycle's ``CycleState`` (``preFilterState``). The model's
#: plugins are plain functions, so the answer is kept per pod object (the scheduler never
#: changes a pod it was given: informer objects are replaced, not edited).
_last_requests: list[Any] = [None, None, None]


def pod_requests(pod: Obj, non_zero: bool = False) -> dict[str, float]:
    """:func:`compute_pod_requests`, computed once per pod object (a fresh dict each call)."""
    if _last_requests[0] is not pod:
        _last_requests[:] = [pod, compute_pod_requests(pod), compute_pod_requests(pod, True)]
    return dict(_last_requests[2 if non_zero else 1])


def pod_key(pod: Obj) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


class NodeInfo:
    """A node with the pods the scheduler's cache places on it, and their summed requests.

    As upstream's ``framework.NodeInfo`` (``AddPod``/``RemovePod`` keep ``Requested`` and
    ``NonZeroRequested`` up to date), the sums change when a pod is added or removed instead
    of being recomputed for every node on every scheduling cycle; each pod's requests are
    computed once, when it is added. ``generation`` grows on every change."""

    def __init__(self, node: Obj, pods: list[Obj] | None = None) -> None:
        self.node = node
        self.generation = 0
        #: pod key -> (pod, requests, non-zero requests), in the order the pods came
        self._pods: dict[str, tuple[Obj, dict[str, float], dict[str, float]]] = {}
        self._requested = {"cpu": 0.0, "memory": 0.0}
        self._non_zero = {"cpu": 0.0, "memory": 0.0}
        self._alloc: tuple[Obj | None, dict[str, float]] = (None, {})
        for p in pods or []:
            self.add_pod(p)

    def __repr__(self) -> str:
        return f"NodeInfo({self.name!r}, pods={len(self._pods)})"

    @property
    def name(self) -> str:
        return self.node["metadata"]["name"]

    @property
    def pods(self) -> list[Obj]:
        return [entry[0] for entry in self._pods.values()]

    def has_pod(self, key: str) -> bool:
        return key in self._pods

    def add_pod(self, pod: Obj) -> None:
        """``AddPod``: a pod already here (by key) is replaced and moves to the end."""
        key = pod_key(pod)
        if key in self._pods:
            self.remove_pod(key)
        req, non_zero = compute_pod_requests(pod), compute_pod_requests(pod, True)
        self._pods[key] = (pod, req, non_zero)
        for r in ("cpu", "memory"):
            self._requested[r] += req[r]
            self._non_zero[r] += non_zero[r]
        self.generation += 1

    def remove_pod(self, key: str) -> bool:
        """``RemovePod``. The sums are added up again over the remaining pods (at most the
        node's pod capacity), so they stay exactly what a fresh sum gives."""
        if self._pods.pop(key, None) is None:
            return False
        self._requested = {"cpu": 0.0, "memory": 0.0}
        self._non_zero = {"cpu": 0.0, "memory": 0.0}
        for _, req, non_zero in self._pods.values():
            for r in ("cpu", "memory"):
                self._requested[r] += req[r]
                self._non_zero[r] += non_zero[r]
        self.generation += 1
        return True

    def __len__(self) -> int:
        return len(self._pods)

    def allocatable(self) -> dict[str, float]:
        node, alloc = self._alloc
        if node is not self.node:  # parsed once per Node object the informer delivers
            raw = self.node.get("status", {}).get("allocatable", {})
            alloc = {"cpu": parse_quantity(raw.get("cpu", "0")) * 1000,
                     "memory": parse_quantity(raw.get("memory", "0")),
                     "pods": parse_quantity(raw.get("pods", "0"))}
            self._alloc = (self.node, alloc)
        return dict(alloc)

    def requested(self, non_zero: bool = False) -> dict[str, float]:
        return dict(self._non_zero if non_zero else self._requested)

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
