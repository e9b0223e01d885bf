"""``NodePorts`` (``pkg/scheduler/framework/plugins/nodeports``): a pod's ``hostPort`` must be
free on the node (the same protocol and port on the same IP, or on ``0.0.0.0``)."""

from __future__ import annotations

from k8sbook.controlplane.scheduler.framework import (
    OK,
    UNSCHEDULABLE,
    NodeInfo,
    Obj,
    Status,
    host_ports,
)


def filter(pod: Obj, ni: NodeInfo) -> Status:
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
