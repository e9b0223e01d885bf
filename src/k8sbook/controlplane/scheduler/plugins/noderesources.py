"""``NodeResourcesFit`` and ``NodeResourcesBalancedAllocation``
(``pkg/scheduler/framework/plugins/noderesources``: ``fit.go``, ``least_allocated.go``,
``balanced_allocation.go``).

Fit filters on the pod count and on cpu and memory requests against what is allocatable and
already requested; its score is the ``LeastAllocated`` strategy (the free share of cpu and
memory, weighted 1 each). BalancedAllocation scores 100 x (1 - the spread of the requested
shares)."""

from __future__ import annotations

from k8sbook.controlplane.scheduler.framework import (
    MAX_NODE_SCORE,
    OK,
    UNSCHEDULABLE,
    NodeInfo,
    Obj,
    Status,
    pod_requests,
)


def fit_filter(pod: Obj, ni: NodeInfo) -> Status:
    alloc = ni.allocatable()
    reasons = []
    if len(ni) + 1 > alloc["pods"]:
        reasons.append("Too many pods")
    req, used = pod_requests(pod), ni.requested()
    for r in ("cpu", "memory"):
        if req[r] > 0 and req[r] > alloc[r] - used[r]:
            reasons.append(f"Insufficient {r}")
    return Status(UNSCHEDULABLE, tuple(reasons), "NodeResourcesFit") if reasons else OK


def least_allocated_score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    """``NodeResourcesFit`` score, ``LeastAllocated``: free share of cpu and memory."""
    want = pod_requests(pod, non_zero=True)
    out = {}
    for ni in nodes:
        alloc, used = ni.allocatable(), ni.requested(non_zero=True)
        total = 0
        for r in ("cpu", "memory"):
            req = used[r] + want[r]
            if alloc[r] == 0 or req > alloc[r]:
                continue
            total += int((alloc[r] - req) * MAX_NODE_SCORE // alloc[r])
        out[ni.name] = total // 2
    return out


def balanced_allocation_score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    """``NodeResourcesBalancedAllocation``: 100 x (1 - the spread of the requested shares)."""
    want = pod_requests(pod, non_zero=True)
    out = {}
    for ni in nodes:
        alloc, used = ni.allocatable(), ni.requested(non_zero=True)
        shares = [min((used[r] + want[r]) / alloc[r], 1.0) if alloc[r] else 1.0
                  for r in ("cpu", "memory")]
        std = abs(shares[0] - shares[1]) / 2
        out[ni.name] = int((1 - std) * MAX_NODE_SCORE)
    return out
