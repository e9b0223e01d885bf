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


def pod_requests(pod: Obj, non_zero: bool = False) -> dict[str, float]:
    """:func:`compute_pod_requests` (kept as the plugins' name for it)."""
    return compute_pod_requests(pod, non_zero)


def pod_key(pod: Obj) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def pod_uid(pod: Obj) -> str:
    """``GetPodKey``: the cache keys a pod by its UID (a pod built without the apiserver, as
    in a test, has none: its namespace/name stands in)."""
    return pod["metadata"].get("uid") or pod_key(pod)


#: a float holds every integer below 2**53 exactly: sums and differences of such values are
#: exact, so subtracting a pod's requests gives what adding up the remaining pods gives
_EXACT = float(2**53)


def _exact(*values: float) -> bool:
    return all(v == int(v) and abs(v) < _EXACT for v in values)


class NodeInfo:
    """A node with the pods the scheduler's cache places on it, and their summed requests.

    As upstream's ``framework.NodeInfo`` (``types.go``): ``Allocatable`` is parsed once per
    Node object (:attr:`node` is a property that does it when the informer hands over a new
    one, with the node's labels, taints, ``unschedulable`` and images the filters read), and
    ``AddPod``/``RemovePod`` keep ``Requested`` and ``NonZeroRequested`` as numbers, adding
    or subtracting the pod's requests, which are computed once when it is added. Pods are
    kept in a dict keyed by UID (``GetPodKey``) in the order they came, so a removal costs
    O(1) (upstream scans its pod slice for the UID). ``generation`` grows on every change.

    Exactness: the model's quantities are floats. Subtracting gives exactly what a fresh sum
    over the remaining pods gives only when every value involved is an integer below 2**53
    (cpu in millicores and memory in bytes nearly always are); while a pod with another value
    is on the node, a removal adds the remaining pods up again in their order instead, which
    is what the sums were before this fast path (``tests/controlplane/test_scheduler.py``
    checks the two agree)."""

    def __init__(self, node: Obj, pods: list[Obj] | None = None) -> None:
        self.generation = 0
        #: pod UID -> (pod, cpu, memory, non-zero cpu, non-zero memory), in the order they came
        self._pods: dict[str, tuple[Obj, float, float, float, float]] = {}
        #: how many pods are on the node (``len(node_info)``, kept for the Fit filter)
        self.pod_count = 0
        self.requested_cpu = self.requested_memory = 0.0
        self.non_zero_cpu = self.non_zero_memory = 0.0
        #: pods on the node whose requests are not exact integers (see the class docstring)
        self._inexact = 0
        self.node = node
        for p in pods or []:
            self.add_pod(p)

    def __repr__(self) -> str:
        return f"NodeInfo({self.name!r}, pods={len(self._pods)})"

    @property
    def node(self) -> Obj:
        return self._node

    @node.setter
    def node(self, node: Obj) -> None:
        """``SetNode``: what the filters and scores read from the Node, read once per object."""
        self._node = node
        meta, spec, status = node["metadata"], node.get("spec", {}), node.get("status", {})
        self.name: str = meta["name"]
        self.labels: dict[str, str] = meta.get("labels", {}) or {}
        self.unschedulable = bool(spec.get("unschedulable"))
        self.taints: list[Obj] = spec.get("taints") or []
        raw = status.get("allocatable", {})
        self.allocatable_cpu = parse_quantity(raw.get("cpu", "0")) * 1000
        self.allocatable_memory = parse_quantity(raw.get("memory", "0"))
        self.allocatable_pods = parse_quantity(raw.get("pods", "0"))
        #: image name -> size, from ``status.images`` (the last entry naming it wins)
        self.image_sizes: dict[str, int] = {}
        for img in status.get("images", []) or []:
            for image_name in img.get("names", []):
                self.image_sizes[image_name] = img.get("sizeBytes", 0)
        self.generation += 1

    @property
    def pods(self) -> list[Obj]:
        return [entry[0] for entry in self._pods.values()]

    def has_pod(self, pod: Obj) -> bool:
        return pod_uid(pod) in self._pods

    def add_pod(self, pod: Obj) -> None:
        """``AddPod``: a pod already here (by UID) is replaced and moves to the end."""
        uid = pod_uid(pod)
        if uid in self._pods:
            self.remove_pod(pod)
        req, non_zero = compute_pod_requests(pod), compute_pod_requests(pod, True)
        entry = (pod, req["cpu"], req["memory"], non_zero["cpu"], non_zero["memory"])
        self._pods[uid] = entry
        self.pod_count += 1
        if not _exact(*entry[1:]):
            self._inexact += 1
        self.requested_cpu += entry[1]
        self.requested_memory += entry[2]
        self.non_zero_cpu += entry[3]
        self.non_zero_memory += entry[4]
        self.generation += 1

    def remove_pod(self, pod: Obj) -> bool:
        """``RemovePod``: subtract the pod's requests (or add up the rest again, see above)."""
        entry = self._pods.pop(pod_uid(pod), None)
        if entry is None:
            return False
        self.pod_count -= 1
        if self._inexact:
            if not _exact(*entry[1:]):
                self._inexact -= 1
            self.requested_cpu = self.requested_memory = 0.0
            self.non_zero_cpu = self.non_zero_memory = 0.0
            for _, cpu, memory, nz_cpu, nz_memory in self._pods.values():
                self.requested_cpu += cpu
                self.requested_memory += memory
                self.non_zero_cpu += nz_cpu
                self.non_zero_memory += nz_memory
        else:
            self.requested_cpu -= entry[1]
            self.requested_memory -= entry[2]
            self.non_zero_cpu -= entry[3]
            self.non_zero_memory -= entry[4]
        self.generation += 1
        return True

    def __len__(self) -> int:
        return self.pod_count

    def allocatable(self) -> dict[str, float]:
        return {"cpu": self.allocatable_cpu, "memory": self.allocatable_memory,
                "pods": self.allocatable_pods}

    def requested(self, non_zero: bool = False) -> dict[str, float]:
        if non_zero:
            return {"cpu": self.non_zero_cpu, "memory": self.non_zero_memory}
        return {"cpu": self.requested_cpu, "memory": self.requested_memory}

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

