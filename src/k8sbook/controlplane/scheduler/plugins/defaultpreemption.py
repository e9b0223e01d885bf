"""``DefaultPreemption`` (``pkg/scheduler/framework/plugins/defaultpreemption``), the
PostFilter that looks for lower-priority pods to remove."""

from __future__ import annotations

from typing import Any

from k8sbook.controlplane.scheduler.framework import (
    UNRESOLVABLE,
    FilterFn,
    NodeInfo,
    Obj,
    Status,
    pod_priority,
)


def preemption_candidates(pod: Obj, nodes: list[NodeInfo], statuses: dict[str, Status],
                          filters: list[FilterFn]) -> tuple[list[tuple[str, list[Obj]]],
                                                            list[str]]:
    """``DefaultPreemption``'s dry run: for each node the filters rejected as resolvable,
    remove every lower-priority pod; if the pod then fits, give back as many victims as
    possible, highest priority first. Returns (node, victims) candidates and, for each node
    without one, the reason preemption could not help."""
    prio = pod_priority(pod)
    candidates, why = [], []
    for ni in nodes:
        st = statuses.get(ni.name)
        if st is None:
            continue
        if st.code == UNRESOLVABLE:
            why.append("Preemption is not helpful for scheduling")
            continue
        lower = [p for p in ni.pods if pod_priority(p) < prio]
        kept = [p for p in ni.pods if pod_priority(p) >= prio]

        def fits(on: list[Obj], ni: NodeInfo = ni) -> bool:
            trial = NodeInfo(ni.node, on)
            return all(f(pod, trial).ok for f in filters)
        if not lower or not fits(kept):
            why.append("No preemption victims found for incoming pod")
            continue
        victims = sorted(lower, key=lambda p: (-pod_priority(p), p["metadata"]["name"]))
        for v in list(victims):
            others = [x for x in victims if x is not v]
            if fits(kept + [v]):
                kept.append(v)
                victims = others
        candidates.append((ni.name, victims))
    return candidates, why


def pick_one_node_for_preemption(candidates: list[tuple[str, list[Obj]]]) -> \
        tuple[str, list[Obj]]:
    """``pickOneNodeForPreemption`` (without PDB counting): the lowest highest-priority
    victim, then the smallest sum of priorities, then the fewest victims, then the name."""
    def key(c: tuple[str, list[Obj]]) -> tuple[Any, ...]:
        prios = [pod_priority(v) for v in c[1]]
        return (max(prios, default=-(2**31)), sum(prios), len(prios), c[0])
    return min(candidates, key=key)
