"""Scenarios of chapter 9, "Metrics and the aggregation layer".

Two kubelets run a few pods (created with ``spec.nodeName`` set, so no scheduler is needed);
metrics-server is installed as ``kubectl apply -f components.yaml`` would (its RBAC, Service,
APIService ``v1beta1.metrics.k8s.io`` and its pod, whose endpoint the EndpointSlice controller
publishes); it dials both kubelets every 15 s, and ``kubectl top pods`` reads
``/apis/metrics.k8s.io/v1beta1/namespaces/default/pods`` through kube-apiserver's aggregator,
which dials the metrics-server pod's endpoint. Every hop goes through the network fabric.
"""

from __future__ import annotations

from typing import Any

from k8sbook.addons.metrics_server import (
    GROUP,
    METRIC_RESOLUTION,
    NAME,
    NAMESPACE,
    SECURE_PORT,
    VERSION,
    MetricsServer,
    delegation_roles,
    manifests,
)
from k8sbook.addons.metrics_server import pod as metrics_server_pod
from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.apiserver.aggregator import AVAILABILITY_PERIOD, Unresolved, apiservice
from k8sbook.apiserver.authentication import ClientCertificate
from k8sbook.apiserver.server import LOOPBACK_USER
from k8sbook.client.network import Address
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controllers import endpointslice
from k8sbook.core.status import StatusError
from k8sbook.core.trace import Message
from k8sbook.node.kubelet import Kubelet
from k8sbook.textbook.scenarios import ScenarioResult, outcome, scenario

CH9 = "09-metrics-and-aggregation"
TOP_PATH = f"/apis/{GROUP}/{VERSION}/namespaces/default/pods"
#: what the aggregator's availability check GETs
DISCOVERY_PATH = f"/apis/{GROUP}/{VERSION}"
#: the pods of the chapter: (name, node, cpu request, memory request)
PODS = (("api", "node-a", "250m", "64Mi"), ("web", "node-a", "100m", "32Mi"),
        ("worker", "node-b", "500m", "128Mi"), ("idle", "node-b", "", ""))


def kubectl_top_pods(client: Any, namespace: str = "default") -> dict[str, Any]:
    """``kubectl top pods``: LIST ``pods.metrics.k8s.io`` in ``namespace``."""
    body: dict[str, Any] = client.request(Request("list", "pods", GROUP, namespace))
    return body


def top_table(metrics: dict[str, Any]) -> str:
    """The table ``kubectl top pods`` prints (CPU in millicores, memory in MiB)."""
    from k8sbook.api.quantity import parse_quantity

    rows = [("NAME", "CPU(cores)", "MEMORY(bytes)")]
    for item in metrics["items"]:
        cpu = sum(parse_quantity(c["usage"]["cpu"]) if not c["usage"]["cpu"].endswith("n")
                  else int(c["usage"]["cpu"][:-1]) / 1e9 for c in item["containers"])
        mem = sum(parse_quantity(c["usage"]["memory"]) for c in item["containers"])
        rows.append((item["metadata"]["name"], f"{round(cpu * 1000)}m",
                     f"{round(mem / 2**20)}Mi"))
    width = [max(len(r[i]) for r in rows) + 3 for i in range(2)]
    return "\n".join(f"{r[0]:<{width[0]}}{r[1]:<{width[1]}}{r[2]}" for r in rows)


def install_metrics_server(cluster: Cluster, *, node: str = "node-a",
                           metric_resolution: float = METRIC_RESOLUTION) -> MetricsServer:
    """Apply metrics-server's manifest, wait for its pod and its endpoint, start the process
    in it, then the aggregator's availability check."""
    admin = cluster.admin()
    for obj in delegation_roles() + manifests():
        admin.create(obj)
    admin.create(apiservice(GROUP, VERSION, NAMESPACE, NAME))
    admin.create(metrics_server_pod(node, metric_resolution=metric_resolution))
    aggregator = cluster.apiserver.aggregator
    ref = {"namespace": NAMESPACE, "name": NAME, "port": 443}
    for _ in range(60):
        try:
            aggregator.endpoints(ref)
            break
        except Unresolved:
            cluster.run_for(0.5)
    pod_ip = aggregator.endpoints(ref)[0].host
    # the model's container runtime runs a placeholder web server on every declared port;
    # in this container the program is metrics-server, so it takes over the socket
    address = Address.tcp(pod_ip, SECURE_PORT)
    if cluster.network.listener(address) is not None:
        cluster.network.close(address)
    server = cluster.add_metrics_server(pod_ip, metric_resolution=metric_resolution)
    aggregator.start_availability_controller()
    return server


