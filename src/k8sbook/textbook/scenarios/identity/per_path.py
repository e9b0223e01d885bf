"""Chapter 13's table: every catalogued path, the right identity let in and the wrong one
refused, each answer the receiving component's own.

The book's own code. :func:`identity_per_path` builds one cluster with every component the
catalog names (a node, the controllers' identities, cloud-controller-manager and the cloud,
the descheduler, CoreDNS, an ingress controller, metrics-server behind the aggregator, a
webhook, a CSI driver, three etcd peers, Konnectivity), then asks each path's receiver twice.
The rows are assembled by :mod:`.api_clients`, :mod:`.node_paths` and :mod:`.server_paths`.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import Any

from k8sbook.addons import ingress as king
from k8sbook.addons.dns import StubResolver
from k8sbook.api import objects
from k8sbook.apiserver.kubelet_client import pod_logs
from k8sbook.client.http import HTTPRequest
from k8sbook.client.network import Address
from k8sbook.cluster import Cluster
from k8sbook.controlplane import cloud_controller_manager, descheduler
from k8sbook.controlplane.cloud import CloudAPI
from k8sbook.node.csi import CSINodePlugin
from k8sbook.textbook import catalog
from k8sbook.textbook.scenarios import ScenarioResult, apply, scenario
from k8sbook.textbook.scenarios.identity.api_clients import TOKEN_REVIEW, apiserver_rows
from k8sbook.textbook.scenarios.identity.common import CH, NODE_A_IP, base_cluster
from k8sbook.textbook.scenarios.identity.node_paths import (
    DRIVER,
    kubelet_rows,
    open_rows,
    socket_rows,
)
from k8sbook.textbook.scenarios.identity.rows import KINDS, Row, attempt, on_trace
from k8sbook.textbook.scenarios.identity.server_paths import (
    aggregator_row,
    cloud_row,
    etcd_rows,
    konnectivity_rows,
    webhook_row,
)
from k8sbook.textbook.scenarios.metrics import install_metrics_server
from k8sbook.textbook.scenarios.networking.common import (
    app_pod,
    client_pod,
    service,
    start_endpointslices,
    wait_until,
)

HTTP_POD = "api"


def _ready(c: Cluster, names: list[str], namespace: str = "default") -> None:
    def ready() -> bool:
        for p in c.apiserver.cached_objects("pods"):
            if p["metadata"]["namespace"] == namespace and p["metadata"]["name"] in names:
                conds = {x["type"]: x["status"] for x in p.get("status", {}).get(
                    "conditions", [])}
                if conds.get("Ready") != "True" or not p["status"].get("podIP"):
                    return False
        return True
    wait_until(c, ready)


def _pod(c: Cluster, name: str, namespace: str = "default") -> dict[str, Any]:
    pod: dict[str, Any] = c.admin().get("pods", name, namespace)
    return pod


def _resolver(c: Cluster, pod: dict[str, Any], dns_ip: str) -> StubResolver:
    ns = pod["metadata"]["namespace"]
    conf = (f"search {ns}.svc.cluster.local svc.cluster.local cluster.local\n"
            f"nameserver {dns_ip}\noptions ndots:5\n")
    return StubResolver(c.network, pod["metadata"]["name"], pod["status"]["podIP"],
                        pod["spec"]["nodeName"], conf, id_source=c.ids.random)


def _components(c: Cluster) -> dict[str, Any]:
    """Everything but Konnectivity, started or created with its own identity."""
    adm = c.admin()
    start_endpointslices(c)
    apply(c, cloud_controller_manager.manifests() + descheduler.manifests())
    ccm = c.add_cloud_controller_manager()
    api = CloudAPI()
    api.serve(c.network)
    api.launch("node-a", NODE_A_IP)
    adm.create(objects.namespace("other"))
    adm.create(app_pod(HTTP_POD, "node-a", labels={"app": HTTP_POD}))
    adm.create(client_pod("neighbour"))
    adm.create(client_pod("stranger", namespace="other"))
    adm.create(objects.pod("coredns-0", "kube-system", node_name="node-a",
                           serviceAccountName="coredns"))
    adm.create(service(HTTP_POD, selector={"app": HTTP_POD},
                       ports=[{"name": "http", "port": 80, "targetPort": 8080}]))
    king.install(adm)
    adm.create({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "shop", "namespace": "default"},
                "spec": {"ingressClassName": "nginx",
                         "defaultBackend": {"service": {"name": HTTP_POD,
                                                        "port": {"number": 80}}}}})
    _ready(c, [HTTP_POD, "neighbour"])
    _ready(c, ["stranger"], "other")
    _ready(c, ["coredns-0"], "kube-system")
    dns_ip = _pod(c, "coredns-0", "kube-system")["status"]["podIP"]
    dns = c.add_coredns("coredns-0", dns_ip)
    ingress = c.add_ingress_controller(address=NODE_A_IP)
    metrics = install_metrics_server(c)
    CSINodePlugin(DRIVER, "node-a", c.network).install()
    c.components["kubelet/node-a"].register_csi_driver(DRIVER)  # type: ignore[attr-defined]
    c.run_for(2 * metrics.metric_resolution + 1)
    return {"cloud-controller-manager": ccm.client, "ccm": ccm, "cloud": api,
            "descheduler": c.add_descheduler().client, "coredns": dns.client,
            "ingress-controller": ingress.client, "metrics-server": metrics.client,
            "metrics": metrics, "dns_ip": dns_ip}


@scenario("identity-per-path", "Every path: the right identity gets in, the wrong one is refused",
          CH)
def identity_per_path(seed: int = 0) -> ScenarioResult:
    c = base_cluster(seed)
    t = c.trace
    parts = _components(c)
    rows: list[Row] = apiserver_rows(c, parts)
    rows += socket_rows(c, 0)
    rows += kubelet_rows(c, 0)
    api, neighbour, stranger = (_pod(c, HTTP_POD), _pod(c, "neighbour"),
                                _pod(c, "stranger", "other"))
    ing_mark = t.mark()
    c.network.dial("client", Address.tcp(NODE_A_IP, king.HTTP_PORT),
                   HTTPRequest("GET", "/", (("Host", "shop.example"),)), protocol="HTTP",
                   verb="GET", resource="http://shop.example/", result=lambda r: r.result())
    served = on_trace(t, ing_mark, "ingress-controller->pod", lambda m: m.result[:1] == "2")
    resolvers = (_resolver(c, neighbour, parts["dns_ip"]),
                 _resolver(c, stranger, parts["dns_ip"]))
    rows += open_rows(c, 0, api, stranger, neighbour, resolvers, served)
    rows.append(cloud_row(c, parts["ccm"], parts["cloud"]))
    rows.append(webhook_row(c))
    rows.append(aggregator_row(c, parts["metrics"]))
    rows += etcd_rows(c, seed)
    server = c.add_konnectivity(nodes=["node-a"])
    c.run_for(1)
    tunnel = t.mark()
    pod_logs(c.admin(), "default", "web")
    rows.append(Row("konnectivity-server->kube-apiserver", "x509 client certificate",
                    "CN system:konnectivity-server (its --kubeconfig)",
                    "RBAC: system:auth-delegator (TokenReview, SubjectAccessReview)", "—",
                    "sends a TokenReview", attempt(lambda: server.client.create(TOKEN_REVIEW),
                                                   t),
                    "lists Pods", attempt(lambda: server.client.list("pods", "default"), t)))
    rows += konnectivity_rows(c, server, tunnel)
    order = {p.id: i for i, p in enumerate(catalog.paths())}
    rows.sort(key=lambda r: order.get(r.path, len(order)))
    facts = {"rows": [r.facts() for r in rows],
             "kinds": {k: n for k, n in sorted(Counter(r.kind for r in rows).items(),
                                               key=lambda kv: KINDS.index(kv[0]))}}
    return ScenarioResult("identity-per-path", c, list(t.messages), facts)


def per_path_table(rows: list[dict[str, Any]], width: int = 88) -> str:
    """The rows as text, one block per path, wrapped to ``width`` (for a phone: the chapter
    folds it)."""
    out: list[str] = []

    def line(label: str, text: str) -> None:
        out.extend(textwrap.wrap(text, width, initial_indent=f"  {label:9} ",
                                 subsequent_indent=" " * 12))

    for r in rows:
        out.append(f"{r['path']}   [{r['kind']}]")
        line("authn", r["authentication"])
        line("authz", r["authorization"] + (f" | admission: {r['admission']}"
                                            if r["admission"] != "—" else ""))
        line("right", f"{r['right']} -> {r['success']}")
        line("wrong", f"{r['wrong']} -> {r['refusal']}")
        if r["also"]:
            line("also", r["also"])
    return "\n".join(out)


def verdicts(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """kind of identity -> one line per row: the path, and what the wrong caller got
    (``refused`` with its code), or ``served`` when nothing checks."""
    out: dict[str, list[str]] = {k: [] for k in KINDS}
    for r in rows:
        if not r["ok"]:
            got = "the right caller was not served"
        elif r["refused"]:
            got = f"refused ({r['refusal_code']})"
        else:
            got = "served"
        out[r["kind"]].append(f"{r['path']}: {got}")
    return {k: v for k, v in out.items() if v}
