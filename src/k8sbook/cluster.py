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

import ipaddress
from collections.abc import Callable
from typing import Any

from k8sbook.api.request import BearerToken, Request
from k8sbook.apiserver import rbac
from k8sbook.apiserver.authentication import (
    ClientCertificate,
    Credentials,
    component_certificate,
    node_certificate,
    service_account_user,
)
from k8sbook.apiserver.server import LOOPBACK_USER, APIServer
from k8sbook.client.network import Network
from k8sbook.client.rest import Client
from k8sbook.core.clock import Clock
from k8sbook.core.ids import IdGenerator
from k8sbook.core.status import StatusError
from k8sbook.core.trace import Trace, component_of
from k8sbook.node.container_runtime import Registry
from k8sbook.node.kubelet import KUBELET_PORT, Kubelet
from k8sbook.node.machine import Machine

#: kubeadm's default ``--cluster-cidr`` (``podSubnet``) is unset; the model uses the
#: common 10.244.0.0/16 (flannel's and kind's) with ``--node-cidr-mask-size=24``.
CLUSTER_CIDR = "10.244.0.0/16"
NODE_CIDR_MASK = 24
#: the machines' network: the control plane is 192.168.0.2, nodes from 192.168.0.10
NODE_NETWORK_FIRST = 10
from k8sbook.storage import etcd3
from k8sbook.storage.etcd import Etcd, MemoryEtcd
from k8sbook.storage.etcd_server import store_from_env

#: The identity each component authenticates as when no credentials are given.
DEFAULT_IDENTITIES: dict[str, ClientCertificate] = {
    "kube-scheduler": component_certificate("system:kube-scheduler"),
    "kube-controller-manager": component_certificate("system:kube-controller-manager"),
    "kube-proxy": component_certificate("system:kube-proxy"),
    "kubectl": component_certificate("kubernetes-admin", ("kubeadm:cluster-admins",)),
}


class NodeIPAM:
    """Addresses for nodes: each node's InternalIP on the machines' network, and its pod CIDR.

    The pod CIDR stands in for kube-controller-manager's node IPAM controller
    (``pkg/controller/nodeipam``, ``--allocate-node-cidrs`` with the range allocator), which
    gives each new Node the next unused ``/24`` of ``--cluster-cidr`` as ``spec.podCIDR``; the
    model hands it to the kubelet, which registers the Node with it already set. Both are
    allocated in the order nodes first appear, so they are deterministic.
    """

    def __init__(self, cluster_cidr: str = CLUSTER_CIDR, mask: int = NODE_CIDR_MASK) -> None:
        self._subnets = ipaddress.ip_network(cluster_cidr).subnets(new_prefix=mask)
        self._cidrs: dict[str, str] = {}
        self._ips: dict[str, str] = {}

    def pod_cidr(self, node: str) -> str:
        if node not in self._cidrs:
            self._cidrs[node] = str(next(self._subnets))
        return self._cidrs[node]

    def node_ip(self, node: str) -> str:
        if node not in self._ips:
            self._ips[node] = f"192.168.0.{NODE_NETWORK_FIRST + len(self._ips)}"
        return self._ips[node]

    def nodes(self) -> list[str]:
        return sorted(self._ips)


