"""The rows of the paths where a server proves itself with a certificate, or trusts one
presented by the caller: the apiserver and etcd (mutual TLS against the etcd CA), etcd members
(peer mutual TLS), webhooks and aggregated servers (their serving certificates against a
``caBundle``, and the front-proxy certificate), the cloud (its own credentials) and
Konnectivity.

The book's own code. The refusals are the network fabric's TLS handshake in Go's words, the
apiserver's ``Status``, metrics-server's, the cloud's error, konnectivity-server's log and the
kubelet's 403.
"""

from __future__ import annotations

import random
from typing import Any

from k8sbook.addons.konnectivity import AGENT_PORT, KonnectivityAgent, KonnectivityServer
from k8sbook.api import objects
from k8sbook.api.request import BearerToken, ClientCertificate
from k8sbook.apiserver import konnectivity_client
from k8sbook.apiserver.aggregator import GROUP_HEADER, USERNAME_HEADER
from k8sbook.apiserver.egress_selector import CONTROL_PLANE_NODE, UDS_NAME, TunnelDial
from k8sbook.apiserver.webhook import WebhookServer, serve_behind_service
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address
from k8sbook.cluster import Cluster
from k8sbook.controlplane.cloud import CloudAPI, ModelCloud
from k8sbook.core import pki
from k8sbook.core.status import StatusError
from k8sbook.storage.etcd3 import Storage
from k8sbook.storage.etcd_cluster import PEER_CA, PEER_PORT, PEER_PROTOCOL, EtcdCluster
from k8sbook.textbook.scenarios.identity.common import NODE_A_IP, token
from k8sbook.textbook.scenarios.identity.rows import (
    Answer,
    Row,
    attempt,
    dial_error,
    on_trace,
)

WEBHOOK = "labels.hooks.svc"
#: the etcd members of the peer row, on their own hosts (kubeadm's stacked members)
ETCD_HOSTS = {"cp-1": "192.168.0.21", "cp-2": "192.168.0.22", "cp-3": "192.168.0.23"}


def etcd_rows(c: Cluster, seed: int) -> list[Row]:
    """``kube-apiserver->etcd`` on the cluster's member, ``etcd->etcd`` on three members."""
    t = c.trace
    mark = t.mark()
    c.admin().get("pods", "web", "default")  # the watch cache has it: read etcd directly
    c.apiserver.storage.get("/registry/pods/default/web")
    ok = on_trace(t, mark, "kube-apiserver->etcd", lambda m: "kv" in m.result, "Range")
    impostor = Storage(c.network, c.clock, client="kube-apiserver", certificate="kubernetes")
    mark = t.mark()
    status = attempt(lambda: impostor.get("/registry/pods/default/web"))
    handshake = on_trace(t, mark, "kube-apiserver->etcd",
                         lambda m: not m.result.startswith("remote error"))
    members = EtcdCluster(c.network, c.clock, random.Random(f"{seed}/etcd"),
                          list(ETCD_HOSTS), list(ETCD_HOSTS.values()))
    members.start()
    members.wait_for_leader()
    mark = t.mark()
    c.run_for(0.3)
    peer = on_trace(t, mark, "etcd->etcd", lambda m: not m.result.startswith("remote error"))
    rogue = dial_error(lambda: c.network.dial(
        "etcd/rogue", Address.tcp(ETCD_HOSTS["cp-1"], PEER_PORT), ("etcd/rogue", None),
        protocol=PEER_PROTOCOL, verb="MsgApp", verify=PEER_CA, client_certificate="kubernetes"))
    for member in members.members.values():
        member.stop()
    return [
        Row("kube-apiserver->etcd", "mutual TLS (etcd CA)",
            "apiserver-etcd-client (etcd CA); etcd's serving certificate checked against "
            "the etcd CA", "none: etcd's own authentication is off unless enabled (kubeadm "
            "does not), so any certificate of its CA reads and writes every key", "—",
            "the apiserver reads /registry/pods/default/web", ok,
            "a client whose certificate the cluster CA signed",
            handshake,
            also=f"the request the impostor was serving then fails: {status.text}"),
        Row("etcd->etcd", "mutual TLS (etcd CA)",
            "peer certificate of the etcd CA, both ways (--peer-client-cert-auth)",
            "none: any peer of the CA", "—", "cp-1..cp-3 replicate", peer,
            "a peer whose certificate the cluster CA signed", rogue),
    ]


