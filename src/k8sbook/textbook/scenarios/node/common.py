"""What the node chapters' scenarios share: the chapter ids, a one-node cluster, and small
readers (a pod, its conditions, ``kubectl exec``, the trace without the PLEG's relists).

Mirrors nothing upstream by itself: it drives ``pkg/kubelet`` (v1.35.0) through the model's
:class:`~k8sbook.cluster.Cluster` for :mod:`.kubelet_pulls`, :mod:`.inside_the_node` and
:mod:`.workloads`.
"""

from __future__ import annotations

from typing import Any

from k8sbook.api.request import Request
from k8sbook.cluster import Cluster
from k8sbook.core.trace import Message
from k8sbook.node.kubelet import Kubelet
from k8sbook.node.machine import Machine

CH7 = "07-the-kubelet-pulls"
CH8 = "08-inside-the-node"
#: the CRI calls the PLEG makes every second; left out where a chapter shows one pod's story
RELIST = ("ListPodSandbox", "ListContainers")


def quiet(messages: list[Message]) -> list[Message]:
    """Drop the PLEG's periodic relists and the apiserver's etcd traffic."""
    return [m for m in messages if m.verb not in RELIST and m.dst != "etcd"]


def get_pod(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.admin().get("pods", name, "default")


def one_node(seed: int) -> tuple[Cluster, Kubelet]:
    """A cluster with one registered node, ``node-a``, and its running kubelet."""
    cluster = Cluster(seed)
    kubelet = cluster.add_kubelet("node-a").start()
    cluster.run_for(1)
    return cluster, kubelet


def machine_of(cluster: Cluster, node: str) -> Machine:
    machine = cluster.components[f"machine/{node}"]
    assert isinstance(machine, Machine)
    return machine


def kubectl_exec(cluster: Cluster, pod: str, command: list[str],
                 container: str = "") -> dict[str, Any]:
    """``kubectl exec``: POST pods/exec through the apiserver; the body the kubelet relays."""
    params: dict[str, Any] = {"command": command}
    if container:
        params["container"] = container
    body: dict[str, Any] = cluster.admin().request(Request(
        "create", "pods", "", "default", pod, "exec", params=params))
    return body


def pod_conditions(pod: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
