"""``NodeAffinity`` (``pkg/scheduler/framework/plugins/nodeaffinity``): ``nodeSelector`` and
the required node affinity filter; the preferred terms' weights score."""

from __future__ import annotations

from k8sbook.controlplane.scheduler.framework import (
    OK,
    UNRESOLVABLE,
    NodeInfo,
    Obj,
    Status,
    default_normalize_score,
)


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


def filter(pod: Obj, ni: NodeInfo) -> Status:
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


def score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    preferred = ((((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
                  .get("preferredDuringSchedulingIgnoredDuringExecution")) or [])
    raw = {ni.name: float(sum(p.get("weight", 0) for p in preferred
                              if node_selector_term_matches(p.get("preference", {}), ni.node)))
           for ni in nodes}
    return default_normalize_score(raw, reverse=False)