def webhook_row(c: Cluster) -> Row:
    """A validating webhook for ConfigMaps of namespace ``hooks``: its serving certificate is
    signed by ``webhook-ca``, which the configuration's caBundle holds; then an impostor with
    a certificate of another CA takes over the Service's address."""
    adm = c.admin()
    server = serve_behind_service(
        WebhookServer(WEBHOOK, lambda r: {"uid": r["uid"], "allowed": True},
                      certificate="webhook-ca"), adm, c.network, "hooks", "labels")
    ns = adm.get("namespaces", "hooks")
    ns["metadata"]["labels"] = {**ns["metadata"].get("labels", {}), "webhooks": "on"}
    adm.update(ns)
    adm.create({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "labels"},
        "webhooks": [{
            "name": "labels.example.com",
            "clientConfig": {"service": {"namespace": "hooks", "name": "labels",
                                         "path": "/validate"},
                             "caBundle": pki.bundle("webhook-ca")},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"webhooks": "on"}},
            "sideEffects": "None", "admissionReviewVersions": ["v1"]}]})
    t = c.trace
    ok = attempt(lambda: adm.create(objects.configmap("first", "hooks")), t)
    server.stop()
    assert server.address is not None
    impostor = WebhookServer(WEBHOOK, lambda r: {"uid": r["uid"], "allowed": True},
                             certificate="impostor-ca").serve(c.network, server.address)
    no = attempt(lambda: adm.create(objects.configmap("second", "hooks")), t)
    impostor.stop()
    adm.delete("validatingwebhookconfigurations", "labels")
    return Row("kube-apiserver->webhook", "serving certificate (caBundle)",
               "the webhook's serving certificate, checked against clientConfig.caBundle; "
               "the apiserver presents no client certificate unless configured "
               "(--admission-control-config-file)",
               "the webhook's own decision", "it is the admission step",
               "a webhook whose certificate webhook-ca signed", ok,
               "an impostor at the Service's address, with another CA's certificate", no)


def aggregator_row(c: Cluster, metrics: Any) -> Row:
    """``kubectl top pods`` through the aggregator; a caller that sends the front-proxy
    headers without the front-proxy CA's certificate; and a caBundle that does not vouch for
    metrics-server's self-signed certificate."""
    from k8sbook.textbook.scenarios.metrics import kubectl_top_pods

    adm = c.admin()
    t = c.trace

    def top() -> Answer:
        mark = t.mark()
        try:
            kubectl_top_pods(adm)
        except StatusError as err:
            causes = err.status.get("details", {}).get("causes") or [{}]
            return Answer(f"{err.code} {err.reason}: {causes[0].get('message', '')}", False,
                          str(err.code))
        return on_trace(t, mark, "kubectl->kube-apiserver", lambda m: m.result == "200",
                        "LIST")

    ok = top()
    forged = ClientCertificate("front-proxy-client")  # the right name, the cluster CA's
    resp: HTTPResponse = c.network.dial(
        "pod/default/web", metrics.address,
        HTTPRequest("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
                    ((USERNAME_HEADER, "kubernetes-admin"), (GROUP_HEADER, "system:masters")),
                    credentials=forged),
        protocol="HTTPS", verb="GET", resource="pods.metrics.k8s.io",
        result=lambda r: r.result())
    no = Answer(f"{resp.status}: {resp.body.get('message', '')}", resp.status < 400,
                str(resp.status))
    name = "v1beta1.metrics.k8s.io"
    merge = "application/merge-patch+json"
    adm.patch("apiservices", name, {"spec": {"insecureSkipTLSVerify": False,
                                             "caBundle": pki.bundle("ca")}},
              content_type=merge)
    untrusted = top()
    adm.patch("apiservices", name, {"spec": {"insecureSkipTLSVerify": True, "caBundle": None}},
              content_type=merge)
    return Row("kube-apiserver->metrics-server", "serving certificate + front-proxy certificate",
               "front-proxy-client (front-proxy CA) with X-Remote-User/X-Remote-Group, "
               "checked against requestheader-client-ca-file and -allowed-names",
               "delegated: metrics-server sends a SubjectAccessReview for the named user", "—",
               "kubectl top pods (kubernetes-admin, through the aggregator)", ok,
               "a pod sends the same headers with a cluster-CA certificate named "
               "front-proxy-client", no,
               also="with insecureSkipTLSVerify off and only the cluster CA in caBundle, the "
                    "apiserver refuses metrics-server's self-signed certificate: "
                    f"{untrusted.text}")