def start_endpointslices(cluster: Cluster) -> None:
    """kube-controller-manager's EndpointSlice controller (the Service needs its endpoint)."""
    endpointslice.start(cluster.service_account_client("kube-controller-manager", "kube-system",
                                                       endpointslice.NAME),
                        cluster.client("kube-controller-manager"))


def _create_pods(cluster: Cluster) -> None:
    admin = cluster.admin()
    for name, node, cpu, mem in PODS:
        c = objects.container("app", "nginx:1.27")
        if cpu:
            c["resources"] = {"requests": {"cpu": cpu, "memory": mem}}
        admin.create(objects.pod(name, labels={"app": name}, containers=[c], node_name=node))


def build(seed: int = 0, *, metric_resolution: float = METRIC_RESOLUTION
          ) -> tuple[Cluster, MetricsServer, dict[str, Kubelet]]:
    """Two kubelets, four pods, metrics-server: the cluster every scenario here starts from."""
    cluster = Cluster(seed)
    kubelets = {n: cluster.add_kubelet(n).start() for n in ("node-a", "node-b")}
    start_endpointslices(cluster)
    cluster.run_for(1)
    _create_pods(cluster)
    cluster.run_for(3)
    server = install_metrics_server(cluster, metric_resolution=metric_resolution)
    cluster.run_for(1)  # first scrape, first availability check
    return cluster, server, kubelets




def first_listed(cluster: Cluster, step: float = 1.0, limit: float = 600.0) -> float | None:
    """Run ``cluster`` ``step`` seconds at a time until ``kubectl top pods`` (as the admin)
    lists a pod; the time it first did, or ``None`` within ``limit`` seconds."""
    end = cluster.clock.now() + limit
    while cluster.clock.now() <= end:
        if kubectl_top_pods(cluster.admin())["items"]:
            return cluster.clock.now()
        cluster.run_for(step)
    return None


def _attempt(fn: Any) -> tuple[str, dict[str, Any]]:
    """Like :func:`_outcome`, also returning the error's Status (empty when allowed)."""
    try:
        fn()
    except StatusError as err:
        return f"{err.code} {err.reason}: {err.status['message']}", err.status
    return "allowed", {}


def apiservice_available(cluster: Cluster) -> dict[str, str]:
    got = cluster.apiserver.handle(Request("get", "apiservices", "apiregistration.k8s.io", "",
                                           f"{VERSION}.{GROUP}", user=LOOPBACK_USER)).body
    conds = (got or {}).get("status", {}).get("conditions", [])
    return {k: conds[0][k] for k in ("status", "reason")} if conds else {}


def top_request_messages(messages: list[Message]) -> list[Message]:
    """The messages of one ``kubectl top pods``: from kubectl's LIST to the answer."""
    start = next(i for i, m in enumerate(messages) if m.src == "kubectl")
    return [m for m in messages[start:] if m.dst != "etcd"]


CRI_POLLS = ("ListPodSandbox", "ListContainers")
"""The kubelet's once-a-second CRI polls (PLEG relist): noise in the chapter's figures."""


def cri_polls(m: Message) -> str | None:
    """A ``fold`` for :func:`figures.sequence_diagram`: summarise the kubelet's CRI polls."""
    if m.path == "kubelet->container-runtime" and m.verb in CRI_POLLS:
        return "CRI polls (" + ", ".join(CRI_POLLS) + ")"
    return None


