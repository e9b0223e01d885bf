"""``TaintToleration`` (``pkg/scheduler/framework/plugins/tainttoleration``).

Filter: a node with a ``NoSchedule`` or ``NoExecute`` taint the pod does not tolerate is
rejected (``FindMatchingUntoleratedTaint``). Score: the fewer untolerated
``PreferNoSchedule`` taints, the higher (normalised in reverse). The matching itself is
:mod:`k8sbook.api.taints`. The pod's tolerations are read once per cycle (the PreFilter
state), the node's taints once per Node object (:class:`NodeInfo`)."""

from __future__ import annotations

from typing import Any

from k8sbook.api.taints import (
    NO_EXECUTE,
    NO_SCHEDULE,
    PREFER_NO_SCHEDULE,
    find_matching_untolerated_taint,
    tolerations_tolerate_taint,
)
from k8sbook.controlplane.scheduler.framework import (
    MAX_NODE_SCORE,
    OK,
    UNRESOLVABLE,
    FilterPlugin,
    NodeInfo,
    Obj,
    Status,
    default_normalize_score,
)

_UNTOLERATED = Status(UNRESOLVABLE, ("node(s) had untolerated taint(s)",), "TaintToleration")


def _hard(taint: Obj) -> bool:
    return taint.get("effect") in (NO_SCHEDULE, NO_EXECUTE)


def pre_filter(pod: Obj) -> list[Obj]:
    """The pod's tolerations, read once for the cycle."""
    return list(pod["spec"].get("tolerations") or [])


def filter_node(tolerations: list[Obj], ni: NodeInfo) -> Status:
    if not ni.taints:  # nothing to tolerate: what the search below finds for no taints
        return OK
    if find_matching_untolerated_taint(ni.taints, tolerations, _hard) is not None:
        return _UNTOLERATED
    return OK


PLUGIN = FilterPlugin(pre_filter, filter_node)


def filter(pod: Obj, ni: NodeInfo) -> Status:
    """PreFilter and Filter for one node."""
    return PLUGIN(pod, ni)


def score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    tols: list[Any] = pre_filter(pod)
    raw: dict[str, float] = {}
    for ni in nodes:
        count = 0
        for t in ni.taints:
            if t.get("effect") == PREFER_NO_SCHEDULE and not tolerations_tolerate_taint(tols, t):
                count += 1
        raw[ni.name] = float(count)
    if not any(raw.values()):  # every count 0: DefaultNormalizeScore reversed gives 100 to all
        return dict.fromkeys(raw, MAX_NODE_SCORE)
    return default_normalize_score(raw, reverse=True)
