"""The add-ons ``k8sbook serve`` installs so that a learner's cluster behaves like a kubeadm one.

kubeadm's cluster has kube-proxy on every node and CoreDNS (``kubeadm init``'s ``addon``
phase); most clusters add metrics-server (kubernetes-sigs/metrics-server's
``components.yaml``) for ``kubectl top``; kube-controller-manager runs the EndpointSlice
controller, so a Service over Ready pods gets endpoints (``kubectl describe svc``). Each is
installed here as the book's chapters install it (the same functions:
:func:`k8sbook.textbook.scenarios.metrics.install_metrics_server`,
:func:`~k8sbook.textbook.scenarios.metrics.start_endpointslices`, the CoreDNS objects of
:mod:`k8sbook.textbook.scenarios.networking.cluster_dns`) and by the cluster's ``add_*``
factories, while virtual time runs before the server accepts connections.

Every add-on pod runs on the first node (``node-a``): they are bare pods, as in the chapters,
so draining that node needs ``--force`` and loses them; drain the other one.
"""

from __future__ import annotations

from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios.metrics import install_metrics_server, start_endpointslices
from k8sbook.textbook.scenarios.networking.cluster_dns import coredns_pod, kube_dns_service

#: how long to wait (virtual seconds) for an add-on pod to run
WAIT = 60.0


def endpointslices(cluster: Cluster, nodes: list[str]) -> None:
    start_endpointslices(cluster)


def kube_proxies(cluster: Cluster, nodes: list[str]) -> None:
    for n in nodes:
        cluster.add_kube_proxy(n)


def root_ca_published(cluster: Cluster, namespace: str = "kube-system") -> None:
    """Wait until the root-ca-cert-publisher has written ``kube-root-ca.crt`` into
    ``namespace``: every pod's token volume projects it, and the kubelet retries a mount that
    lacks it only after a back-off (on a real cluster the control plane has been up a while
    before the add-ons come)."""
    deadline = cluster.clock.now() + WAIT
    while cluster.apiserver.cached("configmaps", namespace, "kube-root-ca.crt") is None:
        if cluster.clock.now() >= deadline:
            raise TimeoutError(f"kube-root-ca.crt was not published in {namespace}")
        cluster.settle(0.5)


def coredns(cluster: Cluster, nodes: list[str]) -> None:
    """The ``coredns`` ServiceAccount (kubeadm's CoreDNS addon makes it; the ServiceAccount
    admission plugin refuses a pod whose account does not exist), the ``kube-dns`` Service
    (10.96.0.10) and one CoreDNS pod, then its process."""
    if cluster.apiserver.service_account_admission.enabled:
        root_ca_published(cluster)
    admin = cluster.admin()
    admin.create({"apiVersion": "v1", "kind": "ServiceAccount",
                  "metadata": {"name": "coredns", "namespace": "kube-system"}})
    admin.create(kube_dns_service())
    name = admin.create(coredns_pod(nodes[0]))["metadata"]["name"]
    deadline = cluster.clock.now() + WAIT
    while cluster.clock.now() < deadline:
        pod = cluster.apiserver.cached("pods", "kube-system", name)
        ip = (pod or {}).get("status", {}).get("podIP")
        if ip and pod is not None and pod["status"].get("phase") == "Running":
            cluster.add_coredns(name, ip)
            return
        cluster.settle(0.5)
    raise TimeoutError(f"the CoreDNS pod {name} did not start")


def metrics_server(cluster: Cluster, nodes: list[str]) -> None:
    install_metrics_server(cluster, node=nodes[0])


#: (name, attach) in the order :func:`k8sbook.serve.components.attach_components` runs them
ADDONS = (("endpointslice-controller", endpointslices), ("kube-proxy", kube_proxies),
          ("coredns", coredns), ("metrics-server", metrics_server))
