"""Which components ``k8sbook serve`` runs next to the apiserver.

Kubernetes has no such package: this is the model's stand-in for the machines a kubeadm
cluster runs (a kubelet per node, kube-scheduler and kube-controller-manager as static pods).
Each module named in :data:`COMPONENT_MODULES` is imported if it exists; its
``attach(cluster, nodes)`` is called if it defines one, else its component class is started;
:func:`register_component` adds others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from k8sbook.cluster import Cluster

#: The components :class:`ModelServer` starts when their module exists: (name, module, class).
#: A module may instead define ``attach(cluster, nodes)``, which is then called.
COMPONENT_MODULES = (("kubelet", "node.kubelet", "Kubelet"),
                     ("kube-scheduler", "controlplane.scheduler", "KubeScheduler"),
                     ("kube-controller-manager", "controlplane.controller_manager",
                      "KubeControllerManager"))
#: Nodes ``k8sbook serve`` asks the kubelet module (if there is one) to run.
DEFAULT_NODES = ("node-a", "node-b")

_extra_components: list[tuple[str, Callable[[Cluster, list[str]], Any]]] = []


def register_component(name: str, attach: Callable[[Cluster, list[str]], Any]) -> None:
    """Run ``attach(cluster, nodes)`` on every :class:`ModelServer` started from now on."""
    _extra_components.append((name, attach))


def attach_components(cluster: Cluster, nodes: list[str]) -> list[str]:
    """Start every component the package has (kubelets for ``nodes``, the scheduler, the
    controller manager), then the registered extras; return their names."""
    attached = []
    for name, mod, cls in COMPONENT_MODULES:
        try:
            module = importlib.import_module(f"k8sbook.{mod}")
        except ModuleNotFoundError as err:
            if err.name == f"k8sbook.{mod}":
                continue  # not written yet
            raise
        attach = getattr(module, "attach", None)
        if callable(attach):
            attach(cluster, nodes)
        elif hasattr(module, cls):
            component = getattr(module, cls)
            for instance in (nodes if name == "kubelet" else [None]):
                started = component(cluster, instance) if instance else component(cluster)
                started.start()
        else:
            continue
        attached.append(name)
    for name, attach in _extra_components:
        attach(cluster, nodes)
        attached.append(name)
    return attached


def serves_logs(cluster: Cluster) -> bool:
    """Whether the apiserver has a ``pods/log`` handler (the apiserver->kubelet path)."""
    return ("pods", "log") in getattr(cluster.apiserver, "handlers", {})
