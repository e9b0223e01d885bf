"""``NodeName`` (``pkg/scheduler/framework/plugins/nodename``): a pod that names a node in
``spec.nodeName`` fits only there."""

from __future__ import annotations

from typing import Any

from k8sbook.controlplane.scheduler.framework import (
    OK,
    SKIP,
    UNRESOLVABLE,
    FilterPlugin,
    NodeInfo,
    Obj,
    Status,
)

_MISMATCH = Status(UNRESOLVABLE, ("node(s) didn't match the requested node name",), "NodeName")


def pre_filter(pod: Obj) -> Any:
    """The node the pod names. Upstream's plugin has no PreFilter and passes every node when
    the name is empty; skipping it then is the same answer, found once per cycle."""
    return pod["spec"].get("nodeName") or SKIP


def filter_node(want: str, ni: NodeInfo) -> Status:
    return OK if want == ni.name else _MISMATCH


PLUGIN = FilterPlugin(pre_filter, filter_node)


def filter(pod: Obj, ni: NodeInfo) -> Status:
    """PreFilter and Filter for one node."""
    return PLUGIN(pod, ni)
