"""A model cluster: one clock, one etcd, one kube-apiserver, and clients for components.

Mirrors what ``kubeadm init`` leaves behind, minus the processes: an etcd member, a
kube-apiserver started against it (which creates the system namespaces, the default RBAC policy
and the ``kubernetes`` Service itself), the kubeadm ClusterRoleBinding that makes
``kubeadm:cluster-admins`` cluster administrators, and client identities for the components,
named as kubeadm names them (certificates with CN ``system:kube-scheduler``,
``system:kube-controller-manager``, ``system:node:<name>`` in O ``system:nodes``;
``kubernetes-admin`` in O ``kubeadm:cluster-admins`` for ``kubectl``).

Everything is deterministic for a given ``seed``.

This module is over 400 lines: it is the composition root, a few lines per ``add_*``
factory, and the chapters point readers at the wiring in one place.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from typing import Any

from k8sbook.addons import konnectivity
from k8sbook.addons.dns import CoreDNS
from k8sbook.addons.ingress import NAMESPACE as INGRESS_NAMESPACE
from k8sbook.addons.ingress import IngressController
from k8sbook.addons.metrics_server import METRIC_RESOLUTION, MetricsServer
from k8sbook.api.request import BearerToken, Request
from k8sbook.apiserver import rbac
from k8sbook.apiserver.authentication import (
    ClientCertificate,
    Credentials,
    component_certificate,
    node_certificate,
)
from k8sbook.apiserver.bootstrap import DEFAULT_TTL as BOOTSTRAP_TOKEN_TTL
from k8sbook.apiserver.bootstrap import KUBEADM_GROUP as KUBEADM_BOOTSTRAP_GROUP
from k8sbook.apiserver.bootstrap import token_secret as bootstrap_token_secret
from k8sbook.apiserver.egress_selector import configuration as egress_configuration
from k8sbook.apiserver.server import LOOPBACK_USER, APIServer
from k8sbook.apiserver.token import EXPIRATION_EXTENSION_SECONDS
from k8sbook.client.address import Address
from k8sbook.client.loadbalancer import LoadBalancer
from k8sbook.client.network import Network
from k8sbook.client.rest import Client
from k8sbook.controlplane.cloud import Interface as CloudProvider
from k8sbook.controlplane.cloud import ModelCloud
from k8sbook.controlplane.cloud_controller_manager import CloudControllerManager
from k8sbook.controlplane.controller_manager import DEFAULT_CONTROLLERS, KubeControllerManager
from k8sbook.controlplane.descheduler import DEFAULT_PLUGINS, Descheduler
from k8sbook.controlplane.scheduler import KubeScheduler, Profile
from k8sbook.core.clock import Clock
from k8sbook.core.ids import IdGenerator
from k8sbook.core.status import StatusError
from k8sbook.core.trace import Trace, component_of
from k8sbook.node.container_runtime import Registry
from k8sbook.node.kube_proxy import KubeProxy
from k8sbook.node.kubelet import Kubelet
from k8sbook.node.machine import Machine

#: kubeadm's default ``--cluster-cidr`` (``podSubnet``) is unset; the model uses the
#: common 10.244.0.0/16 (flannel's and kind's) with ``--node-cidr-mask-size=24``.
CLUSTER_CIDR = "10.244.0.0/16"
NODE_CIDR_MASK = 24
#: the machines' network: the control plane is 192.168.0.2, nodes from 192.168.0.10
NODE_NETWORK_FIRST = 10
MACHINE_NETWORK = "192.168.0.0"
from k8sbook.storage import etcd3
from k8sbook.storage.etcd import Etcd, MemoryEtcd
from k8sbook.storage.etcd_cluster import EtcdCluster
from k8sbook.storage.etcd_server import store_from_env

#: the control-plane endpoint of a highly available cluster (kubeadm's
#: ``controlPlaneEndpoint``): the load balancer's address
LOAD_BALANCER = Address.tcp("192.168.0.100", 6443)

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
        """The node's InternalIP: 192.168.0.10, .11, ... in the order nodes appear, and on
        into 192.168.1.0 ... past the 246th (the machines' network is a /16)."""
        if node not in self._ips:
            self._ips[node] = str(ipaddress.IPv4Address(MACHINE_NETWORK)
                                  + NODE_NETWORK_FIRST + len(self._ips))
        return self._ips[node]

    def nodes(self) -> list[str]:
        return sorted(self._ips)


class Cluster:
    """Build with ``Cluster(seed=0)``; get components' clients with :meth:`client`."""

    def __init__(self, seed: int = 0, *, etcd: Etcd | Callable[[Clock], Etcd] | None = None,
                 trace_bootstrap: bool = False, start: bool = True,
                 control_plane_nodes: int = 1, service_account_admission: bool = False,
                 clock: Clock | None = None) -> None:
        """``control_plane_nodes=3`` (or 5) builds kubeadm's highly available, stacked-etcd
        topology instead of one control-plane node: see :meth:`_highly_available`.
        ``service_account_admission`` turns on the apiserver's ServiceAccount admission
        plugin (on in a real cluster; pods then need their namespace's ``default``
        ServiceAccount, which the controller manager's ``serviceaccount`` controller makes:
        see :data:`~k8sbook.controlplane.controller_manager.ALL_CONTROLLERS`)."""
        self.seed = seed
        self.clock = clock if clock is not None else Clock()
        self.ids = IdGenerator(seed)
        self.trace = Trace()
        #: the one network every connection in the cluster is dialled through
        self.network = Network(self.clock, self.trace)
        self.ipam = NodeIPAM()
        #: the etcd cluster and every kube-apiserver (with one node: None and [apiserver])
        self.etcd_cluster: EtcdCluster | None = None
        self.load_balancer: LoadBalancer | None = None
        self.apiservers: list[APIServer] = []
        if control_plane_nodes > 1:
            if etcd is not None:
                raise ValueError("control_plane_nodes > 1 runs its own etcd cluster: "
                                 "give no etcd")
            self._highly_available(control_plane_nodes, start, trace_bootstrap,
                                   service_account_admission)
            return
        if callable(etcd):  # a factory, e.g. etcd_server.connect(endpoint): it needs the clock
            etcd = etcd(self.clock)
        if etcd is None:  # $K8SBOOK_ETCD names a real etcd; otherwise the embedded store
            etcd = store_from_env(self.clock)
        #: the etcd member's store (for observers: chapters read its revision)
        self.etcd: Etcd = etcd if etcd is not None else MemoryEtcd(self.clock)
        etcd3.serve(self.network, self.etcd)
        self.apiserver = APIServer(self.clock, self.ids, self.network, seed=seed)
        self.apiservers = [self.apiserver]
        self.apiserver.service_account_admission.enabled = service_account_admission
        #: the running components by instance name, for observers and ``k8sbook serve``
        self.components: dict[str, object] = {}
        if start:
            self.trace.enabled = trace_bootstrap
            self.apiserver.start()
            self._kubeadm_objects()
            self.trace.enabled = True

    def _highly_available(self, nodes: int, start: bool, trace_bootstrap: bool,
                          service_account_admission: bool = False) -> None:
        """kubeadm's stacked topology (https://kubernetes.io/docs/setup/production-environment/
        tools/kubeadm/ha-topology/): control-plane nodes ``cp-1`` ... on 192.168.0.2 ...,
        each with an etcd member and a kube-apiserver (``--etcd-servers`` lists its local
        member first, then the others), behind a load balancer on :data:`LOAD_BALANCER` that
        every client dials; the apiservers publish identity Leases and reconcile the
        ``kubernetes`` endpoints (``--endpoint-reconciler-type=lease``)."""
        names = [f"cp-{i + 1}" for i in range(nodes)]
        hosts = [f"192.168.0.{i + 2}" for i in range(nodes)]
        self.etcd_cluster = EtcdCluster(self.network, self.clock,
                                        random.Random(f"{self.seed}/etcd"), names, hosts)
        self.etcd = self.etcd_cluster.members[names[0]].store
        for i, (name, host) in enumerate(zip(names, hosts, strict=True)):
            endpoints = self.etcd_cluster.endpoints
            self.apiservers.append(APIServer(
                self.clock, self.ids, self.network, advertise_address=host, seed=self.seed,
                etcd_servers=[endpoints[i], *endpoints[:i], *endpoints[i + 1:]],
                instance=f"kube-apiserver/{name}", hostname=name,
                endpoint_reconciler_type="lease", identity_lease=True))
        for apiserver in self.apiservers:
            apiserver.service_account_admission.enabled = service_account_admission
        self.apiserver = self.apiservers[0]
        self.components = {}
        self.load_balancer = LoadBalancer(self.network, self.clock, LOAD_BALANCER,
                                          [a.address for a in self.apiservers])
        if start:
            self.trace.enabled = trace_bootstrap
            self.etcd_cluster.start()
            self.etcd_cluster.wait_for_leader()
            for apiserver in self.apiservers:
                apiserver.start()
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
        # kubeadm's bootstrap-token phase: bootstrap tokens may create CSRs, which are
        # auto-approved for them (nodeclient) and for nodes renewing (selfnodeclient); added
        # to the model later than the rest, so their ids come from the side stream
        tokens = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                  "name": KUBEADM_BOOTSTRAP_GROUP}
        nodes = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                 "name": "system:nodes"}
        csr = "system:certificates.k8s.io:certificatesigningrequests:"
        with self.ids.side_stream():
            for binding in (
                rbac.cluster_role_binding("kubeadm:kubelet-bootstrap",
                                          "system:node-bootstrapper", [tokens]),
                rbac.cluster_role_binding("kubeadm:node-autoapprove-bootstrap",
                                          csr + "nodeclient", [tokens]),
                rbac.cluster_role_binding("kubeadm:node-autoapprove-certificate-rotation",
                                          csr + "selfnodeclient", [nodes]),
            ):
                self.apiserver.handle(Request("create", "clusterrolebindings",
                                              "rbac.authorization.k8s.io", body=binding,
                                              user=LOOPBACK_USER))

    def create_bootstrap_token(self, ttl: float = BOOTSTRAP_TOKEN_TTL) -> str:
        """``kubeadm token create``: a bootstrap token ``<id>.<secret>`` whose Secret
        ``kube-system/bootstrap-token-<id>`` (written by kubectl's admin identity, as kubeadm
        writes it with ``admin.conf``) expires after ``ttl`` seconds."""
        token_id, secret = self.ids.suffix(6), self.ids.suffix(16)
        self.admin().create(bootstrap_token_secret(
            token_id, secret, expiration=self.clock.timestamp(self.clock.now() + ttl)))
        return f"{token_id}.{secret}"

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
        server = LOAD_BALANCER if self.load_balancer is not None else self.apiserver.address
        return Client(instance, creds, network=self.network, server=server,
                      clock=self.clock, jitter=self.ids.random)

    def service_account_client(self, instance: str, namespace: str, name: str,
                               creator: Client | None = None) -> Client:
        """A client for ``instance`` that authenticates as ``namespace/name``'s service
        account (what kube-controller-manager's ``--use-service-account-credentials`` and an
        add-on's pod do). The ServiceAccount is created if missing: through ``creator`` (a
        component's own client: the request is on the trace) or else by the apiserver's
        loopback client.

        The token is a service-account JWT signed by the apiserver's TokenRequest code
        (:meth:`k8sbook.apiserver.token.TokenREST.issue`), unbound, for the apiserver's
        audiences. Simplified: upstream's client builders ask the TokenRequest API and renew
        the token before it expires (``DynamicControllerClientBuilder``); the model signs a
        token valid for a year (``ExpirationExtensionSeconds``) once, its ``jti`` drawn from a
        side stream of ids so that the ids of everything else stay as they were."""
        sa = {"apiVersion": "v1", "kind": "ServiceAccount",
              "metadata": {"name": name, "namespace": namespace}}
        if creator is not None:
            try:
                creator.create(sa)
            except StatusError as err:
                if err.code != 409:
                    raise
                creator.get("serviceaccounts", name, namespace)
        else:
            self.apiserver.handle(Request("create", "serviceaccounts", "", namespace, body=sa,
                                          user=LOOPBACK_USER))
        account = self.apiserver.storage.get(f"/registry/serviceaccounts/{namespace}/{name}")
        assert account is not None
        with self.ids.side_stream():
            token = self.apiserver.tokens.issue(account,
                                                expiration_seconds=EXPIRATION_EXTENSION_SECONDS)
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
        ``settings`` are the kubelet's (``cpu``, ``labels``, ``cluster_dns`` ...);
        ``bootstrap=True`` makes it a TLS-bootstrapping kubelet, started with a fresh
        bootstrap token (:meth:`create_bootstrap_token`) rather than a certificate."""
        machine = Machine(name, self.network, self.clock, self.ids, self.ipam.pod_cidr(name),
                          registry=registry)
        instance = f"kubelet/{name}"
        # TLS bootstrapping (opt-in): the kubelet starts with a bootstrap token instead of
        # kubeadm's pre-made client certificate, and gets its certificate through a CSR
        credentials = BearerToken(self.create_bootstrap_token()) \
            if settings.get("bootstrap") else None
        kubelet = (kubelet_class or Kubelet)(
            name, client=self.client(instance, credentials), network=self.network, clock=self.clock,
            ids=self.ids, pod_cidr=self.ipam.pod_cidr(name), node_ip=self.ipam.node_ip(name),
            seed=self.seed, filesystem=machine.filesystem, runtime=machine.runtime,
            **settings)
        self.components[instance] = kubelet
        self.components[f"machine/{name}"] = machine
        return kubelet

    # -- end of node-layer factories ---------------------------------------------------------

    # -- components of the control plane (scheduler, controller managers, descheduler) -------
    def leader_identity(self, instance: str) -> str:
        """``<hostname>_<uuid>``, the identity a component leader-elects under
        (``os.Hostname() + "_" + string(uuid.NewUUID())`` in its ``app`` package)."""
        host = instance.split("/", 1)[1] if "/" in instance else "control-plane"
        return f"{host}_{self.ids.uid()}"

    def add_scheduler(self, instance: str = "kube-scheduler/cp-1", *,
                      profile: Profile | None = None,
                      leader_elect: bool = True) -> KubeScheduler:
        """A kube-scheduler with kubeadm's ``system:kube-scheduler`` certificate."""
        sched = KubeScheduler(self.client(instance), self.clock,
                              identity=self.leader_identity(instance), random=self.ids.random,
                              profile=profile, leader_elect=leader_elect)
        self.components[instance] = sched
        return sched

    def add_controller_manager(self, instance: str = "kube-controller-manager/cp-1",
                               controllers: tuple[str, ...] = DEFAULT_CONTROLLERS) -> \
            KubeControllerManager:
        """A kube-controller-manager replica; its controllers get service-account clients
        (``--use-service-account-credentials``), the ServiceAccounts created by its own
        client."""
        client = self.client(instance)

        def client_for_service_account(name: str) -> Client:
            return self.service_account_client(instance, "kube-system", name, creator=client)

        kcm = KubeControllerManager(client, self.clock, identity=self.leader_identity(instance),
                                    client_for_service_account=client_for_service_account,
                                    controllers=controllers)
        self.components[instance] = kcm
        return kcm

    def add_cloud_controller_manager(self, instance: str = "cloud-controller-manager/cp-1", *,
                                     cloud: CloudProvider | None = None,
                                     cluster_name: str = "kubernetes") -> \
            CloudControllerManager:
        """A cloud-controller-manager as the ServiceAccount
        ``kube-system/cloud-controller-manager``, with the ``model`` provider (which dials the
        cloud API through :attr:`network`) unless ``cloud`` is given."""
        client = self.service_account_client(instance, "kube-system",
                                             "cloud-controller-manager")
        provider = cloud if cloud is not None else ModelCloud(self.network, instance)
        ccm = CloudControllerManager(client, self.clock, provider,
                                     identity=self.leader_identity(instance),
                                     cluster_name=cluster_name)
        self.components[instance] = ccm
        return ccm

    def add_descheduler(self, instance: str = "descheduler", *, interval: float = 300.0,
                        plugins: tuple[str, ...] = DEFAULT_PLUGINS) -> Descheduler:
        """The descheduler, as the ServiceAccount ``kube-system/descheduler-sa``."""
        client = self.service_account_client(instance, "kube-system", "descheduler-sa")
        desched = Descheduler(client, self.clock, interval=interval, plugins=plugins)
        self.components[instance] = desched
        return desched

    # -- end of control-plane factories ------------------------------------------------------

    # -- add-ons (CoreDNS, ingress controller, metrics-server) --------------------------------

    # kube-proxy is a node component; its factory lives here with the other networking parts
    def add_kube_proxy(self, node: str, *, node_ip: str | None = None, mode: str = "iptables",
                       cluster_cidr: str = CLUSTER_CIDR, service_cidr: str = "10.96.0.0/12",
                       start: bool = True) -> KubeProxy:
        """kube-proxy on ``node`` (as ``system:kube-proxy``); its rules become the node's
        translator in the network. ``node_ip`` defaults to the address the node's hostname
        resolves to (its kubelet registers it)."""
        instance = f"kube-proxy/{node}"
        ip = node_ip or self.network.lookup(node) or self.ipam.node_ip(node)
        proxy = KubeProxy(self.client(instance), self.network, node, node_ip=ip, mode=mode,
                          cluster_cidr=cluster_cidr, service_cidr=service_cidr,
                          rng=random.Random(f"{self.seed}/{instance}"))
        self.components[instance] = proxy
        return proxy.start() if start else proxy

    def add_coredns(self, pod_name: str, pod_ip: str, *, upstream: dict[str, str] | None = None,
                    start: bool = True) -> CoreDNS:
        """The CoreDNS process of pod ``kube-system/<pod_name>``, as ``kube-system:coredns``,
        listening on ``<pod_ip>:53/UDP``."""
        instance = f"coredns/{pod_name}"
        client = self.service_account_client(instance, "kube-system", "coredns")
        server = CoreDNS(client, self.network, pod_name, pod_ip, upstream=upstream)
        self.components[instance] = server
        return server.start() if start else server

    def add_ingress_controller(self, *, address: str,
                               pod_name: str = "ingress-nginx-controller",
                               start: bool = True) -> IngressController:
        """The ingress-nginx controller (as ``ingress-nginx:ingress-nginx``) listening on
        ``address`` :80 and :443. Its RBAC and IngressClass come from
        :func:`k8sbook.addons.ingress.install`."""
        instance = f"ingress-controller/{pod_name}"
        client = self.service_account_client(instance, INGRESS_NAMESPACE, "ingress-nginx")
        ctrl = IngressController(client, self.network, address=address, pod_name=pod_name)
        self.components[instance] = ctrl
        return ctrl.start() if start else ctrl

    def add_metrics_server(self, pod_ip: str, *, pod_name: str = "metrics-server-0",
                           metric_resolution: float = METRIC_RESOLUTION,
                           start: bool = True) -> MetricsServer:
        """metrics-server (as ``kube-system:metrics-server``) in pod ``pod_name``, serving on
        ``<pod_ip>:10250``. The manifest's objects come from
        :func:`k8sbook.addons.metrics_server_manifests.manifests`."""
        instance = f"metrics-server/{pod_name}"
        client = self.service_account_client(instance, "kube-system", "metrics-server")
        server = MetricsServer(client, self.network, pod_ip=pod_ip, instance=instance,
                               metric_resolution=metric_resolution)
        self.components[instance] = server
        return server.start() if start else server

    def add_konnectivity(self, nodes: list[str] | None = None) -> \
            konnectivity.KonnectivityServer:
        """Konnectivity as set up in :mod:`k8sbook.addons.konnectivity`: the server, the egress
        configuration, an agent on each of ``nodes`` (default: all) with a one-year token."""
        for obj in konnectivity.manifests():
            self.admin().create(obj)
        server = konnectivity.KonnectivityServer(self.client(
            "konnectivity-server", ClientCertificate(konnectivity.SERVER_USER)),
            self.network).start()
        self.components["konnectivity-server"] = server
        self.apiserver.egress.configure(egress_configuration())
        account = self.admin().get("serviceaccounts", konnectivity.AGENT_SERVICE_ACCOUNT,
                                   konnectivity.AGENT_NAMESPACE)
        for node in nodes if nodes is not None else self.ipam.nodes():
            token = self.apiserver.tokens.issue(
                account, expiration_seconds=EXPIRATION_EXTENSION_SECONDS,
                audiences=(konnectivity.AUDIENCE,))
            agent = konnectivity.KonnectivityAgent(
                f"konnectivity-agent/{node}", self.network, self.clock, node=node,
                node_ip=self.ipam.node_ip(node), token=token,
                server=Address.tcp(server.host, konnectivity.AGENT_PORT))
            self.components[agent.instance] = agent.start()
        return server

    # -- end of add-on factories -------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        self.clock.run_for(seconds)

    def settle(self, seconds: float = 1.0) -> None:
        """Let every immediately-due callback run (watch deliveries, queue workers)."""
        self.clock.run_for(seconds)
