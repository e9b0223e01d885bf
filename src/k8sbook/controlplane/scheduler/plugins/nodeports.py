"""``NodePorts`` (``pkg/scheduler/framework/plugins/nodeports``): a pod's ``hostPort`` must be
free on the node (the same protocol and port on the same IP, or on ``0.0.0.0``). PreFilter
collects the pod's host ports once per cycle and skips the Filter when there are none, as
upstream's does."""

from __future__ import annotations

from typing import Any

from k8sbook.controlplane.scheduler.framework import (
    OK,
    SKIP,
    UNSCHEDULABLE,
    FilterPlugin,
    NodeInfo,
    Obj,
    Status,
    host_ports,
)

_CONFLICT = Status(UNSCHEDULABLE, ("node(s) didn't have free ports for the requested pod ports",),
                   "NodePorts")


def pre_filter(pod: Obj) -> Any:
    return host_ports(pod) or SKIP


def filter_node(want: set[tuple[str, str, int]], ni: NodeInfo) -> Status:
    used = ni.used_host_ports()
    for ip, proto, port in want:
        for uip, uproto, uport in used:
            if proto == uproto and port == uport and \
                    (ip == uip or "0.0.0.0" in (ip, uip)):
                return _CONFLICT
    return OK


PLUGIN = FilterPlugin(pre_filter, filter_node)


def filter(pod: Obj, ni: NodeInfo) -> Status:
    """PreFilter and Filter for one node."""
    return PLUGIN(pod, ni)
