"""Chapter 13's runs about credentials: the PKI kubeadm builds, TLS bootstrapping, a token
decoded, the escalation attempts refused, and Konnectivity.

The book's own code. Each scenario sets a cluster up, lets the components work, and reports
what the servers answered (:func:`~k8sbook.textbook.scenarios.outcome`); the refusals are the
apiserver's, the kubelet's and konnectivity-server's own. The per-path table is
:mod:`.per_path`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from k8sbook.api import objects
from k8sbook.api.request import BearerToken, Request
from k8sbook.apiserver.kubelet_client import pod_exec, pod_logs
from k8sbook.apiserver.serviceaccount import decode_unverified
from k8sbook.client.in_cluster import TOKEN_PATH
from k8sbook.cluster import Cluster
from k8sbook.core import pki
from k8sbook.core.clock import EPOCH
from k8sbook.core.trace import Message
from k8sbook.textbook.scenarios import ScenarioResult, outcome, scenario
from k8sbook.textbook.scenarios.identity.common import CH, RBAC, base_cluster
from k8sbook.textbook.scenarios.identity.common import token as sa_token


def bootstrap_messages(messages: list[Message]) -> list[Message]:
    """The messages of TLS bootstrapping worth drawing: CSRs, SARs, the Node, no etcd."""
    keep = ("certificatesigningrequests", "subjectaccessreviews", "nodes")
    return [m for m in messages if m.dst != "etcd" and m.verb != "LIST"
            and not (m.verb == "WATCH" and m.src.startswith("kube-controller-manager"))
            and any(m.resource.startswith(k) for k in keep)]


@scenario("tls-bootstrap", "A new node's kubelet gets, then rotates, its client certificate", CH)
def tls_bootstrap(seed: int = 0) -> ScenarioResult:
    c = Cluster(seed)
    kcm = c.add_controller_manager(controllers=("csrapproving", "csrsigning"))
    kcm.start()
    c.run_for(20)
    kcm.controllers["csrsigning"].duration = 3600.0  # --cluster-signing-duration=1h
    mark = c.trace.mark()
    kubelet = c.add_kubelet("node-b", bootstrap=True).start()
    c.run_for(5)
    messages = bootstrap_messages(c.trace.since(mark))
    mgr = kubelet.certificates
    assert mgr is not None and mgr.current is not None
    first = c.admin().get("certificatesigningrequests", mgr.requests[0])
    cert = mgr.current
    lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
    start = (cert.not_valid_before_utc - EPOCH).total_seconds()
    deadline = mgr.deadline or 0.0
    c.run_for(deadline - c.clock.now() + 2)
    second = c.admin().get("certificatesigningrequests", mgr.requests[-1])
    serving = {**first, "metadata": {"name": "node-b-serving"},
               "spec": {**first["spec"], "signerName": "kubernetes.io/kubelet-serving",
                        "usages": ["digital signature", "server auth"]}}
    kubelet.client.create(serving)
    c.run_for(5)
    pending = c.admin().get("certificatesigningrequests", "node-b-serving")["status"]
    facts = {
        "first_csr": {"name": first["metadata"]["name"],
                      "username": first["spec"]["username"],
                      "groups": first["spec"]["groups"],
                      "signerName": first["spec"]["signerName"],
                      "usages": first["spec"]["usages"],
                      "condition": first["status"]["conditions"][0]},
        "certificate": {"subject": [pki.subject_of(cert)[0], list(pki.subject_of(cert)[1])],
                        "issuer": cert.issuer.rfc4514_string(),
                        "notBefore": cert.not_valid_before_utc.isoformat(),
                        "notAfter": cert.not_valid_after_utc.isoformat()},
        "rotation_at_fraction": round((deadline - start) / lifetime, 3),
        "second_csr": {"name": second["metadata"]["name"],
                       "username": second["spec"]["username"],
                       "message": second["status"]["conditions"][0]["message"]},
        "rotated": pki.subject_of(mgr.current) == pki.subject_of(cert) and mgr.current != cert,
        "serving_status": pending,
        "node_registered": c.admin().get("nodes", "node-b")["metadata"]["name"],
    }
    return ScenarioResult("tls-bootstrap", c, messages, facts)


@scenario("token-decoded", "A pod's service-account token, claim by claim, and when it stops "
          "working", CH)
def token_decoded(seed: int = 0) -> ScenarioResult:
    c = base_cluster(seed)
    runtime = c.components["machine/node-a"].runtime  # type: ignore[attr-defined]
    kubelet = c.components["kubelet/node-a"]
    process = runtime.process(kubelet.container_id("default", "web", "app"))  # type: ignore[attr-defined]
    token = process.read_file(TOKEN_PATH) or ""
    header, claims = decode_unverified(token)
    t = c.trace
    as_pod = c.client("pod/default/web", BearerToken(token))
    head, payload, sig = token.split(".")
    forged_claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_claims["kubernetes.io"]["serviceaccount"]["name"] = "reader"
    forged = ".".join([head, base64.urlsafe_b64encode(
        json.dumps(forged_claims).encode()).decode().rstrip("="), sig])
    checks: dict[str, tuple[str, str]] = {}

    def attempt(label: str, client: Any) -> None:
        out = outcome(lambda: client.list("pods", "default"), t)
        checks[label] = (str(out), c.apiserver.authn.last_failure if out.code == 401 else "")

    attempt("the pod's token", as_pod)
    attempt("payload edited to claim 'reader'", c.client("pod/default/web", BearerToken(forged)))
    attempt("a token for audience 'vault'", c.client(
        "pod/default/web", BearerToken(sa_token(c, "default", audiences=["vault"]))))
    short = sa_token(c, "default", expirationSeconds=600)
    c.run_for(661)
    attempt("a 600 s token, 661 s later", c.client("pod/default/web", BearerToken(short)))
    c.admin().delete("pods", "web", "default", gracePeriodSeconds=0)
    c.run_for(2)
    attempt("the pod's token after the pod is deleted", as_pod)
    c.admin().create({"apiVersion": "v1", "kind": "Secret",
                      "type": "kubernetes.io/service-account-token",
                      "metadata": {"name": "robot-legacy", "namespace": "default",
                                   "annotations": {"kubernetes.io/service-account.name":
                                                   "robot"}}})
    # the legacy kind, for comparison: the tokens controller fills a Secret a user creates
    c.add_controller_manager(controllers=("serviceaccount-token",)).start()
    c.run_for(20)
    secret = c.admin().get("secrets", "robot-legacy", "default")
    legacy = base64.b64decode(secret["data"]["token"]).decode()
    attempt("the legacy Secret token", c.client("pod/default/web", BearerToken(legacy)))
    facts = {"header": header, "claims": claims, "checks": checks,
             "token_prefix": token[:40] + "...", "legacy_claims": decode_unverified(legacy)[1]}
    return ScenarioResult("token-decoded", c, list(t.messages), facts)


@scenario("escalations", "The escalation attempts an attacker tries first, refused", CH)
def escalations(seed: int = 0) -> ScenarioResult:
    c = base_cluster(seed)
    t = c.trace
    adm = c.admin()
    node_uid = adm.get("nodes", "node-a")["metadata"]["uid"]
    mirror = objects.pod("static-steal", node_name="node-a")
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    mirror["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node",
                                              "name": "node-a", "uid": node_uid,
                                              "controller": True}]
    mirror["spec"]["volumes"] = [{"name": "s", "secret": {"secretName": "db-password"}}]
    adm.create({"apiVersion": f"{RBAC}/v1", "kind": "Role",
                "metadata": {"name": "binder", "namespace": "default"},
                "rules": [{"apiGroups": [RBAC], "resources": ["rolebindings"],
                           "verbs": ["create"]}]})
    adm.create({"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
                "metadata": {"name": "robot-binds", "namespace": "default"},
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "binder"},
                "subjects": [{"kind": "ServiceAccount", "name": "robot",
                              "namespace": "default"}]})
    c.run_for(1)
    robot = c.client("pod/default/web", BearerToken(sa_token(c, "robot")))
    grab = {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
            "metadata": {"name": "robot-is-admin", "namespace": "default"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}]}
    attempts = {
        "a node creates a mirror pod that mounts a Secret":
            outcome(lambda: c.client("kubelet/node-a").create(mirror), t),
        "a node reads a Secret no pod of its uses":
            outcome(lambda: c.client("kubelet/node-a").get("secrets", "db-password",
                                                            "default"), t),
        "a service account binds itself to cluster-admin":
            outcome(lambda: robot.create(grab), t),
        "a service account impersonates kubernetes-admin":
            outcome(lambda: robot.impersonating("kubernetes-admin").list("secrets",
                                                                         "default"), t),
        "an anonymous caller reads discovery (/api)":
            outcome(lambda: c.apiserver.authorize_path(Request(
                "get", "", credentials=None), "/api"), t),
        "a made-up bearer token on /version":
            outcome(lambda: c.apiserver.authorize_path(Request(
                "get", "", credentials=BearerToken("let-me-in")), "/version"), t),
    }
    facts = {"attempts": {k: str(v) for k, v in attempts.items()},
             "all_refused": all(not v.ok for v in attempts.values())}
    return ScenarioResult("escalations", c, list(t.messages), facts)


@scenario("konnectivity", "The control plane reaches a node it cannot dial, through the "
          "agent's tunnel", CH)
def konnectivity(seed: int = 0) -> ScenarioResult:
    c = base_cluster(seed)
    adm = c.admin()
    c.network.firewall("kube-apiserver", "kubelet")
    before = outcome(lambda: pod_logs(adm, "default", "web"), c.trace)
    mark = c.trace.mark()
    c.add_konnectivity()
    c.run_for(1)
    logs = pod_logs(adm, "default", "web")
    exec_out = pod_exec(adm, "default", "web", ["echo", "through the tunnel"])
    shown = {"kubectl->kube-apiserver", "kube-apiserver->konnectivity-server",
             "konnectivity-agent->konnectivity-server", "konnectivity-server->kube-apiserver",
             "konnectivity-agent->kubelet", "kube-apiserver->kubelet"}
    messages = [m for m in c.trace.since(mark)
                if (m.path in shown and (m.src != "kubectl" or m.resource.startswith("pods/")))
                or m.resource == "subjectaccessreviews"]
    facts = {"without_tunnel": str(before), "logs": logs, "exec": exec_out,
             "paths": sorted({m.path for m in messages})}
    return ScenarioResult("konnectivity", c, messages, facts)


#: the PKI figure: which CA signs which certificate (kubeadm's certs phase), and where boxes go
PKI_EDGES = (
    ("cluster CA (kubernetes)", "apiserver (serving)"),
    ("cluster CA (kubernetes)", "apiserver-kubelet-client"),
    ("cluster CA (kubernetes)", "admin.conf (kubectl)"),
    ("cluster CA (kubernetes)", "controller-manager.conf"),
    ("cluster CA (kubernetes)", "scheduler.conf"),
    ("cluster CA (kubernetes)", "kubelet client (via CSR)"),
    ("etcd CA (etcd-ca)", "etcd server + peer"),
    ("etcd CA (etcd-ca)", "apiserver-etcd-client"),
    ("front-proxy CA", "front-proxy-client"),
)
PKI_POSITIONS = {
    "cluster CA (kubernetes)": (1.5, 2.0), "etcd CA (etcd-ca)": (6.6, 2.0),
    "front-proxy CA": (8.9, 2.0),
    "apiserver (serving)": (-0.9, 0.9), "apiserver-kubelet-client": (1.5, 0.9),
    "admin.conf (kubectl)": (3.9, 0.9), "controller-manager.conf": (0.2, -0.3),
    "scheduler.conf": (2.8, -0.3), "kubelet client (via CSR)": (5.0, -0.3),
    "etcd server + peer": (5.9, 0.9), "apiserver-etcd-client": (7.4, 0.9),
    "front-proxy-client": (8.9, 0.9),
}


def pki_figure() -> Any:
    """The cluster PKI kubeadm builds: three CAs and what each signs."""
    from k8sbook.textbook import figures
    edges = [(a, b, {"colour": "#326ce5"}) for a, b in PKI_EDGES]
    return figures.communication_graph(edges, title="Three CAs and what they sign",
                                       size=(7.0, 3.6), positions=PKI_POSITIONS)


def pki_table() -> list[tuple[str, str, str, str, str]]:
    """(file, signing CA's CN, CN, O, who presents it to whom) for kubeadm's certificates."""
    return [(f, pki.CAS[ca], cn, ",".join(o) or "—", use)
            for f, ca, cn, o, use in pki.KUBEADM_CERTIFICATES]
