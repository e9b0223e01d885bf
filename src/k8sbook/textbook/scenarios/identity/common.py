"""What chapter 13's scenarios share: the small cluster they start from, a token for one of its
service accounts, and the two calls to the kubelet's port that several rows make.

The book's own code: it sets up and observes; every answer it returns is a component's.
"""

from __future__ import annotations

import base64
from http import HTTPStatus
from typing import Any

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.apiserver.kubelet_client import pod_logs
from k8sbook.client.http import HTTPRequest
from k8sbook.client.network import Address
from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios import Outcome

CH = "13-who-is-calling"
RBAC = "rbac.authorization.k8s.io"
TOKEN_REQUEST = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
#: node-a's address on the machines' network (its kubelet listens on :10250)
NODE_A_IP = "192.168.0.10"


def base_cluster(seed: int) -> Cluster:
    """One node (``node-a``) with pod ``web``, the service accounts ``default``, ``reader``
    (bound to a Role that may get and list pods) and ``robot`` (bound to nothing), and a
    Secret ``db-password``."""
    c = Cluster(seed)
    c.add_kubelet("node-a").start()
    c.run_for(2)
    adm = c.admin()
    for name in ("default", "reader", "robot"):  # no ServiceAccount controller runs here
        adm.create({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": "default"}})
    adm.create(objects.pod("web", node_name="node-a"))
    adm.create({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db-password", "namespace": "default"},
                "data": {"password": base64.b64encode(b"hunter2").decode()}})
    adm.create({"apiVersion": f"{RBAC}/v1", "kind": "Role",
                "metadata": {"name": "pod-reader", "namespace": "default"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})
    adm.create({"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
                "metadata": {"name": "reader-reads-pods", "namespace": "default"},
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader",
                              "namespace": "default"}]})
    c.run_for(5)
    return c


def token(c: Cluster, account: str, namespace: str = "default", **spec: Any) -> str:
    """A token for ``namespace/account`` from the TokenRequest API (``kubectl create token``)."""
    body = {**TOKEN_REQUEST, "spec": spec}
    out = c.admin().request(Request("create", "serviceaccounts", "", namespace, account,
                                    "token", body=body))
    value: str = out["status"]["token"]
    return value


def kubelet_api(c: Cluster, src: str, creds: Any, path: str = "/containerLogs/default/web/app",
                ) -> Outcome:
    """``src`` dials node-a's kubelet on :10250 itself and GETs ``path`` with ``creds``: the
    kubelet's own answer."""
    resp = c.network.dial(src, Address.tcp(NODE_A_IP, 10250),
                          HTTPRequest("GET", path, credentials=creds),
                          protocol="HTTPS", verb="GET", resource=path,
                          result=lambda r: r.result())
    if resp.status >= 400:
        return Outcome(f"{resp.status}: {resp.body.get('message', '')}", resp.status)
    return Outcome(f"{resp.status} OK", resp.status)


def logs_outcome(c: Cluster) -> Outcome:
    """``kubectl logs web``: what the apiserver answered kubectl (read off the trace)."""
    mark = c.trace.mark()
    pod_logs(c.admin(), "default", "web")
    (msg,) = [m for m in c.trace.since(mark) if m.resource == "pods/log"]
    code = int(msg.result[:3])
    return Outcome(f"{code} {HTTPStatus(code).phrase}", code)