def cloud_row(c: Cluster, ccm: Any, api: CloudAPI) -> Row:
    """The cloud authenticates cloud-controller-manager's calls with its own credentials."""
    node = c.admin().get("nodes", "node-a")
    provider: ModelCloud = ccm.cloud
    mark = c.trace.mark()
    attempt(lambda: provider.instance_metadata(node))
    ok = on_trace(c.trace, mark, "cloud-controller-manager->cloud-api",
                  lambda m: m.result == "200")
    revoked = ModelCloud(c.network, ccm.instance, credentials="key/revoked")
    return Row("cloud-controller-manager->cloud-api", "cloud credentials",
               "the cloud's own: the control-plane machine's role (an instance profile, a "
               "workload identity or a key in a Secret)", "the cloud's policy (its IAM)", "—",
               "InstanceMetadata with the machine's role", ok,
               "the same call with a revoked access key",
               attempt(lambda: revoked.instance_metadata(node)))


def konnectivity_rows(c: Cluster, server: KonnectivityServer, mark: int) -> list[Row]:
    """The three Konnectivity paths, once the server and node-a's agent run (the apiserver's
    kubelet traffic, ``kubectl logs``, has gone through the tunnel since ``mark``)."""
    t = c.trace
    agent_sa = c.admin().get("serviceaccounts", "konnectivity-agent", "kube-system")
    KonnectivityAgent("konnectivity-agent/node-x", c.network, c.clock, node="node-x",
                      node_ip="192.168.0.99", server=Address.tcp(server.host, AGENT_PORT),
                      token=c.apiserver.tokens.issue(agent_sa, expiration_seconds=3600)
                      ).start().stop()
    robot = BearerToken(token(c, "robot"))
    path = "/containerLogs/default/web/app"

    def through_the_tunnel() -> Any:
        # a process on the control-plane host that can open the socket sends its own dial
        # (a Proxy stream of its own: DIAL_REQ, DATA, CLOSE_REQ)
        return konnectivity_client.proxy(
            c.network, Address.unix(CONTROL_PLANE_NODE, UDS_NAME),
            TunnelDial(Address.tcp(NODE_A_IP, 10250),
                       HTTPRequest("GET", path, credentials=robot), "HTTPS", "GET", path),
            random.Random("intruder"), protocol="gRPC over UDS", src="pod/kube-system/intruder")

    apiserver_dial = on_trace(t, mark, "kube-apiserver->konnectivity-server",
                              lambda m: m.result.startswith("connectID="), verb="DIAL_RSP")
    agent_dial = on_trace(t, mark, "konnectivity-agent->kubelet",
                          lambda m: m.result.startswith("200"))
    reply = through_the_tunnel()
    tunnelled = Answer(f"{reply.status}: {reply.body.get('message', '')}", reply.status < 400,
                       str(reply.status))
    elsewhere = dial_error(lambda: c.network.dial(
        "pod/default/web", Address.unix("node-a", UDS_NAME), None, protocol="gRPC over UDS",
        verb="DIAL_REQ"))
    return [
        Row("kube-apiserver->konnectivity-server", "Unix socket (file access)",
            "none over the Unix socket: whoever can open it on the control-plane host",
            "none", "—", "the apiserver's DIAL_REQ for kubectl logs", apiserver_dial,
            "a process on node-a, where no such socket exists", elsewhere),
        Row("konnectivity-agent->konnectivity-server", "service-account token",
            "konnectivity-agent's token, audience system:konnectivity-server",
            "the server's TokenReview, then the account must be kube-system/"
            "konnectivity-agent", "—", "node-a's agent connects",
            Answer("connected: " + ", ".join(sorted(server.backends)), bool(server.backends),
                   "connected"),
            "an agent whose token is for the apiserver's audience",
            Answer("refused: " + server.log[-1], False, "Unauthenticated")),
        Row("konnectivity-agent->kubelet", "x509 client certificate",
            "the apiserver's kubelet client certificate, carried through the tunnel",
            "kubelet webhook: SubjectAccessReview on nodes/proxy", "—",
            "kubectl logs through the tunnel", agent_dial,
            "a control-plane process sends its own dial through the socket, with a pod's "
            "token", tunnelled),
    ]
