"""Which components ``k8sbook serve`` runs next to the apiserver.

Kubernetes has no such package: this is the model's stand-in for the machines a kubeadm
cluster runs (a kubelet per node, kube-scheduler and kube-controller-manager as static pods)
and the add-ons it installs (:mod:`k8sbook.serve.addons`: the EndpointSlice controller,
kube-proxy, CoreDNS, metrics-server with its APIService). Each is built by the composition
root (:class:`k8sbook.cluster.Cluster`'s ``add_*`` factories) and started;
:func:`register_component` adds others. The kubelets' registry holds only the images of
:data:`k8sbook.node.containerd_images.KNOWN_IMAGES`, so a learner's typo in an image name
ends in ``ErrImagePull`` as on a real cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.cluster import Cluster
from k8sbook.controlplane.controller_manager import ALL_CONTROLLERS
from k8sbook.node.containerd_images import KNOWN_IMAGES, Registry
from k8sbook.serve.addons import ADDONS

#: The components :class:`ModelServer` starts, in order: (name, how to start them).
COMPONENT_MODULES: tuple[tuple[str, Callable[[Cluster, list[str]], Any]], ...] = (
    ("kubelet", lambda cluster, nodes: [
        cluster.add_kubelet(n, registry=Registry(catalog=KNOWN_IMAGES)).start() for n in nodes]),
    ("kube-scheduler", lambda cluster, nodes: cluster.add_scheduler().start()),
    # every controller, as a real kube-controller-manager runs them (``--controllers=*``)
    ("kube-controller-manager", lambda cluster, nodes: cluster.add_controller_manager(
        controllers=ALL_CONTROLLERS).start()),
    *ADDONS,
)
#: Nodes ``k8sbook serve`` runs a kubelet for.
DEFAULT_NODES = ("node-a", "node-b")

_extra_components: list[tuple[str, Callable[[Cluster, list[str]], Any]]] = []


def register_component(name: str, attach: Callable[[Cluster, list[str]], Any]) -> None:
    """Run ``attach(cluster, nodes)`` on every :class:`ModelServer` started from now on."""
    _extra_components.append((name, attach))


def attach_components(cluster: Cluster, nodes: list[str]) -> list[str]:
    """Start the kubelets for ``nodes``, the scheduler, the controller manager, then the
    registered extras; return their names."""
    attached = []
    for name, start in (*COMPONENT_MODULES, *_extra_components):
        start(cluster, nodes)
        attached.append(name)
    return attached


def serves_logs(cluster: Cluster) -> bool:
    """Whether the apiserver has a ``pods/log`` handler (the apiserver->kubelet path)."""
    return ("pods", "log") in getattr(cluster.apiserver, "handlers", {})
