"""The rows of the paths that end at kube-apiserver: each client's own credentials, the
authorizer that decides for it, and a request its role does not grant, refused by RBAC (or
the Node authorizer) with the apiserver's own message.

The book's own code; the components are built by :class:`~k8sbook.cluster.Cluster`'s
factories with the identities kubeadm and the add-ons' manifests give them.
"""

from __future__ import annotations

from typing import Any

from k8sbook.api import objects
from k8sbook.api.request import BearerToken, ClientCertificate
from k8sbook.cluster import Cluster
from k8sbook.core import pki
from k8sbook.core.keys import ec_key
from k8sbook.textbook.scenarios.identity.common import token
from k8sbook.textbook.scenarios.identity.rows import Row, attempt

TOKEN_REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": "not-a-token"}}


def _csr(node: str) -> dict[str, Any]:
    request = pki.certificate_request(ec_key(node), f"system:node:{node}", ("system:nodes",))
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"generateName": "csr-"},
            "spec": {"request": request.decode(),
                     "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                     "usages": ["digital signature", "client auth"]}}


def apiserver_rows(c: Cluster, clients: dict[str, Any]) -> list[Row]:
    """One row per client of the apiserver. ``clients`` are the components' own clients
    (``cloud-controller-manager``, ``descheduler``, ``coredns``, ``ingress-controller``,
    ``metrics-server``), built by the scenario; konnectivity-server's row is made once it
    runs (:mod:`.per_path`)."""
    t = c.trace
    adm = c.admin()
    pod = objects.pod("intruder", node_name="node-a")
    reader = c.client("pod/default/web", BearerToken(token(c, "reader")))
    robot = c.client("pod/default/web", BearerToken(token(c, "robot")))
    bootstrap = c.client("kubelet/node-new", BearerToken(c.create_bootstrap_token()))
    kcm = c.client("kube-controller-manager/cp-1")
    sched = c.client("kube-scheduler/cp-1")
    proxy = c.client("kube-proxy/node-a")
    ccm, desched, dns, ingress, metrics = (clients[k] for k in (
        "cloud-controller-manager", "descheduler", "coredns", "ingress-controller",
        "metrics-server"))

    def row(path: str, kind: str, authn: str, authz: str, admission: str, right: str,
            ok: Any, wrong: str, no: Any) -> Row:
        return Row(path, kind, authn, authz, admission, right, attempt(ok, t), wrong,
                   attempt(no, t))

    sa = "service-account token"
    return [
        row("kubectl->kube-apiserver", "x509 client certificate",
            "admin.conf: CN kubernetes-admin, O kubeadm:cluster-admins",
            "RBAC: cluster-admin, bound to kubeadm:cluster-admins", "all enabled plugins",
            "kubernetes-admin lists Secrets", lambda: adm.list("secrets", "default"),
            "CN alice (signed by the cluster CA, bound to nothing)",
            lambda: c.client("kubectl", ClientCertificate("alice")).list("secrets",
                                                                          "default")),
        row("kube-scheduler->kube-apiserver", "x509 client certificate",
            "scheduler.conf: CN system:kube-scheduler", "RBAC: system:kube-scheduler", "—",
            "lists Nodes", lambda: sched.list("nodes"),
            "the scheduler lists Secrets", lambda: sched.list("secrets", "default")),
        row("kube-controller-manager->kube-apiserver", "x509 client certificate",
            "controller-manager.conf: CN system:kube-controller-manager; each controller "
            "with its own service account (--use-service-account-credentials)",
            "RBAC: system:kube-controller-manager (list/watch everything), "
            "system:controller:<name> per controller", "—",
            "lists Pods for its informers", lambda: kcm.list("pods"),
            "its own identity creates a Pod (only replicaset-controller's account may)",
            lambda: kcm.create(pod)),
        row("cloud-controller-manager->kube-apiserver", sa,
            "ServiceAccount kube-system/cloud-controller-manager",
            "RBAC: system:cloud-controller-manager", "—",
            "lists Nodes", lambda: ccm.list("nodes"),
            "lists Secrets", lambda: ccm.list("secrets", "default")),
        row("descheduler->kube-apiserver", sa, "ServiceAccount kube-system/descheduler-sa",
            "RBAC: descheduler-cluster-role", "—",
            "lists Pods", lambda: desched.list("pods"),
            "lists Secrets", lambda: desched.list("secrets", "default")),
        row("kube-proxy->kube-apiserver", "x509 client certificate",
            "CN system:kube-proxy (kubeadm gives a kube-system/kube-proxy token, bound the "
            "same way)", "RBAC: system:node-proxier", "—",
            "lists EndpointSlices", lambda: proxy.list("endpointslices"),
            "lists Secrets", lambda: proxy.list("secrets", "default")),
        row("coredns->kube-apiserver", sa, "ServiceAccount kube-system/coredns",
            "RBAC: system:coredns (kubeadm's CoreDNS manifest)", "—",
            "lists Services", lambda: dns.list("services"),
            "lists Secrets", lambda: dns.list("secrets", "default")),
        row("ingress-controller->kube-apiserver", sa,
            "ServiceAccount ingress-nginx/ingress-nginx", "RBAC: the chart's ClusterRole "
            "ingress-nginx (it may list Secrets, for TLS)", "—",
            "lists Ingresses", lambda: ingress.list("ingresses"),
            "creates a Pod", lambda: ingress.create(pod)),
        row("metrics-server->kube-apiserver", sa, "ServiceAccount kube-system/metrics-server",
            "RBAC: system:metrics-server", "—",
            "lists Nodes", lambda: metrics.list("nodes"),
            "lists Secrets", lambda: metrics.list("secrets", "default")),
        row("kubelet->kube-apiserver", "x509 client certificate",
            "CN system:node:node-a, O system:nodes", "Node authorizer (graph of its pods)",
            "NodeRestriction", "node-a reads its pod web",
            lambda: c.client("kubelet/node-a").get("pods", "web", "default"),
            "node-b reads node-a's pod",
            lambda: c.client("kubelet/node-b").get("pods", "web", "default")),
        row("kubelet->kube-apiserver", "bootstrap token",
            "bootstrap token: system:bootstrap:<id>, O system:bootstrappers",
            "RBAC: system:node-bootstrapper", "CertificateSigningRequest plugins",
            "a joining node creates its CSR", lambda: bootstrap.create(_csr("node-new")),
            "the bootstrap token lists Pods", lambda: bootstrap.list("pods", "default")),
        row("pod->kube-apiserver", sa, "bound service-account token (JWT) of the pod",
            "RBAC: Role pod-reader", "ServiceAccount (when enabled)",
            "reader lists Pods", lambda: reader.list("pods", "default"),
            "robot lists Pods", lambda: robot.list("pods", "default")),
    ]
