"""A model cluster: one clock, one etcd, one kube-apiserver, and clients for components.

Mirrors what ``kubeadm init`` leaves behind, minus the processes: an etcd member, a
kube-apiserver started against it (which creates the system namespaces, the default RBAC policy
and the ``kubernetes`` Service itself), the kubeadm ClusterRoleBinding that makes
``kubeadm:cluster-admins`` cluster administrators, and client identities for the components,
named as kubeadm names them (certificates with CN ``system:kube-scheduler``,
``system:kube-controller-manager``, ``system:node:<name>`` in O ``system:nodes``;
``kubernetes-admin`` in O ``kubeadm:cluster-admins`` for ``kubectl``).

Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.apiserver import rbac
from k8sbook.apiserver.authentication import (
    ClientCertificate,
    Credentials,
    component_certificate,
    node_certificate,
)
from k8sbook.apiserver.server import LOOPBACK_USER, APIServer, Request
from k8sbook.client.rest import Client, Network
from k8sbook.core.clock import Clock
from k8sbook.core.ids import IdGenerator
from k8sbook.core.trace import Trace, component_of
from k8sbook.storage.etcd import Etcd, MemoryEtcd
from k8sbook.storage.etcd_server import store_from_env

#: The identity each component authenticates as when no credentials are given.
DEFAULT_IDENTITIES: dict[str, ClientCertificate] = {
    "kube-scheduler": component_certificate("system:kube-scheduler"),
    "kube-controller-manager": component_certificate("system:kube-controller-manager"),
    "kube-proxy": component_certificate("system:kube-proxy"),
    "kubectl": component_certificate("kubernetes-admin", ("kubeadm:cluster-admins",)),
}


class Cluster:
    """Build with ``Cluster(seed=0)``; get components' clients with :meth:`client`."""

    def __init__(self, seed: int = 0, *, etcd: Etcd | Callable[[Clock], Etcd] | None = None,
                 trace_bootstrap: bool = False, start: bool = True) -> None:
        self.seed = seed
        self.clock = Clock()
        self.ids = IdGenerator(seed)
        self.trace = Trace()
        self.network = Network()
        if callable(etcd):  # a factory, e.g. etcd_server.connect(endpoint): it needs the clock
            etcd = etcd(self.clock)
        if etcd is None:  # $K8SBOOK_ETCD names a real etcd; otherwise the embedded store
            etcd = store_from_env(self.clock)
        self.etcd: Any = etcd if etcd is not None else MemoryEtcd(self.clock)
        self.apiserver = APIServer(self.clock, self.etcd, self.ids, self.trace, seed=seed)
        self.components: dict[str, Any] = {}
        if start:
            self.trace.enabled = trace_bootstrap
            self.apiserver.start()
            self._kubeadm_objects()
            self.trace.enabled = True

    def _kubeadm_objects(self) -> None:
        """What ``kubeadm init`` writes besides the apiserver's own bootstrap objects."""
        group = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                 "name": "kubeadm:cluster-admins"}
        # kubeadm's binding for the apiserver's kubelet client certificate (logs, exec, ...)
        kubelet_client = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": "kube-apiserver-kubelet-client"}
        for binding in (
            rbac.cluster_role_binding("kubeadm:cluster-admins", "cluster-admin", [group]),
            rbac.cluster_role_binding("kubeadm:apiserver-kubelet-client",
                                      "system:kubelet-api-admin", [kubelet_client]),
        ):
            self.apiserver.handle(Request("create", "clusterrolebindings",
                                          "rbac.authorization.k8s.io", body=binding,
                                          user=LOOPBACK_USER))

    def credentials_for(self, instance: str) -> Credentials:
        component = component_of(instance)
        if component == "kubelet":
            return node_certificate(instance.split("/", 1)[1])
        if component in DEFAULT_IDENTITIES:
            return DEFAULT_IDENTITIES[component]
        # anything else: a certificate naming the component; RBAC decides what it may do
        return ClientCertificate(component)

    def client(self, instance: str, credentials: Credentials | None = None) -> Client:
        """A client for ``instance`` (``kube-scheduler``, ``kubelet/node-a`` ...)."""
        creds = credentials if credentials is not None else self.credentials_for(instance)
        return Client(self.apiserver, instance, creds, network=self.network, trace=self.trace,
                      clock=self.clock)

    def admin(self) -> Client:
        """``kubectl`` with kubeadm's admin.conf identity."""
        return self.client("kubectl")

    def run_for(self, seconds: float) -> None:
        self.clock.run_for(seconds)

    def settle(self, seconds: float = 1.0) -> None:
        """Let every immediately-due callback run (watch deliveries, queue workers)."""
        self.clock.run_for(seconds)