class Cluster:
    """Build with ``Cluster(seed=0)``; get components' clients with :meth:`client`."""

    def __init__(self, seed: int = 0, *, etcd: Etcd | Callable[[Clock], Etcd] | None = None,
                 trace_bootstrap: bool = False, start: bool = True) -> None:
        self.seed = seed
        self.clock = Clock()
        self.ids = IdGenerator(seed)
        self.trace = Trace()
        #: the one network every connection in the cluster is dialled through
        self.network = Network(self.clock, self.trace)
        self.ipam = NodeIPAM()
        if callable(etcd):  # a factory, e.g. etcd_server.connect(endpoint): it needs the clock
            etcd = etcd(self.clock)
        if etcd is None:  # $K8SBOOK_ETCD names a real etcd; otherwise the embedded store
            etcd = store_from_env(self.clock)
        #: the etcd member's store (for observers: chapters read its revision)
        self.etcd: Etcd = etcd if etcd is not None else MemoryEtcd(self.clock)
        etcd3.serve(self.network, self.etcd)
        self.apiserver = APIServer(self.clock, self.ids, self.network, seed=seed)
        #: the running components by instance name, for observers and ``k8sbook serve``
        self.components: dict[str, object] = {}
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
        return Client(instance, creds, network=self.network, server=self.apiserver.address,
                      clock=self.clock, jitter=self.ids.random)

    def service_account_client(self, instance: str, namespace: str, name: str,
                               creator: Client | None = None) -> Client:
        """A client for ``instance`` that authenticates as ``namespace/name``'s service
        account (what kube-controller-manager's ``--use-service-account-credentials`` and an
        add-on's pod do). The ServiceAccount is created if missing: through ``creator`` (a
        component's own client: the request is on the trace) or else by the apiserver's
        loopback client.

        Simplified: the token is an opaque string the model's authenticator knows (not a
        signed JWT with an audience and an expiry)."""
        sa = {"apiVersion": "v1", "kind": "ServiceAccount",
              "metadata": {"name": name, "namespace": namespace}}
        if creator is not None:
            try:
                uid = creator.create(sa)["metadata"]["uid"]
            except StatusError as err:
                if err.code != 409:
                    raise
                uid = creator.get("serviceaccounts", name, namespace)["metadata"]["uid"]
        else:
            resp = self.apiserver.handle(Request("create", "serviceaccounts", "", namespace,
                                                 body=sa, user=LOOPBACK_USER))
            if resp.code != 201 or resp.body is None:
                resp = self.apiserver.handle(Request("get", "serviceaccounts", "", namespace,
                                                     name, user=LOOPBACK_USER))
            uid = (resp.body or {}).get("metadata", {}).get("uid", "")
        token = f"sa-token/{namespace}/{name}/{uid}"
        self.apiserver.authn.add_token(token, service_account_user(namespace, name, uid))
        return self.client(instance, BearerToken(token))

    def admin(self) -> Client:
        """``kubectl`` with kubeadm's admin.conf identity."""
        return self.client("kubectl")

    # -- components of the node layer (kubelet, kube-proxy): factories go here ----------------
    def add_kubelet(self, name: str, *, kubelet_class: type[Kubelet] | None = None,
                    registry: Registry | None = None, **settings: Any) -> Kubelet:
        """A node: its machine (disk, CNI plugin, runc, containerd, all started; in
        :attr:`components` as ``machine/<name>``) and its kubelet (not started: call
        ``.start()``; in :attr:`components` as ``kubelet/<name>``).
        ``settings`` are the kubelet's (``cpu``, ``labels``, ``cluster_dns`` ...)."""
        machine = Machine(name, self.network, self.clock, self.ids, self.ipam.pod_cidr(name),
                          registry=registry)
        instance = f"kubelet/{name}"
        kubelet = (kubelet_class or Kubelet)(
            name, client=self.client(instance), network=self.network, clock=self.clock,
            ids=self.ids, pod_cidr=self.ipam.pod_cidr(name), node_ip=self.ipam.node_ip(name),
            seed=self.seed, filesystem=machine.filesystem, runtime=machine.runtime,
            **settings)
        self.components[instance] = kubelet
        self.components[f"machine/{name}"] = machine
        # until apiserver/kubelet_client.py dials port 10250 itself
        self.apiserver.kubelet_client.register(name, KUBELET_PORT, kubelet.server)
        return kubelet

    # -- end of node-layer factories ---------------------------------------------------------

    # -- components of the control plane (scheduler, controller managers, descheduler) -------

    # -- end of control-plane factories ------------------------------------------------------

    # -- add-ons (CoreDNS, ingress controller, metrics-server) --------------------------------

    # -- end of add-on factories -------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        self.clock.run_for(seconds)

    def settle(self, seconds: float = 1.0) -> None:
        """Let every immediately-due callback run (watch deliveries, queue workers)."""
        self.clock.run_for(seconds)
