"""``NodeUnschedulable`` (``pkg/scheduler/framework/plugins/nodeunschedulable``): a cordoned
node (``spec.unschedulable``) passes only pods that tolerate the taint
``node.kubernetes.io/unschedulable:NoSchedule``."""

from __future__ import annotations

from k8sbook.api.taints import tolerations_tolerate_taint
from k8sbook.controlplane.scheduler.framework import (
    OK,
    UNRESOLVABLE,
    FilterPlugin,
    NodeInfo,
    Obj,
    Status,
)

TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
_CORDONED = Status(UNRESOLVABLE, ("node(s) were unschedulable",), "NodeUnschedulable")


def pre_filter(pod: Obj) -> bool:
    """Whether the pod tolerates the cordon's taint (upstream asks per cordoned node; the
    answer depends on the pod alone, so the model asks once per cycle)."""
    return tolerations_tolerate_taint(pod["spec"].get("tolerations") or [], TAINT)


def filter_node(tolerates: bool, ni: NodeInfo) -> Status:
    if not ni.unschedulable or tolerates:
        return OK
    return _CORDONED


PLUGIN = FilterPlugin(pre_filter, filter_node)


def filter(pod: Obj, ni: NodeInfo) -> Status:
    """PreFilter and Filter for one node."""
    return PLUGIN(pod, ni)
