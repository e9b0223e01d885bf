"""Scenarios of the node chapters: 7, "The kubelet pulls", and 8, "Inside the node".

Each function is a complete, deterministic run on a fresh :class:`~k8sbook.cluster.Cluster`.
Pods are created with ``spec.nodeName`` already set, which Kubernetes allows: such a pod never
goes through the scheduler, and the kubelet of that node picks it up directly.

Mirrors the node side of Kubernetes v1.35.0 (``pkg/kubelet`` and what it talks to), split by
chapter section: :mod:`.kubelet_pulls` (chapter 7), :mod:`.workloads` (chapter 7, section 6:
the apiserver and the workloads), :mod:`.inside_the_node` (chapter 8), on the helpers of
:mod:`.common`. Importing the package registers every scenario; the chapters import the
timelines from here (``from k8sbook.textbook.scenarios.node import crashloop_timeline``).
"""

from k8sbook.textbook.scenarios.node.common import CH7, CH8, RELIST
from k8sbook.textbook.scenarios.node.inside_the_node import (
    cni_failure,
    crashloop,
    crashloop_timeline,
    cri_lifecycle,
    csi_volume,
    image_pull,
    inside_container,
    pleg_restart,
    readiness_probe,
)
from k8sbook.textbook.scenarios.node.kubelet_pulls import (
    apiserver_to_kubelet,
    heartbeats,
    kubelet_confined,
    kubelet_pulls,
    unreachable,
    unreachable_timeline,
)
from k8sbook.textbook.scenarios.node.workloads import apiserver_to_pod, pod_to_apiserver

__all__ = ["CH7", "CH8", "RELIST", "apiserver_to_kubelet", "apiserver_to_pod", "cni_failure",
           "crashloop", "crashloop_timeline", "cri_lifecycle", "csi_volume", "heartbeats",
           "image_pull", "inside_container", "kubelet_confined", "kubelet_pulls",
           "pleg_restart", "pod_to_apiserver", "readiness_probe", "unreachable",
           "unreachable_timeline"]
