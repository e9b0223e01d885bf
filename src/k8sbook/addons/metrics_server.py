"""metrics-server: scrapes every kubelet and serves ``metrics.k8s.io`` through the aggregator.

Mirrors kubernetes-sigs/metrics-server (v0.6 and later), trimmed to pod metrics:

* **Scraping** (``pkg/scraper``): every ``--metric-resolution`` (the code's default is 60 s;
  the project's released manifest, ``components.yaml`` of v0.7/v0.8, passes ``15s``, the
  model's default here) it dials each Node it knows at the address of the first type in
  ``--kubelet-preferred-address-types`` the Node has (the manifest passes
  ``InternalIP,ExternalIP,Hostname``) and the port the Node reports
  (``--kubelet-use-node-status-port``: ``status.daemonEndpoints.kubeletEndpoint.Port``,
  10250), and GETs ``/metrics/resource`` with its ServiceAccount token
  (``kube-system/metrics-server``) within ``--kubelet-request-timeout`` (10 s). The kubelet
  checks the token with a TokenReview and authorizes ``get`` on ``nodes/metrics`` with a
  SubjectAccessReview. A failed dial is logged for that node (``Failed to scrape node``)
  and the others are scraped as usual.
* **Storage** (``pkg/storage``): only the last two samples of each container are kept; CPU
  usage is the rate between them and ``window`` is the time between them, so a pod shows up
  only after two scrapes. Memory is the newest working-set sample.
* **Serving** (``pkg/api``, built on ``k8s.io/apiserver``): it listens on its pod IP,
  ``--secure-port=10250`` (the manifest's container port ``https``, the target of the
  Service's port 443), and serves ``PodMetrics`` and
  ``PodMetricsList`` of ``metrics.k8s.io/v1beta1``. Requests arrive from kube-apiserver's
  aggregator: a client certificate signed by the front-proxy CA with an allowed name
  (``front-proxy-client``) makes metrics-server trust the ``X-Remote-User`` and
  ``X-Remote-Group`` headers (``--requestheader-*``, read from the ConfigMap
  ``kube-system/extension-apiserver-authentication``); it then asks kube-apiserver whether that
  user may do this with a SubjectAccessReview (delegated authorization). With no
  ``--tls-cert-file`` it serves a self-signed certificate made at start-up, whose CA is
  ``localhost-ca@<unix time>`` (``MaybeDefaultWithSelfSignedCerts("localhost", ...)`` and
  client-go's ``GenerateSelfSignedCertKeyWithFixtures``): no cluster CA vouches for it, which
  is why the manifest's APIService sets ``insecureSkipTLSVerify: true``.
* Nodes and Pods come from informers (LIST + WATCH as ``system:serviceaccount:kube-system:
  metrics-server``).

Simplified: ``NodeMetrics`` (what ``kubectl top nodes`` reads) are the sums of the node's pods'
container samples, since the model's kubelet reports no node-level counters
(``node_cpu_usage_seconds_total``); a node is listed once it has been scraped twice. No label
selectors on lists; no authorization cache (the real
delegating authorizer caches answers for 10 s); the kubelet's serving certificate is not
verified (as with ``--kubelet-insecure-tls``); the extension ConfigMap is not read (its
values are kubeadm's, set as constants in :mod:`k8sbook.apiserver.aggregator`).

What ``components.yaml`` creates (RBAC, Service, the pod) and its flags are in
:mod:`k8sbook.addons.metrics_server_manifests`; every name there is importable from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from k8sbook.addons.metrics_server_manifests import (
    CODE_DEFAULT_METRIC_RESOLUTION,
    GROUP,
    METRIC_RESOLUTION,
    NAME,
    NAMESPACE,
    PREFERRED_ADDRESS_TYPES,
    SECURE_PORT,
    VERSION,
    delegation_roles,
    go_duration,
    manifests,
    pod,
)
from k8sbook.api.request import CLUSTER_CA, ClientCertificate, Credentials
from k8sbook.apiserver.aggregator import (
    ALLOWED_NAMES,
    FRONT_PROXY_CA,
    GROUP_HEADER,
    USERNAME_HEADER,
)
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.network import Address, DialError, Network
from k8sbook.client.rest import Client
from k8sbook.core.clock import EPOCH, Clock
from k8sbook.node.kubelet import KUBELET_PORT

__all__ = ["CODE_DEFAULT_METRIC_RESOLUTION", "GROUP", "KUBELET_REQUEST_TIMEOUT",
           "METRIC_RESOLUTION", "NAME", "NAMESPACE", "PREFERRED_ADDRESS_TYPES", "SECURE_PORT",
           "VERSION", "MetricsServer", "Sample", "cpu_quantity", "delegation_roles",
           "discovery", "go_duration", "manifests", "memory_quantity",
           "parse_resource_metrics", "pod"]

#: ``--kubelet-request-timeout`` default
KUBELET_REQUEST_TIMEOUT = 10.0
SCRAPE_PROTOCOL = "HTTPS (ServiceAccount token), Prometheus text"
_SAMPLE = re.compile(r'^(\w+)\{container="([^"]*)",namespace="([^"]*)",pod="([^"]*)"\} '
                     r"(\S+) (\d+)$")


@dataclass(frozen=True)
class Sample:
    cpu_seconds: float
    memory_bytes: int
    at: float  # seconds of virtual time


def cpu_quantity(nanocores: int) -> str:
    """``resource.NewScaledQuantity(n, -9)`` printed canonically: 5m, 250m, 1, 1500m, 42n."""
    for suffix, factor in (("", 10**9), ("m", 10**6), ("u", 10**3), ("n", 1)):
        if nanocores % factor == 0:
            return f"{nanocores // factor}{suffix}"
    return f"{nanocores}n"  # unreachable: factor 1 always divides


def memory_quantity(num_bytes: int) -> str:
    """``resource.NewQuantity(b, BinarySI)`` printed canonically: 8Mi, 1536Ki, 1000."""
    for suffix, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if num_bytes and num_bytes % factor == 0:
            return f"{num_bytes // factor}{suffix}"
    return str(num_bytes)


def parse_resource_metrics(text: str) -> dict[tuple[str, str, str], dict[str, float]]:
    """Parse ``/metrics/resource`` into ``(namespace, pod, container) -> {name: value}``;
    the sample timestamp (ms) is kept under ``"timestamp_ms"``."""
    out: dict[tuple[str, str, str], dict[str, float]] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, container, ns, pod, value, stamp = m.groups()
        entry = out.setdefault((ns, pod, container), {})
        entry[name] = float(value)
        entry["timestamp_ms"] = float(stamp)
    return out


class MetricsServer:
    """One replica of metrics-server in kube-system. Build it with
    ``Cluster.add_metrics_server(pod_ip)``, or ``MetricsServer(client, network, pod_ip=...)``
    with a client authenticated as the ServiceAccount ``kube-system/metrics-server``."""

    def __init__(self, client: Client, network: Network, *, pod_ip: str,
                 instance: str = "metrics-server/metrics-server-0",
                 metric_resolution: float = METRIC_RESOLUTION,
                 preferred_address_types: tuple[str, ...] = PREFERRED_ADDRESS_TYPES,
                 secure_port: int = SECURE_PORT) -> None:
        self.client = client
        self.network = network
        self.instance = instance
        self.clock: Clock = client.clock
        self.metric_resolution = metric_resolution
        self.preferred_address_types = preferred_address_types
        self.address = Address.tcp(pod_ip, secure_port)
        #: the ServiceAccount token it presents to kubelets
        self.token: Credentials = client.credentials
        self.nodes = SharedIndexInformer(self.client, "nodes")
        self.pods = SharedIndexInformer(self.client, "pods")
        #: (namespace, pod, container) -> the last two samples, oldest first
        self.samples: dict[tuple[str, str, str], list[Sample]] = {}
        #: (time, node, HTTP status or the dial error) of every scrape, for the timeline
        self.scrapes: list[tuple[float, str, str]] = []
        self.running = False
        self._timer: Any = None
        #: the self-signed CA of its serving certificate, named when the process starts
        self.serving_ca = ""

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> MetricsServer:
        self.running = True
        self.serving_ca = f"localhost-ca@{int(EPOCH.timestamp() + self.clock.now())}"
        self.nodes.run()
        self.pods.run()
        self.network.listen(self.address, self.instance, self.serve_http, protocol="HTTPS",
                            certificate=self.serving_ca)
        self._timer = self.clock.call_soon(self._tick, "metrics-server scrape")
        return self

    def stop(self) -> None:
        """The process ends: no more scrapes, its port closes, its watches stop."""
        self.running = False
        self.network.close(self.address)
        self.nodes.stop()
        self.pods.stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- scraping --------------------------------------------------------------------------
    def _tick(self) -> None:
        if not self.running:
            return
        self.scrape()
        self._timer = self.clock.call_later(self.metric_resolution, self._tick,
                                            "metrics-server scrape")

    def kubelet_address(self, node: dict[str, Any]) -> Address:
        """Where to reach a Node's kubelet: its first address of a preferred type, and the
        port it reports in ``status.daemonEndpoints``."""
        status = node.get("status", {})
        addrs: dict[str, str] = {}
        for a in status.get("addresses", []):
            addrs.setdefault(a["type"], a["address"])
        host = next((addrs[t] for t in self.preferred_address_types if t in addrs),
                    node["metadata"]["name"])
        port = (status.get("daemonEndpoints", {}).get("kubeletEndpoint", {})
                .get("Port") or KUBELET_PORT)
        return Address.tcp(host, int(port))

    def scrape(self) -> None:
        """One scrape of every known node's ``/metrics/resource``."""
        path = "/metrics/resource"
        for node in sorted(self.nodes.lister(), key=lambda n: n["metadata"]["name"]):
            name = node["metadata"]["name"]
            try:
                resp: HTTPResponse = self.network.dial(
                    self.instance, self.kubelet_address(node),
                    HTTPRequest("GET", path, credentials=self.token), protocol=SCRAPE_PROTOCOL,
                    verb="GET", resource=path, result=lambda r: r.result(),
                    timeout=KUBELET_REQUEST_TIMEOUT)
            except DialError as err:
                self.scrapes.append((self.clock.now(), name, str(err)))
                continue
            self.scrapes.append((self.clock.now(), name, str(resp.status)))
            if resp.status != 200:
                continue
            for key, values in parse_resource_metrics(resp.body["text"]).items():
                sample = Sample(values.get("container_cpu_usage_seconds_total", 0.0),
                                int(values.get("container_memory_working_set_bytes", 0)),
                                self.clock.now())
                kept = self.samples.setdefault(key, [])
                kept.append(sample)
                del kept[:-2]

    # -- the API ---------------------------------------------------------------------------
    def pod_metrics(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """``PodMetrics`` for one pod, or ``None`` until every container has two samples, or
        once the node's latest scrape no longer had it (the container stopped)."""
        meta = pod["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        containers = []
        stamps: list[tuple[float, float]] = []
        node = pod["spec"].get("nodeName", "")
        last = next((t for t, n, r in reversed(self.scrapes) if n == node and r == "200"), None)
        for c in pod["spec"].get("containers", []):
            kept = self.samples.get((ns, name, c["name"]), [])
            if len(kept) < 2 or kept[1].at != last:
                return None  # not in the node's latest scrape: the pod's storage is pruned
            old, new = kept
            window = new.at - old.at
            rate = max(new.cpu_seconds - old.cpu_seconds, 0.0) / window
            containers.append({"name": c["name"],
                               "usage": {"cpu": cpu_quantity(round(rate * 1e9)),
                                         "memory": memory_quantity(new.memory_bytes)}})
            stamps.append((new.at, window))
        at, window = max(stamps)
        out_meta: dict[str, Any] = {"name": name, "namespace": ns,
                                    "creationTimestamp": self.clock.timestamp()}
        if meta.get("labels"):
            out_meta["labels"] = dict(meta["labels"])
        return {"kind": "PodMetrics", "apiVersion": f"{GROUP}/{VERSION}", "metadata": out_meta,
                "timestamp": self.clock.timestamp(at), "window": go_duration(window),
                "containers": containers}

    def node_metrics(self, node: str) -> dict[str, Any] | None:
        """``NodeMetrics``: the sums of the node's pods' container usage, once the node has
        been scraped twice."""
        stamps = [t for t, n, result in self.scrapes if n == node and result == "200"][-2:]
        if len(stamps) < 2:
            return None
        cpu, mem = 0.0, 0
        for p in self.pods.lister():
            if p["spec"].get("nodeName") != node:
                continue
            meta = p["metadata"]
            for c in p["spec"].get("containers", []):
                kept = self.samples.get((meta.get("namespace", ""), meta["name"], c["name"]), [])
                if len(kept) == 2 and kept[1].at == stamps[1]:
                    cpu += max(kept[1].cpu_seconds - kept[0].cpu_seconds, 0.0) / \
                        (kept[1].at - kept[0].at)
                    mem += kept[1].memory_bytes
        return {"kind": "NodeMetrics", "apiVersion": f"{GROUP}/{VERSION}",
                "metadata": {"name": node, "creationTimestamp": self.clock.timestamp()},
                "timestamp": self.clock.timestamp(stamps[1]),
                "window": go_duration(stamps[1] - stamps[0]),
                "usage": {"cpu": cpu_quantity(round(cpu * 1e9)), "memory": memory_quantity(mem)}}

    def _serve_nodes(self, name: str) -> tuple[int, dict[str, Any]]:
        names = sorted(n["metadata"]["name"] for n in self.nodes.lister())
        if name:
            found = self.node_metrics(name) if name in names else None
            if found is None:
                return 404, _status(404, "NotFound", f'nodemetrics.{GROUP} "{name}" not found',
                                    details={"name": name, "group": GROUP,
                                             "kind": "nodemetrics"})
            return 200, found
        items = [m for m in (self.node_metrics(n) for n in names) if m is not None]
        return 200, {"kind": "NodeMetricsList", "apiVersion": f"{GROUP}/{VERSION}",
                     "metadata": {}, "items": items}

    def serve_http(self, req: HTTPRequest) -> HTTPResponse:
        """The handler on :10250 (what the aggregator's proxy dials)."""
        headers: dict[str, Any] = {}
        if req.header(USERNAME_HEADER):
            headers[USERNAME_HEADER] = req.header(USERNAME_HEADER)[0]
        headers[GROUP_HEADER] = req.header(GROUP_HEADER)
        code, body = self.serve(req.method, req.path.split("?", 1)[0], req.credentials,
                                headers, req.params)
        return HTTPResponse(code, body)

    def _allowed_path(self, user: str, groups: list[str], path: str) -> bool:
        sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "metadata": {}, "spec": {"user": user, "groups": groups,
                                        "nonResourceAttributes": {"path": path,
                                                                  "verb": "get"}}}
        return bool(self.client.create(sar).get("status", {}).get("allowed"))

    def serve(self, method: str, path: str, credentials: Any, headers: dict[str, Any],
              params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Serve one HTTPS request; returns (HTTP status, body)."""
        # authentication: request headers from a trusted front proxy, else a client cert
        if isinstance(credentials, ClientCertificate) and credentials.issuer == FRONT_PROXY_CA \
                and credentials.common_name in ALLOWED_NAMES and headers.get(USERNAME_HEADER):
            user = str(headers[USERNAME_HEADER])
            groups = [str(g) for g in headers.get(GROUP_HEADER, [])]
        elif isinstance(credentials, ClientCertificate) and credentials.issuer == CLUSTER_CA:
            user, groups = credentials.common_name, [*credentials.organizations,
                                                     "system:authenticated"]
        else:
            return 401, _status(401, "Unauthorized", "Unauthorized")
        parts = path.strip("/").split("/")
        if parts[:3] != ["apis", GROUP, VERSION]:
            return 404, _status(404, "NotFound", "the server could not find the requested "
                                                 "resource")
        rest = parts[3:]
        if not rest and method == "GET":
            # discovery (what the aggregator's availability check GETs); the delegating
            # authorizer always allows the group system:masters (``AlwaysAllowGroups``)
            if "system:masters" not in groups and not self._allowed_path(user, groups, path):
                return 403, _status(403, "Forbidden", f'forbidden: User "{user}" cannot get '
                                                      f'path "{path}"')
            return 200, discovery()
        ns = ""
        if len(rest) >= 2 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or rest[0] not in ("pods", "nodes") or len(rest) > 2 or \
                (rest[0] == "nodes" and ns):
            return 404, _status(404, "NotFound", "the server could not find the requested "
                                                 "resource")
        resource, name = rest[0], rest[1] if len(rest) == 2 else ""
        verb = "get" if name else "list"
        if method != "GET":
            return 405, _status(405, "MethodNotAllowed",
                                f"{method} is not supported on {GROUP} pods")
        # delegated authorization: ask kube-apiserver
        sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "metadata": {},
               "spec": {"user": user, "groups": groups,
                        "resourceAttributes": {"verb": verb, "group": GROUP, "version": VERSION,
                                               "resource": resource, "namespace": ns,
                                               "name": name}}}
        review = self.client.create(sar)
        if not review.get("status", {}).get("allowed"):
            what = f'{resource}.{GROUP} "{name}"' if name else f"{resource}.{GROUP}"
            scope = f' in the namespace "{ns}"' if ns else " at the cluster scope"
            return 403, _status(403, "Forbidden",
                                f'{what} is forbidden: User "{user}" cannot {verb} resource '
                                f'"{resource}" in API group "{GROUP}"{scope}',
                                details={"name": name, "group": GROUP, "kind": resource}
                                if name else {"group": GROUP, "kind": resource})
        if resource == "nodes":
            return self._serve_nodes(name)
        pods = sorted(self.pods.lister(ns or None),
                      key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"]))
        if name:
            pod = next((p for p in pods if p["metadata"]["name"] == name), None)
            found = self.pod_metrics(pod) if pod is not None else None
            if found is None:
                return 404, _status(404, "NotFound", f'podmetrics.{GROUP} "{name}" not found',
                                    details={"name": name, "group": GROUP,
                                             "kind": "podmetrics"})
            return 200, found
        items = [m for m in (self.pod_metrics(p) for p in pods) if m is not None]
        return 200, {"kind": "PodMetricsList", "apiVersion": f"{GROUP}/{VERSION}",
                     "metadata": {}, "items": items}


def discovery() -> dict[str, Any]:
    """``/apis/metrics.k8s.io/v1beta1``: the group version's APIResourceList."""
    verbs = ["get", "list"]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/{VERSION}",
            "resources": [{"name": "nodes", "singularName": "", "namespaced": False,
                           "kind": "NodeMetrics", "verbs": verbs},
                          {"name": "pods", "singularName": "", "namespaced": True,
                           "kind": "PodMetrics", "verbs": verbs}]}


def _status(code: int, reason: str, message: str,
            details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason,
                           "code": code}
    if details:
        out["details"] = details
    return out
