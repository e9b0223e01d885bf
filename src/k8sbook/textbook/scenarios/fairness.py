"""API Priority and Fairness: one client floods, the others are still served.

The book's own scenarios (no Kubernetes counterpart), over
:mod:`k8sbook.apiserver.flowcontrol`. Every request is a real client's, dialled through the
network with its own credentials (client certificates with CN ``flooder``, ``alice`` and
``system:node:node-a``), so the trace shows each 429.
"""

from __future__ import annotations

from typing import Any

from k8sbook.api import objects
from k8sbook.api.request import ClientCertificate, Request, Response
from k8sbook.apiserver.authentication import UserInfo
from k8sbook.client.rest import Client
from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios import ScenarioResult, scenario

CHAPTER = "02-the-hub"
FLOODER = UserInfo("flooder", ("system:authenticated",))
NEIGHBOUR = UserInfo("alice", ("system:authenticated",))
KUBELET = UserInfo("system:node:node-a", ("system:nodes", "system:authenticated"))


def _list(client: Client, plural: str = "configmaps", namespace: str = "default") -> Response:
    """One LIST, answered whatever the code (``Client.send`` does not raise)."""
    return client.send(Request("list", plural, namespace=namespace))


@scenario("fairness-flood", "One client floods the apiserver: its excess gets 429 with "
          "Retry-After while another user and the kubelets are still served", CHAPTER)
def flood(seed: int = 0) -> ScenarioResult:
    """Requests are given 0.5 s of virtual service time and ``global-default`` (where every
    authenticated user without a better FlowSchema lands) 4 seats and queues of 10, so the
    limits bite at a scale a page can show: ``flooder`` sends 40 LISTs in one instant, then
    ``alice`` one, and the kubelet of ``node-a`` reads its Node (``system-node-high``:
    another priority level, its own seats). The flooder's first 4 run, 10 queue, 26 are
    refused; alice's one queues in her own flow and is served; the kubelet is not affected."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    admin.create(objects.node("node-a", cpu="2"))
    admin.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                  "metadata": {"name": "configmap-reader", "namespace": "default"},
                  "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                             "verbs": ["get", "list"]}]})
    admin.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                  "metadata": {"name": "readers", "namespace": "default"},
                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                              "name": "configmap-reader"},
                  "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                "name": u.name} for u in (FLOODER, NEIGHBOUR)]})
    apf = cluster.apiserver.flowcontrol
    apf.service_time = 0.5
    apf.configure("global-default", concurrency=4, queue_length_limit=10)
    # two people's kubectl, each with a client certificate of their own
    flooder = cluster.client("kubectl/flooder", ClientCertificate(FLOODER.name))
    neighbour = cluster.client("kubectl/alice", ClientCertificate(NEIGHBOUR.name))
    kubelet_client = cluster.client("kubelet/node-a")
    mark = cluster.trace.mark()
    flood_resps = [_list(flooder) for _ in range(40)]
    alice = _list(neighbour)
    kubelet = kubelet_client.send(Request("get", "nodes", name="node-a"))
    queued = apf.queued("global-default")
    refused = [r for r in flood_resps if r.code == 429]
    cluster.settle(5.0)  # the queues drain; the flooder tries again after Retry-After
    retry = _list(flooder)
    codes: dict[str, dict[int, int]] = {}
    for name, resps in (("flooder", flood_resps), ("alice", [alice]),
                        ("kubelet node-a", [kubelet])):
        for r in resps:
            codes.setdefault(name, {}).setdefault(r.code, 0)
            codes[name][r.code] += 1
    first = refused[0].body if refused else {}
    facts: dict[str, Any] = {
        "codes": codes,
        "classification": {
            "flooder": _named(apf.classify(FLOODER, Request("list", "configmaps"))),
            "alice": _named(apf.classify(NEIGHBOUR, Request("list", "configmaps"))),
            "kubelet node-a": _named(apf.classify(KUBELET, Request("get", "nodes"))),
            "kubernetes-admin": _named(apf.classify(
                UserInfo("kubernetes-admin", ("kubeadm:cluster-admins",
                                              "system:authenticated")),
                Request("list", "pods"))),
            "loopback (system:masters)": _named(apf.classify(
                UserInfo("system:apiserver", ("system:masters",)), Request("list", "pods"))),
        },
        "queued_after_flood": queued,
        "status": {"code": first.get("code"), "reason": first.get("reason"),
                   "message": first.get("message")},
        "retry_after_seconds": first.get("details", {}).get("retryAfterSeconds"),
        "retry_after_wait": retry.code,
        "limit": {"global-default": apf.levels["global-default"].limit,
                  "node-high": apf.levels["node-high"].limit},
    }
    return ScenarioResult("fairness-flood", cluster, cluster.trace.since(mark), facts)


def _named(c: Any) -> dict[str, str]:
    return {"flowSchema": c.flow_schema, "priorityLevel": c.priority_level, "flow": c.flow}
