"""The kubelet: the node agent that pulls its work from kube-apiserver and runs it.

Mirrors ``pkg/kubelet/kubelet.go`` (v1.35.0): the ``Kubelet`` struct that wires the managers
together, and its ``Run`` loops. Each part lives in the module named after its upstream
package: registration, NodeStatus and Lease in :mod:`.nodestatus`, pod workers in
:mod:`.pod_workers`, ``SyncPod`` against the CRI in :mod:`.kuberuntime`, the PLEG in
:mod:`.pleg`, probes in :mod:`.prober`, the status manager in :mod:`.status_manager`,
volumes (CSI, the service-account token) in :mod:`.volume_manager`, the server on 10250 in
:mod:`~k8sbook.node.kubelet.server`; what they share about a pod (``PodRecord``, ``ProbeState``) in :mod:`.types`.
Each manager receives the narrow things it uses (the client, the clock, the network, the CRI
client, other managers, small callables such as ``is_running``), as ``NewMainKubelet`` wires
them; none of them imports this module.

A kubelet receives what it uses: its node name, its API client (``system:node:<name>``),
the network, the clock, the id generator, its pod CIDR and node IP, the node's disk
(``filesystem``, shared with the container runtime as a real disk is) and its settings
(``KubeletConfiguration``). It reaches the container runtime only through the CRI socket,
CSI drivers only through their sockets, pods only through their IPs. Build one with
``Cluster.add_kubelet(name)``.

Simplified: no admission of pods by resources, no eviction manager, no static pods; the
back-off requeue jitter is drawn from a generator seeded by the cluster seed and node name.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from k8sbook.client.events import EventRecorder
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.network import Address, DialError, Listener, Network
from k8sbook.client.rest import Client
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.core import pki
from k8sbook.core.clock import EPOCH, Clock
from k8sbook.core.ids import IdGenerator
from k8sbook.core.status import StatusError
from k8sbook.node import dns
from k8sbook.node.container_runtime import ContainerRuntime
from k8sbook.node.cri import CRI_SOCKET, CRIClient, RPCError
from k8sbook.node.kubelet import metrics, nodestatus
from k8sbook.node.kubelet.backoff import Backoff
from k8sbook.node.kubelet.certificate import CertificateManager
from k8sbook.node.kubelet.config import (
    BACKOFF_PERIOD,
    CLUSTER_DNS,
    DEFAULT_CLUSTER_DOMAIN,
    KUBELET_PORT,
    KUBERNETES_SERVICE_HOST,
    KUBERNETES_SERVICE_PORT,
    LEASE_RENEW_INTERVAL,
    MAX_CONTAINER_BACKOFF,
    NODE_STATUS_UPDATE_FREQUENCY,
    PLEG_RELIST_PERIOD,
    RESOLV_CONF,
    ROOT_DIR,
)
from k8sbook.node.kubelet.kuberuntime import RuntimeManager
from k8sbook.node.kubelet.pleg import GenericPLEG
from k8sbook.node.kubelet.pod_workers import PodRecord, PodWorkers
from k8sbook.node.kubelet.prober import ProberManager
from k8sbook.node.kubelet.server import KubeletServer
from k8sbook.node.kubelet.status_manager import StatusManager
from k8sbook.node.kubelet.volume_manager import VolumeManager
from k8sbook.node.token_manager import TokenManager


class Kubelet:
    """One node's kubelet: ``cluster.add_kubelet("node-a").start()``."""

    def __init__(self, node_name: str, *, client: Client, network: Network, clock: Clock,
                 ids: IdGenerator, pod_cidr: str, node_ip: str, seed: int = 0,
                 filesystem: dict[str, str] | None = None,
                 runtime: ContainerRuntime | None = None,
                 cpu: str = "4", memory: str = "8Gi", pods: str = "110",
                 labels: dict[str, str] | None = None,
                 cluster_dns: list[str] | None = None,
                 cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
                 resolv_conf: str = RESOLV_CONF,
                 kubernetes_service: tuple[str, int] = (KUBERNETES_SERVICE_HOST,
                                                        KUBERNETES_SERVICE_PORT),
                 container_runtime_endpoint: str = CRI_SOCKET,
                 root_dir: str = ROOT_DIR, bootstrap: bool = False,
                 rotate_certificates: bool = True, server_tls_bootstrap: bool = False) -> None:
        self.node_name = node_name
        self.instance = f"kubelet/{node_name}"
        self.client = client
        self.network = network
        self.clock = clock
        self.pod_cidr = pod_cidr
        self.address = node_ip
        #: the node's disk (the kubelet writes pod directories under ``root_dir`` on it)
        self.filesystem = filesystem if filesystem is not None else {}
        #: the node's containerd, for chapters and tests to look at and to break; the
        #: kubelet itself only talks to it over ``container_runtime_endpoint``
        self.runtime = runtime
        self.cluster_dns = list(cluster_dns) if cluster_dns is not None else [CLUSTER_DNS]
        self.cluster_domain = cluster_domain
        self.resolv_conf = resolv_conf
        self.kubernetes_service = kubernetes_service
        self.root_dir = root_dir
        self.capacity = {"cpu": cpu, "memory": memory, "pods": pods}
        self.labels = {"kubernetes.io/hostname": node_name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", **(labels or {})}
        self.cri = CRIClient(self.instance, network, node_name, container_runtime_endpoint)
        self.recorder = EventRecorder(client, "kubelet", node_name)
        self.image_backoff = Backoff(BACKOFF_PERIOD, MAX_CONTAINER_BACKOFF)
        self.crash_backoff = Backoff(BACKOFF_PERIOD, MAX_CONTAINER_BACKOFF)
        #: images the kubelet learned of from its CRI calls (for ``status.images``)
        self.images: set[str] = set()
        self.records: dict[str, PodRecord] = {}  # pod key -> record
        self.queue = RateLimitingQueue(clock, f"kubelet/{node_name} pod workers")
        self.rand = random.Random(f"{seed}/{node_name}")
        self.tokens = TokenManager(client, clock, random.Random(f"{seed}/{node_name}/token"))
        #: one pending timer per periodic loop (lease, node status, PLEG)
        self._timers: dict[str, Any] = {}
        self.boot_id = ids.uid()
        self.machine_id = ids.uid().replace("-", "")
        self.running = False
        self.pod_informer = SharedIndexInformer(client, "pods",
                                                field_selector=f"spec.nodeName={node_name}")
        self.node_informer = SharedIndexInformer(client, "nodes",
                                                 field_selector=f"metadata.name={node_name}")
        # each manager receives what it uses (as ``NewMainKubelet`` wires them), not the
        # kubelet; the kubelet's own methods are passed late-bound, so that a subclass (or a
        # test) that replaces one changes what the managers call
        self.status_sync = nodestatus.NodeStatusSync(
            client=client, clock=clock, node_name=node_name, node_informer=self.node_informer,
            node_object=lambda: self.node_object(), node_status=lambda: self.node_status())
        self.lease = nodestatus.NodeLeaseController(
            client=client, clock=clock, node_name=node_name, node_informer=self.node_informer)
        self.prober = ProberManager(
            network=network, clock=clock, recorder=self.recorder, instance=self.instance,
            node_name=node_name, address=node_ip, records=self.records,
            resync=self.queue.add, running=self.is_running)
        self.status_manager = StatusManager(client=client, clock=clock, host_ip=node_ip)
        self.volumes = VolumeManager(
            instance=self.instance, node_name=node_name, network=network, client=client,
            clock=clock, recorder=self.recorder, tokens=self.tokens,
            filesystem=self.filesystem, root_dir=root_dir, records=self.records)
        self.runtime_manager = RuntimeManager(
            cri=self.cri, client=client, clock=clock, recorder=self.recorder,
            image_backoff=self.image_backoff, crash_backoff=self.crash_backoff,
            volumes=self.volumes, prober=self.prober, status_manager=self.status_manager,
            filesystem=self.filesystem, root_dir=root_dir,
            kubernetes_service=kubernetes_service, pod_dns_config=lambda pod: self.pod_dns_config(pod),
            records=self.records, images=self.images)
        self.workers = PodWorkers(
            clock=clock, queue=self.queue, instance=self.instance, rand=self.rand,
            pod_informer=self.pod_informer, records=self.records,
            runtime_manager=self.runtime_manager, status_manager=self.status_manager,
            running=self.is_running)
        self.pleg = GenericPLEG(cri=self.cri, records=self.records,
                                refresh=self.runtime_manager.refresh, wake=self.queue.add)
        self.server = KubeletServer(self)
        self.server_address = Address.tcp(node_ip, KUBELET_PORT)
        #: TLS bootstrapping (``--bootstrap-kubeconfig``): the client starts with a bootstrap
        #: token and the certificate manager gets the node its client certificate
        self.certificates = CertificateManager(
            client, clock, node_name, random.Random(f"{seed}/{node_name}/certificate"),
            filesystem=self.filesystem, rotate=rotate_certificates) if bootstrap else None
        #: ``serverTLSBootstrap``: no self-signed serving certificate; a second manager
        #: gets one through a ``kubernetes.io/kubelet-serving`` CSR, with the node's
        #: addresses (as the Node's status reports them) for SANs
        self._listener: Listener | None = None
        self.serving_certificates = CertificateManager(
            client, clock, node_name, random.Random(f"{seed}/{node_name}/serving-certificate"),
            filesystem=self.filesystem, rotate=rotate_certificates, kind="server",
            addresses=lambda: self.status_sync.node_status()["addresses"],
            on_install=self._serve_with) if server_tls_bootstrap else None

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> Kubelet:
        """Listen on 10250, register the Node, start the lease, status and PLEG loops and
        the pod informer; a bootstrapping kubelet first gets its client certificate
        (``LoadClientCert`` runs before anything else)."""
        self.running = True
        if self.certificates is not None and self.certificates.current is None:
            self.certificates.bootstrap(self._run)
            return self
        self._run()
        return self

    def _run(self) -> None:
        if not self.running:
            return
        self.network.add_host(self.node_name, self.address)  # the machine's DNS record
        serving = self.serving_certificates
        self._listener = self.network.listen(
            self.server_address, self.instance, self.server.serve_http, protocol="HTTPS",
            certificate=(self.server.serving_cert_issuer if serving is None else
                         pki.issuer_of(serving.current) if serving.current is not None else ""))
        self.status_sync.register()
        if serving is not None:
            serving.start()
        self.node_informer.run()
        self.pod_informer.add_event_handler(
            on_add=lambda p: self.workers.enqueue(p),
            on_update=self.workers.on_pod_update,
            on_delete=lambda p: self.workers.enqueue(getattr(p, "obj", p)))
        self.pod_informer.run()
        self.queue.run_worker(self.workers.sync)
        self._every(LEASE_RENEW_INTERVAL, self.lease.renew, "node lease", first=0.0)
        self._every(NODE_STATUS_UPDATE_FREQUENCY, self.status_sync.sync, "node status",
                    first=0.0)
        self._every(PLEG_RELIST_PERIOD, self.pleg.relist, "PLEG relist",
                    first=PLEG_RELIST_PERIOD)

    def _serve_with(self, cert: Any) -> None:
        """The serving manager has a new certificate: port 10250's ``GetCertificate`` returns
        it from the next handshake on, until it expires (the manager's ``Current`` returns no
        certificate past ``notAfter``, so handshakes fail again unless a renewal came)."""
        if self._listener is None:
            return
        self._listener.certificate = pki.issuer_of(cert)
        expiry = (cert.not_valid_after_utc - EPOCH).total_seconds()

        def expired() -> None:
            serving = self.serving_certificates
            if self._listener is not None and serving is not None and serving.current is cert:
                self._listener.certificate = ""
        self.clock.call_at(expiry + 1, expired, f"{self.instance} serving certificate expiry")

    def is_running(self) -> bool:
        """Whether the kubelet process runs (its managers' loops end when it stops)."""
        return self.running

    def stop(self) -> None:
        """The kubelet process stops: loops, watches and probes end; containers keep running."""
        self.running = False
        if self.certificates is not None:
            self.certificates.stop()
        if self.serving_certificates is not None:
            self.serving_certificates.stop()
        self.network.close(self.server_address)
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        self.workers.stop()
        self.prober.stop()
        self.pod_informer.stop()
        self.node_informer.stop()
        self.queue.shut_down()

    def _every(self, period: float, fn: Callable[[], None], label: str, first: float) -> None:
        def tick() -> None:
            if not self.running:
                return
            try:
                fn()
            except (DialError, StatusError, RPCError):
                pass  # the real loops log the error and try again next period
            self._timers[label] = self.clock.call_later(period, tick, f"{self.instance} {label}")
        self._timers[label] = self.clock.call_later(first, tick, f"{self.instance} {label}")

    # -- the Node (overridable: a kubelet with --cloud-provider=external changes both) -----
    def node_object(self) -> dict[str, Any]:
        return nodestatus.node_object(self)

    def node_status(self, heartbeat: str | None = None) -> dict[str, Any]:
        return nodestatus.node_status(self, heartbeat)

    # -- DNS -------------------------------------------------------------------------------
    def pod_dns_config(self, pod: dict[str, Any]) -> dns.DNSConfig:
        """``GetPodDNS``: what goes in the sandbox's ``DNSConfig`` (and so the container's
        ``/etc/resolv.conf``), from ``dnsPolicy``, ``clusterDNS``, ``clusterDomain`` and the
        node's own resolver file."""
        host = dns.parse_resolv_conf(self.filesystem.get(self.resolv_conf, ""))
        return dns.dns_config(pod, self.cluster_dns, self.cluster_domain, host=host)

    # -- volumes ---------------------------------------------------------------------------
    def register_csi_driver(self, driver: Any) -> None:
        """Plugin registration of a CSI driver (its name, or its node plugin object)."""
        self.volumes.register_csi_driver(driver if isinstance(driver, str) else driver.driver)

    @property
    def csi(self) -> dict[str, Any]:
        return self.volumes.csi

    # -- helpers for chapters and tests ----------------------------------------------------
    def set_app_healthy(self, namespace: str, pod: str, healthy: bool,
                        container: str | None = None) -> None:
        """Make a pod's application answer its probes with 200 (healthy) or 503 (a chapter's
        lever on the node's runtime, not something a kubelet does)."""
        if self.runtime is not None:
            self.runtime.set_healthy(namespace, pod, healthy, container)

    def resource_metrics(self) -> str:
        """The body of ``GET /metrics/resource`` (see :mod:`~k8sbook.node.kubelet.metrics`)."""
        return metrics.resource_metrics(self)

    def read_container_log(self, rec: PodRecord, container: str,
                           attempt: int | None = None) -> str:
        """The container's log file under ``/var/log/pods``, which the runtime writes (the
        current instance's, or that of ``attempt``)."""
        ns, name = rec.key.split("/", 1)
        n = rec.attempts.get(container, 0) if attempt is None else attempt
        path = f"/var/log/pods/{ns}_{name}_{rec.uid}/{container}/{n}.log"
        return self.filesystem.get(path, "")

    def record(self, namespace: str, name: str) -> PodRecord | None:
        return self.records.get(f"{namespace}/{name}")

    def container_id(self, namespace: str, pod: str, container: str) -> str:
        rec = self.record(namespace, pod)
        if rec is None or container not in rec.container_ids:
            raise KeyError(f"no container {container!r} of pod {namespace}/{pod} on "
                           f"{self.node_name}")
        return rec.container_ids[container]

    def api_status(self, pod: dict[str, Any], rec: PodRecord) -> dict[str, Any]:
        return self.status_manager.api_status(pod, rec)

    def backoff_key(self, pod: dict[str, Any], c: dict[str, Any]) -> str:
        return self.runtime_manager.backoff_key(pod, c)
