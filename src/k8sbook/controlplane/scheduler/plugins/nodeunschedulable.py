"""``NodeUnschedulable`` (``pkg/scheduler/framework/plugins/nodeunschedulable``): a cordoned
node (``spec.unschedulable``) passes only pods that tolerate the taint
``node.kubernetes.io/unschedulable:NoSchedule``."""

from __future__ import annotations

from k8sbook.api.taints import tolerations_tolerate_taint
from k8sbook.controlplane.scheduler.framework import OK, UNRESOLVABLE, NodeInfo, Obj, Status

TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def filter(pod: Obj, ni: NodeInfo) -> Status:
    if not ni.node.get("spec", {}).get("unschedulable"):
        return OK
    if tolerations_tolerate_taint(pod["spec"].get("tolerations") or [], TAINT):
        return OK
    return Status(UNRESOLVABLE, ("node(s) were unschedulable",), "NodeUnschedulable")
