"""``NodeAffinity`` (``pkg/scheduler/framework/plugins/nodeaffinity``): ``nodeSelector`` and
the required node affinity filter; the preferred terms' weights score.

As upstream, PreFilter turns the pod's ``nodeSelector`` and required terms into a matcher
once per cycle (``nodeaffinity.GetRequiredNodeAffinity``: each expression compiled into a
test on the node's labels) and returns Skip when the pod has neither, so the Filter does not
run; a pod without preferred terms gets the score 0 on every node without matching (upstream's
PreScore returns Skip)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.controlplane.scheduler.framework import (
    OK,
    SKIP,
    UNRESOLVABLE,
    FilterPlugin,
    NodeInfo,
    Obj,
    Status,
    default_normalize_score,
)

#: a compiled ``NodeSelectorRequirement``: a test on a label (or field) map
Requirement = Callable[[dict[str, str]], bool]

_MISMATCH = Status(UNRESOLVABLE, ("node(s) didn't match Pod's node affinity/selector",),
                   "NodeAffinity")


def _compile(expr: Obj) -> Requirement:
    """A ``NodeSelectorRequirement`` as a test on labels: ``In``, ``NotIn``, ``Exists``,
    ``DoesNotExist``, ``Gt`` and ``Lt`` (integers; a value that is not one matches
    nothing); an unknown operator matches nothing."""
    key, op, values = expr["key"], expr["operator"], expr.get("values", [])
    if op == "In":
        return lambda labels: key in labels and labels[key] in values
    if op == "NotIn":
        return lambda labels: key not in labels or labels[key] not in values
    if op == "Exists":
        return lambda labels: key in labels
    if op == "DoesNotExist":
        return lambda labels: key not in labels
    if op in ("Gt", "Lt"):
        try:
            want = int(values[0])
        except (ValueError, IndexError):
            return lambda labels: False
        greater = op == "Gt"

        def compare(labels: dict[str, str]) -> bool:
            if key not in labels:
                return False
            try:
                have = int(labels[key])
            except ValueError:
                return False
            return have > want if greater else have < want
        return compare
    return lambda labels: False


class NodeSelectorTerm:
    """A compiled ``NodeSelectorTerm``: every expression (and field expression) must match;
    a term with neither matches no node."""

    def __init__(self, term: Obj) -> None:
        self.expressions = [_compile(e) for e in term.get("matchExpressions", []) or []]
        self.fields = [_compile(e) for e in term.get("matchFields", []) or []]

    def matches(self, labels: dict[str, str], name: str) -> bool:
        if not self.expressions and not self.fields:
            return False  # an empty term matches no objects
        if not all(req(labels) for req in self.expressions):
            return False
        if self.fields:
            fields = {"metadata.name": name}
            return all(req(fields) for req in self.fields)
        return True


def node_selector_term_matches(term: Obj, node: Obj) -> bool:
    """A ``NodeSelectorTerm``: every expression (and field expression) must match."""
    return NodeSelectorTerm(term).matches(node["metadata"].get("labels", {}) or {},
                                          node["metadata"]["name"])


class RequiredNodeAffinity:
    """``nodeaffinity.RequiredNodeAffinity``: the pod's ``nodeSelector`` (every label equal)
    and its required terms (one must match), compiled once."""

    def __init__(self, spec: Obj) -> None:
        self.selector = list((spec.get("nodeSelector") or {}).items())
        required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                    .get("requiredDuringSchedulingIgnoredDuringExecution"))
        self.terms = [NodeSelectorTerm(t) for t in required.get("nodeSelectorTerms", [])] \
            if required else None

    def matches(self, ni: NodeInfo) -> bool:
        labels = ni.labels
        for k, v in self.selector:
            if labels.get(k) != v:
                return False
        return self.terms is None or any(t.matches(labels, ni.name) for t in self.terms)


def pre_filter(pod: Obj) -> Any:
    """Skip when the pod has no ``nodeSelector`` and no required node affinity."""
    spec = pod["spec"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None and spec.get("nodeSelector") is None:
        return SKIP
    return RequiredNodeAffinity(spec)


def filter_node(affinity: RequiredNodeAffinity, ni: NodeInfo) -> Status:
    return OK if affinity.matches(ni) else _MISMATCH


PLUGIN = FilterPlugin(pre_filter, filter_node)


def filter(pod: Obj, ni: NodeInfo) -> Status:
    """PreFilter and Filter for one node."""
    return PLUGIN(pod, ni)


def score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    preferred = ((((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
                  .get("preferredDuringSchedulingIgnoredDuringExecution")) or [])
    if not preferred:  # every raw score 0, which DefaultNormalizeScore leaves at 0
        return {ni.name: 0 for ni in nodes}
    terms = [(p.get("weight", 0), NodeSelectorTerm(p.get("preference", {}))) for p in preferred]
    raw = {ni.name: float(sum(w for w, t in terms if t.matches(ni.labels, ni.name)))
           for ni in nodes}
    return default_normalize_score(raw, reverse=False)
