"""metrics-server: scrapes every kubelet and serves ``metrics.k8s.io`` through the aggregator.

Mirrors kubernetes-sigs/metrics-server (v0.6 and later), trimmed to pod metrics:

* **Scraping** (``pkg/scraper``): every ``--metric-resolution`` (the code's default is 60 s;
  the project's released manifest passes ``15s``, the model's default here) it GETs
  ``https://<node address>:10250/metrics/resource`` from each Node it knows, authenticating
  with its ServiceAccount token (``kube-system/metrics-server``). The kubelet checks the token
  with a TokenReview and authorizes ``get`` on ``nodes/metrics`` with a SubjectAccessReview.
* **Storage** (``pkg/storage``): only the last two samples of each container are kept; CPU
  usage is the rate between them and ``window`` is the time between them, so a pod shows up
  only after two scrapes. Memory is the newest working-set sample.
* **Serving** (``pkg/api``, built on ``k8s.io/apiserver``): ``PodMetrics`` and
  ``PodMetricsList`` of ``metrics.k8s.io/v1beta1``. Requests arrive from kube-apiserver's
  aggregator: a client certificate signed by the front-proxy CA with an allowed name
  (``front-proxy-client``) makes metrics-server trust the ``X-Remote-User`` and
  ``X-Remote-Group`` headers (``--requestheader-*``, read from the ConfigMap
  ``kube-system/extension-apiserver-authentication``); it then asks kube-apiserver whether that
  user may do this with a SubjectAccessReview (delegated authorization).
* Nodes and Pods come from informers (LIST + WATCH as ``system:serviceaccount:kube-system:
  metrics-server``).

Simplified: no NodeMetrics; no label selectors on lists; no authorization cache (the real
delegating authorizer caches answers for 10 s); no request timeouts; the Service in front of it
is resolved by :meth:`k8sbook.apiserver.aggregator.Aggregator.register_backend`; the extension
ConfigMap is not read (its values are kubeadm's, set as constants in :mod:`k8sbook.apiserver.aggregator`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from k8sbook.apiserver.aggregator import (
    ALLOWED_NAMES,
    FRONT_PROXY_CA,
    GROUP_HEADER,
    USERNAME_HEADER,
)
from k8sbook.apiserver.authentication import CLUSTER_CA, BearerToken, ClientCertificate
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.network import Address, DialError
from k8sbook.node.kubelet import KUBELET_PORT

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
NAMESPACE, NAME = "kube-system", "metrics-server"
#: the ``--metric-resolution`` the project's manifest sets (the flag's own default is 60 s)
METRIC_RESOLUTION = 15.0
CODE_DEFAULT_METRIC_RESOLUTION = 60.0
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


def go_duration(seconds: float) -> str:
    """``metav1.Duration`` as JSON (Go's ``time.Duration.String``): 15s, 1m0s, 1.5s."""
    if seconds >= 60:
        m, s = divmod(seconds, 60)
        return f"{int(m)}m{s:g}s"
    return f"{seconds:g}s"


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
    """``MetricsServer(cluster).start()``: one replica of metrics-server in kube-system."""

    def __init__(self, cluster: Any, *, instance: str = "metrics-server/metrics-server-0",
                 metric_resolution: float = METRIC_RESOLUTION) -> None:
        self.cluster = cluster
        self.instance = instance
        self.clock = cluster.clock
        self.trace = cluster.trace
        self.metric_resolution = metric_resolution
        self.client = cluster.service_account_client(instance, NAMESPACE, NAME)
        self.token: BearerToken = self.client.credentials  # type: ignore[assignment]
        self.nodes = SharedIndexInformer(self.client, "nodes")
        self.pods = SharedIndexInformer(self.client, "pods")
        #: (namespace, pod, container) -> the last two samples, oldest first
        self.samples: dict[tuple[str, str, str], list[Sample]] = {}
        #: (time, node, HTTP status or error) of every scrape, for the timeline
        self.scrapes: list[tuple[float, str, str]] = []
        self.running = False
        self._timer: Any = None

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> MetricsServer:
        self.running = True
        self.nodes.run()
        self.pods.run()
        self.cluster.apiserver.aggregator.register_backend(NAMESPACE, NAME, self)
        self._timer = self.clock.call_soon(self._tick, "metrics-server scrape")
        return self

    def stop(self) -> None:
        """The process ends: no more scrapes, its port closes, its watches stop."""
        self.running = False
        self.nodes.stop()
        self.pods.stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def reachable(self) -> bool:
        return self.running and not self.cluster.network.is_isolated(self.instance)

    # -- scraping --------------------------------------------------------------------------
    def _tick(self) -> None:
        if not self.running:
            return
        self.scrape()
        self._timer = self.clock.call_later(self.metric_resolution, self._tick,
                                            "metrics-server scrape")

    def scrape(self) -> None:
        """One scrape of every known node's ``/metrics/resource``."""
        network = self.cluster.network
        for node in sorted(self.nodes.lister(), key=lambda n: n["metadata"]["name"]):
            name = node["metadata"]["name"]
            addrs = {a["type"]: a["address"] for a in node.get("status", {}).get("addresses", [])}
            host = addrs.get("Hostname") or addrs.get("InternalIP") or name
            path = "/metrics/resource"
            try:
                resp = network.dial(self.instance, Address.tcp(host, KUBELET_PORT),
                                    HTTPRequest("GET", path, credentials=self.token),
                                    protocol=SCRAPE_PROTOCOL, verb="GET", resource=path,
                                    result=HTTPResponse.result)
            except DialError as err:
                self.scrapes.append((self.clock.now(), name, err.result))
                continue
            code, body = resp.status, resp.body
            self.scrapes.append((self.clock.now(), name, str(code)))
            if code != 200:
                continue
            for key, values in parse_resource_metrics(body["text"]).items():
                sample = Sample(values.get("container_cpu_usage_seconds_total", 0.0),
                                int(values.get("container_memory_working_set_bytes", 0)),
                                self.clock.now())
                kept = self.samples.setdefault(key, [])
                kept.append(sample)
                del kept[:-2]

    # -- the API ---------------------------------------------------------------------------
    def pod_metrics(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """``PodMetrics`` for one pod, or ``None`` until every container has two samples."""
        meta = pod["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        containers = []
        stamps: list[tuple[float, float]] = []
        for c in pod["spec"].get("containers", []):
            kept = self.samples.get((ns, name, c["name"]), [])
            if len(kept) < 2:
                return None
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
        ns = ""
        if len(rest) >= 2 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or rest[0] != "pods" or len(rest) > 2:
            return 404, _status(404, "NotFound", "the server could not find the requested "
                                                 "resource")
        name = rest[1] if len(rest) == 2 else ""
        verb = "get" if name else "list"
        if method != "GET":
            return 405, _status(405, "MethodNotAllowed",
                                f"{method} is not supported on {GROUP} pods")
        # delegated authorization: ask kube-apiserver
        sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "metadata": {},
               "spec": {"user": user, "groups": groups,
                        "resourceAttributes": {"verb": verb, "group": GROUP, "version": VERSION,
                                               "resource": "pods", "namespace": ns,
                                               "name": name}}}
        review = self.client.create(sar)
        if not review.get("status", {}).get("allowed"):
            what = f'pods.{GROUP} "{name}"' if name else f"pods.{GROUP}"
            scope = f' in the namespace "{ns}"' if ns else " at the cluster scope"
            return 403, _status(403, "Forbidden",
                                f'{what} is forbidden: User "{user}" cannot {verb} resource '
                                f'"pods" in API group "{GROUP}"{scope}',
                                details={"name": name, "group": GROUP, "kind": "pods"}
                                if name else {"group": GROUP, "kind": "pods"})
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


def _status(code: int, reason: str, message: str,
            details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason,
                           "code": code}
    if details:
        out["details"] = details
    return out


def manifests() -> list[dict[str, Any]]:
    """What ``kubectl apply -f components.yaml`` creates for the model (RBAC, Service,
    APIService). The Deployment itself is :class:`MetricsServer`."""
    sa_subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": rbac, "kind": "ClusterRole",
         "metadata": {"name": "system:aggregated-metrics-reader",
                      "labels": {"k8s-app": NAME,
                                 "rbac.authorization.k8s.io/aggregate-to-admin": "true",
                                 "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                                 "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
         "rules": [{"apiGroups": [GROUP], "resources": ["pods", "nodes"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": rbac, "kind": "ClusterRole",
         "metadata": {"name": "system:metrics-server", "labels": {"k8s-app": NAME}},
         "rules": [{"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["pods", "nodes"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": rbac, "kind": "RoleBinding",
         "metadata": {"name": "metrics-server-auth-reader", "namespace": NAMESPACE,
                      "labels": {"k8s-app": NAME}},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "extension-apiserver-authentication-reader"},
         "subjects": sa_subject},
        {"apiVersion": rbac, "kind": "ClusterRoleBinding",
         "metadata": {"name": "metrics-server:system:auth-delegator",
                      "labels": {"k8s-app": NAME}},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "system:auth-delegator"},
         "subjects": sa_subject},
        {"apiVersion": rbac, "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:metrics-server", "labels": {"k8s-app": NAME}},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "system:metrics-server"},
         "subjects": sa_subject},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"k8s-app": NAME}},
         "spec": {"selector": {"k8s-app": NAME},
                  "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                             "targetPort": "https"}]}},
    ]


def delegation_roles() -> list[dict[str, Any]]:
    """Two roles real kube-apiserver bootstraps and the model's policy does not carry:
    ``system:auth-delegator`` (create TokenReviews and SubjectAccessReviews) and the Role
    ``kube-system/extension-apiserver-authentication-reader``."""
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": rbac, "kind": "ClusterRole",
         "metadata": {"name": "system:auth-delegator"},
         "rules": [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"],
                    "verbs": ["create"]},
                   {"apiGroups": ["authorization.k8s.io"],
                    "resources": ["subjectaccessreviews"], "verbs": ["create"]}]},
        {"apiVersion": rbac, "kind": "Role",
         "metadata": {"name": "extension-apiserver-authentication-reader",
                      "namespace": NAMESPACE},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                    "resourceNames": ["extension-apiserver-authentication"],
                    "verbs": ["get", "list", "watch"]}]},
    ]
