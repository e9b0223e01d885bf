"""The kubelet, split along ``pkg/kubelet``'s own packages (see :mod:`.kubelet`).

Mirrors ``k8s.io/kubernetes/pkg/kubelet`` (v1.35.0). Importing the package gives the public
names: ``from k8sbook.node.kubelet import Kubelet, KUBELET_PORT, http_probe``.
"""

from __future__ import annotations

from k8sbook.node.kubelet.backoff import Backoff
from k8sbook.node.kubelet.config import (
    BACKOFF_PERIOD,
    CLUSTER_CIDR,
    CLUSTER_DNS,
    KUBELET_PORT,
    KUBELET_VERSION,
    LEASE_DURATION,
    LEASE_RENEW_INTERVAL,
    MAX_CONTAINER_BACKOFF,
    NODE_LEASE_NAMESPACE,
    NODE_STATUS_REPORT_FREQUENCY,
    NODE_STATUS_UPDATE_FREQUENCY,
    PLEG_RELIST_PERIOD,
    SYNC_FREQUENCY,
)
from k8sbook.node.kubelet.kubelet import Kubelet
from k8sbook.node.kubelet.metrics import MODEL_IDLE_CPU, MODEL_IDLE_MEMORY
from k8sbook.node.kubelet.prober import http_probe
from k8sbook.node.kubelet.server import KubeletServer
from k8sbook.node.kubelet.types import PodRecord, ProbeState

__all__ = ["BACKOFF_PERIOD", "CLUSTER_CIDR", "CLUSTER_DNS", "KUBELET_PORT", "KUBELET_VERSION",
           "LEASE_DURATION", "LEASE_RENEW_INTERVAL", "MAX_CONTAINER_BACKOFF", "MODEL_IDLE_CPU",
           "MODEL_IDLE_MEMORY", "NODE_LEASE_NAMESPACE", "NODE_STATUS_REPORT_FREQUENCY",
           "NODE_STATUS_UPDATE_FREQUENCY", "PLEG_RELIST_PERIOD", "SYNC_FREQUENCY", "Backoff",
           "Kubelet", "KubeletServer", "PodRecord", "ProbeState", "http_probe"]