#: what a PreFilter returns when its plugin's Filter has nothing to do for this pod
#: (``framework.Skip``: the framework then leaves the plugin out of the cycle's Filters)
SKIP: Any = object()


@dataclass(frozen=True)
class FilterPlugin:
    """A Filter plugin split as the framework runs it: ``pre_filter(pod)`` computes, once per
    scheduling cycle, what the plugin needs of the pod (upstream writes it into the cycle's
    ``CycleState``) or returns :data:`SKIP`; ``filter(state, node_info)`` judges one node
    from it, returning :data:`OK` (the one success Status) or a failure."""

    pre_filter: Callable[[Obj], Any]
    filter: Callable[[Any, NodeInfo], Status]

    def __call__(self, pod: Obj, ni: NodeInfo) -> Status:
        """PreFilter and Filter for one pod and one node (the plugin's ``filter(pod, ni)``)."""
        state = self.pre_filter(pod)
        return OK if state is SKIP else self.filter(state, ni)


def run_pre_filter_plugins(plugins: list[FilterPlugin], pod: Obj) -> \
        list[tuple[Callable[[Any, NodeInfo], Status], Any]]:
    """``RunPreFilterPlugins``: each plugin's Filter with its state for this pod, in the
    profile's order, leaving out the plugins whose PreFilter says Skip."""
    out = []
    for plugin in plugins:
        state = plugin.pre_filter(pod)
        if state is not SKIP:
            out.append((plugin.filter, state))
    return out


def total_scores(names: list[str], scores: dict[str, dict[str, int]]) -> dict[str, int]:
    """Each node's weighted scores (plugin -> node -> score) added up, in ``names``' order."""
    if scores and all(list(by_node) == names for by_node in scores.values()):
        # every plugin scored the nodes in this order (as the plugins do): add the columns
        # up in one pass, the same sums as the loop below
        return dict(zip(names, map(sum, zip(*(by_node.values()
                                              for by_node in scores.values())))))
    totals = dict.fromkeys(names, 0)
    for by_node in scores.values():
        for node, s in by_node.items():
            totals[node] += s
    return totals
