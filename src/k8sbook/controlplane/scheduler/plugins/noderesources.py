"""``NodeResourcesFit`` and ``NodeResourcesBalancedAllocation``
(``pkg/scheduler/framework/plugins/noderesources``: ``fit.go``, ``least_allocated.go``,
``balanced_allocation.go``).

Fit filters on the pod count and on cpu and memory requests against what is allocatable and
already requested; its score is the ``LeastAllocated`` strategy (the free share of cpu and
memory, weighted 1 each). BalancedAllocation scores 100 x (1 - the spread of the requested
shares). As upstream, the pod's requests are computed once per cycle (Fit's PreFilter,
``computePodResourceRequest``; the scores' PreScore) and the node's side is kept as numbers
by :class:`NodeInfo`."""

from __future__ import annotations

from k8sbook.controlplane.scheduler.framework import (
    MAX_NODE_SCORE,
    OK,
    UNSCHEDULABLE,
    FilterPlugin,
    NodeInfo,
    Obj,
    Status,
    pod_requests,
)


def pre_filter(pod: Obj) -> tuple[float, float]:
    """The pod's cpu (millicores) and memory (bytes) requests, for the cycle."""
    req = pod_requests(pod)
    return req["cpu"], req["memory"]


def fit_filter_node(want: tuple[float, float], ni: NodeInfo) -> Status:
    cpu, memory = want
    too_many = ni.pod_count + 1 > ni.allocatable_pods
    short_cpu = cpu > 0 and cpu > ni.allocatable_cpu - ni.requested_cpu
    short_memory = memory > 0 and memory > ni.allocatable_memory - ni.requested_memory
    if not (too_many or short_cpu or short_memory):
        return OK
    reasons = (["Too many pods"] if too_many else []) + \
        (["Insufficient cpu"] if short_cpu else []) + \
        (["Insufficient memory"] if short_memory else [])
    return Status(UNSCHEDULABLE, tuple(reasons), "NodeResourcesFit")


PLUGIN = FilterPlugin(pre_filter, fit_filter_node)


def fit_filter(pod: Obj, ni: NodeInfo) -> Status:
    """PreFilter and Filter for one node."""
    return PLUGIN(pod, ni)


def least_allocated_score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    """``NodeResourcesFit`` score, ``LeastAllocated``: free share of cpu and memory, 0 for a
    resource the node has none of or too little of, the two averaged."""
    want = pod_requests(pod, non_zero=True)
    cpu, memory = want["cpu"], want["memory"]
    out = {}
    for ni in nodes:
        total = 0
        alloc, req = ni.allocatable_cpu, ni.non_zero_cpu + cpu
        if alloc != 0 and req <= alloc:
            total += int((alloc - req) * MAX_NODE_SCORE // alloc)
        alloc, req = ni.allocatable_memory, ni.non_zero_memory + memory
        if alloc != 0 and req <= alloc:
            total += int((alloc - req) * MAX_NODE_SCORE // alloc)
        out[ni.name] = total // 2
    return out


def balanced_allocation_score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    """``NodeResourcesBalancedAllocation``: 100 x (1 - the spread of the requested shares);
    a resource the node has none of counts as fully used."""
    want = pod_requests(pod, non_zero=True)
    cpu, memory = want["cpu"], want["memory"]
    out = {}
    for ni in nodes:  # min() and abs() written out: the same values, without the calls
        alloc = ni.allocatable_cpu
        cpu_share = (ni.non_zero_cpu + cpu) / alloc if alloc else 1.0
        if cpu_share > 1.0:  # noqa: PLR1730 (min() is a call per node)
            cpu_share = 1.0
        alloc = ni.allocatable_memory
        memory_share = (ni.non_zero_memory + memory) / alloc if alloc else 1.0
        if memory_share > 1.0:  # noqa: PLR1730
            memory_share = 1.0
        spread = cpu_share - memory_share
        if spread < 0:
            spread = -spread
        out[ni.name] = int((1 - spread / 2) * MAX_NODE_SCORE)
    return out
