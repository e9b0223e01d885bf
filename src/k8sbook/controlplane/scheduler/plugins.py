"""The in-tree plugins the model runs, with the real reasons they give.

Mirrors ``pkg/scheduler/framework/plugins``: ``nodeunschedulable``, ``nodename``,
``tainttoleration``, ``nodeaffinity``, ``nodeports``, ``noderesources`` (``Fit`` with the
``LeastAllocated`` strategy, cpu and memory weighted 1, and ``BalancedAllocation``),
``imagelocality``, ``queuesort`` (``PrioritySort``), ``schedulinggates``,
``dynamicresources`` (only its PostFilter: the model serves no ResourceClaims) and
``defaultpreemption``. A Filter returns a :class:`Status`; a Score returns a raw number per
node that the plugin then normalises to 0..100.

Left out (the model serves no volumes and draws no topology): the volume plugins,
``PodTopologySpread`` and ``InterPodAffinity``. They are in the real default profile with
weights 2 and 2; a pod with no volumes, no spread constraints and no pod (anti-)affinity would
pass their filters, but ``PodTopologySpread``'s default constraints would still add to scores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.controlplane.scheduler.framework import (
    MAX_NODE_SCORE,
    UNRESOLVABLE,
    UNSCHEDULABLE,
    NodeInfo,
    Obj,
    Status,
    default_normalize_score,
    host_ports,
    pod_requests,
)

OK = Status()

# -- helpers ------------------------------------------------------------------------------


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """``Toleration.ToleratesTaint``."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    op = toleration.get("operator", "Equal")
    if op == "Exists":
        return True
    return toleration.get("value", "") == taint.get("value", "")


def untolerated(pod: Obj, node: Obj, effects: tuple[str, ...]) -> list[Obj]:
    tols = pod.get("spec", {}).get("tolerations", []) or []
    return [t for t in node.get("spec", {}).get("taints", []) or []
            if t.get("effect") in effects and not any(tolerates(x, t) for x in tols)]