def top_story(messages: list[Message]) -> list[Message]:
    """What the chapter draws for one ``kubectl top pods``: the last scrape round of both
    kubelets, then the request through the aggregator (no etcd, no lease renewals)."""
    last = max(m.t for m in messages if m.path == "metrics-server->kubelet")
    start = next(i for i, m in enumerate(messages)
                 if m.path == "metrics-server->kubelet" and m.t == last)
    return [m for m in messages[start:]
            if m.dst != "etcd" and not m.resource.startswith("leases")]


@scenario("metrics-kubectl-top", "kubectl top pods through the aggregation layer and "
          "metrics-server", CH9)
def kubectl_top(seed: int = 0) -> ScenarioResult:
    """metrics-server scrapes two kubelets at t0 and t0+15 s; then ``kubectl top pods`` is
    proxied by kube-apiserver to metrics-server, which asks kube-apiserver (a
    SubjectAccessReview) whether the user may list ``pods.metrics.k8s.io``."""
    cluster = Cluster(seed)
    for n in ("node-a", "node-b"):
        cluster.add_kubelet(n).start()
    start_endpointslices(cluster)
    cluster.run_for(1)
    _create_pods(cluster)
    cluster.run_for(3)
    mark = cluster.trace.mark()
    server = install_metrics_server(cluster)
    t0 = cluster.clock.now()
    cluster.run_for(1)
    jane = outcome(lambda: kubectl_top_pods(cluster.client("kubectl", ClientCertificate("jane"))))
    early = kubectl_top_pods(cluster.admin())
    cluster.run_for(server.metric_resolution + 1)
    scrape_end = cluster.trace.mark()
    metrics = kubectl_top_pods(cluster.admin())
    messages = cluster.trace.since(mark)
    top = top_request_messages(cluster.trace.since(scrape_end))
    facts = {
        "scrape_times": sorted({round(t - t0, 3) for t, _, _ in server.scrapes}),
        "scrapes": [(round(t - t0, 3), node, code) for t, node, code in server.scrapes],
        "items_after_first_scrape": len(early["items"]),
        "jane": jane,
        "pods": [i["metadata"]["name"] for i in metrics["items"]],
        "usage": {i["metadata"]["name"]: i["containers"][0]["usage"] for i in metrics["items"]},
        "window": sorted({i["window"] for i in metrics["items"]}),
        "first_item": metrics["items"][0],
        "table": top_table(metrics),
        "top_paths": sorted({m.path for m in top}),
        "top_sequence": [(m.src, m.dst, m.verb, m.resource) for m in top],
        "apiservice": apiservice_available(cluster),
        "proxied_to": sorted({m.resource for m in messages
                              if m.path == "kube-apiserver->metrics-server"
                              and m.resource != DISCOVERY_PATH}),
        "availability_probes": len([m for m in messages
                                    if m.path == "kube-apiserver->metrics-server"
                                    and m.resource == DISCOVERY_PATH]),
        "endpoint": str(server.address),
        "kubelet_reviews": sorted({f"{m.verb} {m.resource}" for m in messages
                                   if m.path == "kubelet->kube-apiserver"
                                   and m.resource.endswith("reviews")}),
    }
    return ScenarioResult("metrics-kubectl-top", cluster, messages, facts)


@scenario("metrics-server-down", "metrics-server stops: the aggregator answers 503 and the "
          "APIService turns Available=False", CH9)
