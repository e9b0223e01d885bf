"""``NodeName`` (``pkg/scheduler/framework/plugins/nodename``): a pod that names a node in
``spec.nodeName`` fits only there."""

from __future__ import annotations

from k8sbook.controlplane.scheduler.framework import OK, UNRESOLVABLE, NodeInfo, Obj, Status


def filter(pod: Obj, ni: NodeInfo) -> Status:
    want = pod["spec"].get("nodeName")
    if not want or want == ni.name:
        return OK
    return Status(UNRESOLVABLE, ("node(s) didn't match the requested node name",), "NodeName")
