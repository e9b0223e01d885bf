"""Shared set-up for the node tests: a cluster with node-a's kubelet running."""

from __future__ import annotations

from typing import Any

import pytest

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.cluster import Cluster


def exec_in(cluster: Cluster, pod: str, command: list[str], container: str = "") -> \
        dict[str, Any]:
    params: dict[str, Any] = {"command": command}
    if container:
        params["container"] = container
    return cluster.admin().request(Request("create", "pods", "", "default", pod, "exec",
                                           params=params))


@pytest.fixture
def node_a():
    c = Cluster(0)
    k = c.add_kubelet("node-a").start()
    c.run_for(1)
    return c, k


def run_pod(c: Cluster, name: str = "web", **spec: Any) -> dict[str, Any]:
    pod = objects.pod(name, node_name="node-a",
                      containers=[objects.container("app", "busybox:1.36", ports=[8080])])
    pod["spec"].update(spec)
    c.admin().create(pod)
    c.run_for(2)
    return c.admin().get("pods", name, "default")