def server_down(seed: int = 0) -> ScenarioResult:
    """metrics-server stops at t=30 s. Before the availability controller notices, the
    proxy's dial fails (503); after it, the APIService is ``Available=False`` and the
    aggregator answers 503 ``service unavailable`` without trying."""
    cluster, server, _ = build(seed)
    cluster.run_for(server.metric_resolution + 1)
    admin = cluster.admin()
    ok = len(kubectl_top_pods(admin)["items"])
    mark = cluster.trace.mark()
    server.stop()
    down_at = cluster.clock.now()
    dial, dial_status = _attempt(lambda: kubectl_top_pods(admin))
    cluster.run_for(AVAILABILITY_PERIOD)
    unavailable, status = _attempt(lambda: kubectl_top_pods(admin))
    messages = cluster.trace.since(mark)
    facts = {
        "items_before": ok,
        "down_at": down_at,
        "while_dialing": dial,
        "dial_cause": dial_status["details"]["causes"][0]["message"],
        "after_check": unavailable,
        "status": status,
        "apiservice": apiservice_available(cluster),
        "condition_message": cluster.apiserver.handle(Request(
            "get", "apiservices", "apiregistration.k8s.io", "", f"{VERSION}.{GROUP}",
            user=LOOPBACK_USER)).body["status"]["conditions"][0]["message"],
        "proxied_after_down": [m.result for m in messages
                               if m.path == "kube-apiserver->metrics-server"
                               and m.resource != DISCOVERY_PATH],
        "probes_after_down": [(round(m.t - down_at, 3), m.result) for m in messages
                              if m.path == "kube-apiserver->metrics-server"
                              and m.resource == DISCOVERY_PATH],
    }
    return ScenarioResult("metrics-server-down", cluster, messages, facts)


def scrape_timeline(result: ScenarioResult) -> Any:
    """The scrape loop of ``metrics-kubectl-top``: scrapes, reviews and kubectl requests."""
    from k8sbook.textbook import figures

    t0 = min(m.t for m in result.messages if m.path == "metrics-server->kubelet")
    lanes = ["kubectl", "kube-apiserver", "metrics-server", "kubelet/node-a", "kubelet/node-b"]
    points: list[tuple[str, float, str]] = []
    for m in result.messages:
        t = round(m.t - t0, 3)
        if m.path == "metrics-server->kubelet":
            points.append((m.dst, t, f"GET /metrics/resource {m.result}"))
        elif m.path == "kubectl->kube-apiserver" and m.resource == "pods":
            points.append(("kubectl", t, f"top pods: {m.result}"))
        elif m.path == "kube-apiserver->metrics-server":
            points.append(("kube-apiserver", t, "proxy"))
    last = max(t for _, t, _ in points)
    spans = [("metrics-server", 0.0, 15.0, "one sample per container", "#bbbbbb"),
             ("metrics-server", 15.0, last + 2, "two samples: rate over 15s", "#4c9a2a")]
    return figures.timeline(lanes, spans, points,
                            title="metrics-server scrapes every 15 s; kubectl top reads the "
                                  "last two samples")


def down_timeline(result: ScenarioResult) -> Any:
    """``metrics-server-down``: the stop, the failing dial, the Available condition."""
    from k8sbook.textbook import figures

    down = result.facts["down_at"]
    lanes = ["kubectl", "kube-apiserver", "APIService v1beta1.metrics.k8s.io"]
    points: list[tuple[str, float, str]] = [("kube-apiserver", 0.0, "metrics-server stops")]
    for m in result.messages:
        t = round(m.t - down, 3)
        if m.path == "kubectl->kube-apiserver" and m.resource == "pods":
            points.append(("kubectl", t, m.result))
        elif m.path == "kube-apiserver->metrics-server":
            points.append(("kube-apiserver", t, f"dial: {m.result}"))
        elif m.dst == "etcd" and m.verb == "Txn" and "/apiservices/" in m.resource:
            # the availability controller writes the condition (apiserver loopback -> etcd)
            points.append(("APIService v1beta1.metrics.k8s.io", t, "Available=False"))
    last = max(t for _, t, _ in points)
    flip = next(t for lane, t, _ in points if lane.startswith("APIService"))
    spans = [("APIService v1beta1.metrics.k8s.io", 0.0, flip, "still Available=True",
              "#4c9a2a"),
             ("APIService v1beta1.metrics.k8s.io", flip, last + 1,
              "FailedDiscoveryCheck", "#c0392b")]
    return figures.timeline(lanes, spans, points,
                            title="metrics-server down: 503 before and after the "
                                  "availability check")
