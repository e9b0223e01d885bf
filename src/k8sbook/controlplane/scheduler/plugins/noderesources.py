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
    too_many = len(ni) + 1 > ni.allocatable_pods
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


def _least_allocated(allocatable: float, requested: float) -> int:
    if allocatable == 0 or requested > allocatable:
        return 0
    return int((allocatable - requested) * MAX_NODE_SCORE // allocatable)


def least_allocated_score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    """``NodeResourcesFit`` score, ``LeastAllocated``: free share of cpu and memory."""
    want = pod_requests(pod, non_zero=True)
    cpu, memory = want["cpu"], want["memory"]
    return {ni.name: (_least_allocated(ni.allocatable_cpu, ni.non_zero_cpu + cpu)
                      + _least_allocated(ni.allocatable_memory, ni.non_zero_memory + memory))
            // 2 for ni in nodes}


def _share(allocatable: float, requested: float) -> float:
    return min(requested / allocatable, 1.0) if allocatable else 1.0


def balanced_allocation_score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    """``NodeResourcesBalancedAllocation``: 100 x (1 - the spread of the requested shares)."""
    want = pod_requests(pod, non_zero=True)
    cpu, memory = want["cpu"], want["memory"]
    out = {}
    for ni in nodes:
        std = abs(_share(ni.allocatable_cpu, ni.non_zero_cpu + cpu)
                  - _share(ni.allocatable_memory, ni.non_zero_memory + memory)) / 2
        out[ni.name] = int((1 - std) * MAX_NODE_SCORE)
    return out
