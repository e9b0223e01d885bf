"""``TaintToleration`` (``pkg/scheduler/framework/plugins/tainttoleration``).

Filter: a node with a ``NoSchedule`` or ``NoExecute`` taint the pod does not tolerate is
rejected (``FindMatchingUntoleratedTaint``). Score: the fewer untolerated
``PreferNoSchedule`` taints, the higher (normalised in reverse). The matching itself is
:mod:`k8sbook.api.taints`."""

from __future__ import annotations

from k8sbook.api.taints import (
    NO_EXECUTE,
    NO_SCHEDULE,
    PREFER_NO_SCHEDULE,
    find_matching_untolerated_taint,
    untolerated_taints,
)
from k8sbook.controlplane.scheduler.framework import (
    OK,
    UNRESOLVABLE,
    NodeInfo,
    Obj,
    Status,
    default_normalize_score,
)


def filter(pod: Obj, ni: NodeInfo) -> Status:
    taint = find_matching_untolerated_taint(
        ni.node.get("spec", {}).get("taints") or [], pod["spec"].get("tolerations") or [],
        lambda t: t.get("effect") in (NO_SCHEDULE, NO_EXECUTE))
    if taint is not None:
        return Status(UNRESOLVABLE, ("node(s) had untolerated taint(s)",), "TaintToleration")
    return OK


def score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    raw = {ni.name: float(len(untolerated_taints(pod, ni.node, (PREFER_NO_SCHEDULE,))))
           for ni in nodes}
    return default_normalize_score(raw, reverse=True)