def _expression_matches(expr: Obj, labels: dict[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values", [])
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present:
        try:
            have, want = int(labels[key]), int(values[0])
        except (ValueError, IndexError):
            return False
        return have > want if op == "Gt" else have < want
    return False


def node_selector_term_matches(term: Obj, node: Obj) -> bool:
    """A ``NodeSelectorTerm``: every expression (and field expression) must match."""
    labels = node["metadata"].get("labels", {}) or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    exprs = term.get("matchExpressions", []) or []
    fexprs = term.get("matchFields", []) or []
    if not exprs and not fexprs:
        return False  # an empty term matches no objects
    return all(_expression_matches(e, labels) for e in exprs) and \
        all(_expression_matches(e, fields) for e in fexprs)


# -- filters ------------------------------------------------------------------------------


def node_unschedulable(pod: Obj, ni: NodeInfo) -> Status:
    if not ni.node.get("spec", {}).get("unschedulable"):
        return OK
    taint = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    if any(tolerates(t, taint) for t in pod["spec"].get("tolerations", []) or []):
        return OK
    return Status(UNRESOLVABLE, ("node(s) were unschedulable",), "NodeUnschedulable")


def node_name(pod: Obj, ni: NodeInfo) -> Status:
    want = pod["spec"].get("nodeName")
    if not want or want == ni.name:
        return OK
    return Status(UNRESOLVABLE, ("node(s) didn't match the requested node name",), "NodeName")


def taint_toleration(pod: Obj, ni: NodeInfo) -> Status:
    if untolerated(pod, ni.node, ("NoSchedule", "NoExecute")):
        return Status(UNRESOLVABLE, ("node(s) had untolerated taint(s)",), "TaintToleration")
    return OK


def node_affinity(pod: Obj, ni: NodeInfo) -> Status:
    spec = pod["spec"]
    labels = ni.node["metadata"].get("labels", {}) or {}
    fail = Status(UNRESOLVABLE, ("node(s) didn't match Pod's node affinity/selector",),
                  "NodeAffinity")
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return fail
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required and not any(node_selector_term_matches(t, ni.node)
                            for t in required.get("nodeSelectorTerms", [])):
        return fail
    return OK


def node_ports(pod: Obj, ni: NodeInfo) -> Status:
    want = host_ports(pod)
    if not want:
        return OK
    used = ni.used_host_ports()
    for ip, proto, port in want:
        for uip, uproto, uport in used:
            if proto == uproto and port == uport and \
                    (ip == uip or "0.0.0.0" in (ip, uip)):
                return Status(UNSCHEDULABLE,
                              ("node(s) didn't have free ports for the requested pod ports",),
                              "NodePorts")
    return OK


def node_resources_fit(pod: Obj, ni: NodeInfo) -> Status:
    alloc = ni.allocatable()
    reasons = []
    if len(ni.pods) + 1 > alloc["pods"]:
        reasons.append("Too many pods")
    req, used = pod_requests(pod), ni.requested()
    for r in ("cpu", "memory"):
        if req[r] > 0 and req[r] > alloc[r] - used[r]:
            reasons.append(f"Insufficient {r}")
    return Status(UNSCHEDULABLE, tuple(reasons), "NodeResourcesFit") if reasons else OK


FilterFn = Callable[[Obj, NodeInfo], Status]
#: filter plugins in the order of the default profile
FILTERS: dict[str, FilterFn] = {
    "NodeUnschedulable": node_unschedulable, "NodeName": node_name,
    "TaintToleration": taint_toleration, "NodeAffinity": node_affinity,
    "NodePorts": node_ports, "NodeResourcesFit": node_resources_fit,
}

# -- scores: raw per node, then normalised ------------------------------------------------


def score_taint_toleration(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    raw = {ni.name: float(len(untolerated(pod, ni.node, ("PreferNoSchedule",))))
           for ni in nodes}
    return default_normalize_score(raw, reverse=True)


def score_node_affinity(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    preferred = ((((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
                  .get("preferredDuringSchedulingIgnoredDuringExecution")) or [])
    raw = {ni.name: float(sum(p.get("weight", 0) for p in preferred
                              if node_selector_term_matches(p.get("preference", {}), ni.node)))
           for ni in nodes}
    return default_normalize_score(raw, reverse=False)


def score_least_allocated(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
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


def score_balanced_allocation(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
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


MB = 1024 * 1024
MIN_THRESHOLD, MAX_CONTAINER_THRESHOLD = 23 * MB, 1000 * MB


def score_image_locality(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    """``ImageLocality``: images already on a node, weighted by how widely they are spread."""
    containers = pod["spec"].get("containers", [])
    have: dict[str, dict[str, int]] = {}
    for ni in nodes:
        for img in ni.node.get("status", {}).get("images", []) or []:
            for name in img.get("names", []):
                have.setdefault(name, {})[ni.name] = img.get("sizeBytes", 0)
    out = {}
    max_threshold = MAX_CONTAINER_THRESHOLD * max(len(containers), 1)
    for ni in nodes:
        total = 0.0
        for c in containers:
            on = have.get(c.get("image", ""), {})
            if ni.name in on:
                total += on[ni.name] * len(on) / len(nodes)
        total = min(max(total, MIN_THRESHOLD), max_threshold)
        out[ni.name] = int(MAX_NODE_SCORE * (total - MIN_THRESHOLD)
                           // (max_threshold - MIN_THRESHOLD))
    return out


ScoreFn = Callable[[Obj, list[NodeInfo]], dict[str, int]]
SCORES: dict[str, ScoreFn] = {
    "TaintToleration": score_taint_toleration, "NodeAffinity": score_node_affinity,
    "NodeResourcesFit": score_least_allocated,
    "NodeResourcesBalancedAllocation": score_balanced_allocation,
    "ImageLocality": score_image_locality,
}

#: every plugin the model implements, at whatever extension points it has
REGISTRY = frozenset({"SchedulingGates", "PrioritySort", "DynamicResources",
                      "DefaultPreemption", "DefaultBinder", *FILTERS, *SCORES})


def pod_priority(pod: Obj) -> int:
    return int(pod.get("spec", {}).get("priority", 0) or 0)


def histogram(reasons: list[str]) -> str:
    """``FitError.Error``'s reason list: "count reason", sorted as strings, comma-joined."""
    counts: dict[str, int] = {}
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1
    return ", ".join(sorted(f"{v} {k}" for k, v in counts.items()))


def preemption_candidates(pod: Obj, nodes: list[NodeInfo], statuses: dict[str, Status],
                          filters: list[str]) -> tuple[list[tuple[str, list[Obj]]], list[str]]:
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
            return all(FILTERS[f](pod, trial).ok for f in filters)
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


def pick_one_node_for_preemption(candidates: list[tuple[str, list[Obj]]]) -> tuple[str, list[Obj]]:
    """``pickOneNodeForPreemption`` (without PDB counting): the lowest highest-priority
    victim, then the smallest sum of priorities, then the fewest victims, then the name."""
    def key(c: tuple[str, list[Obj]]) -> tuple[Any, ...]:
        prios = [pod_priority(v) for v in c[1]]
        return (max(prios, default=-(2**31)), sum(prios), len(prios), c[0])
    return min(candidates, key=key)
