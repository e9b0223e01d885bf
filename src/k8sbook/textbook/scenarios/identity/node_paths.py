"""The rows of the paths on a node and in the pod network: who may open a Unix socket or run a
plugin binary, what the kubelet's port checks, and the paths that check nobody.

The book's own code. On a node the "identity" is the right to open a socket file or to execute
a binary (root, file permissions): the model has no users or file modes on a machine, so the
wrong caller shown is one on another machine, where that socket or binary does not exist
(``dial unix ...: no such file or directory``); a process on the same node without root would
get ``permission denied``, which the model does not simulate. Probes, Services, Ingress
backends and DNS authenticate no one by default: the "wrong" caller, a pod of another
namespace, is served, and only a NetworkPolicy (enforced by the network plugin; not in the
model) would stop it.
"""

from __future__ import annotations

from typing import Any

from k8sbook.addons.dns import StubResolver
from k8sbook.api.request import BearerToken
from k8sbook.apiserver.pod_proxy import pod_proxy_get
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address
from k8sbook.cluster import Cluster
from k8sbook.node.cni import CNIRequest, exec_plugin
from k8sbook.node.cri import CRIClient
from k8sbook.node.csi import CSIClient
from k8sbook.node.runc import exec_runc
from k8sbook.textbook.scenarios.identity.common import kubelet_api, logs_outcome, token
from k8sbook.textbook.scenarios.identity.rows import Answer, Row, answer, attempt, on_trace

#: a process in a pod on a machine without the socket or binary (node-b has no runtime)
ELSEWHERE = "pod/default/intruder"
DRIVER = "hostpath.csi.k8s.io"


def http_get(c: Cluster, src: str, pod: dict[str, Any], host: str, port: int,
             path: str = "/") -> Answer:
    """The application in ``pod`` sends ``GET path`` to ``host:port``: what answered."""
    def get() -> HTTPResponse:
        resp: HTTPResponse = c.network.dial(
            src, Address.tcp(host, port), HTTPRequest("GET", path), protocol="HTTP",
            verb="GET", resource=f"{host}:{port}{path}", result=lambda r: r.result(),
            via=pod["spec"]["nodeName"], source_ip=pod["status"]["podIP"])
        return resp

    out = attempt(get)
    if not out.served:
        return out
    resp = get()
    return Answer(f"{resp.status} from {host}:{port}", 200 <= resp.status < 300,
                  str(resp.status))


def socket_rows(c: Cluster, mark: int) -> list[Row]:
    """The kubelet's sockets (CRI, CSI) and the runtime's binaries (CNI, runc)."""
    t = c.trace

    def grpc_ok(m: Any) -> bool:
        return bool(m.result == "OK")

    cri = CRIClient(ELSEWHERE, c.network, "node-b")
    csi = CSIClient(ELSEWHERE, c.network, "node-b", DRIVER)
    where = "a process on node-b, where no such socket exists"
    return [
        Row("kubelet->container-runtime", "Unix socket (file access)",
            "none: whoever can open /run/containerd/containerd.sock, a root-owned socket",
            "none (containerd serves every call on its socket)", "—",
            "the kubelet on node-a", on_trace(t, mark, "kubelet->container-runtime", grpc_ok),
            where, attempt(lambda: cri.call("ListPodSandbox"))),
        Row("kubelet->csi-node-plugin", "Unix socket (file access)",
            f"none: whoever can open /var/lib/kubelet/plugins/{DRIVER}/csi.sock",
            "none (the driver serves every call on its socket)", "—",
            "the kubelet registers the driver", on_trace(t, mark, "kubelet->csi-node-plugin",
                                                         grpc_ok),
            where, attempt(csi.node_get_info)),
        Row("container-runtime->cni-plugin", "executed binary",
            "none: containerd executes /opt/cni/bin/bridge as root", "none", "—",
            "containerd runs ADD for pod web",
            on_trace(t, mark, "container-runtime->cni-plugin", lambda m: "error" not in
                     m.result, "ADD"),
            "a process on node-b, where the binary is not installed",
            attempt(lambda: exec_plugin(c.network, ELSEWHERE, "node-b", "bridge",
                                        CNIRequest("ADD", "0" * 64, "/var/run/netns/x")))),
        Row("container-runtime->oci-runtime", "executed binary",
            "none: the shim executes /usr/bin/runc as root", "none", "—",
            "the shim runs runc create for web",
            on_trace(t, mark, "container-runtime->oci-runtime", lambda m: m.result == "ok",
                     "create"),
            "a process on node-b, where runc is not installed",
            attempt(lambda: exec_runc(c.network, ELSEWHERE, "node-b", "state", "0" * 64))),
    ]


def kubelet_rows(c: Cluster, mark: int) -> list[Row]:
    """The kubelet's port 10250: the apiserver's certificate and metrics-server's token,
    each authorized by a SubjectAccessReview."""
    robot = BearerToken(token(c, "robot"))
    return [
        Row("kube-apiserver->kubelet", "x509 client certificate",
            "apiserver-kubelet-client (CN kube-apiserver-kubelet-client), checked against "
            "the cluster CA", "kubelet webhook: SubjectAccessReview on nodes/proxy", "—",
            "kubectl logs web", answer(logs_outcome(c)),
            "a pod dials :10250 with its own token", answer(kubelet_api(c, "pod/default/web",
                                                                        robot))),
        Row("metrics-server->kubelet", "service-account token",
            "ServiceAccount kube-system/metrics-server (TokenReview by the kubelet)",
            "kubelet webhook: SubjectAccessReview on nodes/metrics", "—",
            "metrics-server scrapes /metrics/resource",
            on_trace(c.trace, mark, "metrics-server->kubelet", lambda m: m.result == "200"),
            "a pod scrapes with its own token",
            answer(kubelet_api(c, "pod/default/web", robot, "/metrics/resource"))),
    ]


def open_rows(c: Cluster, mark: int, web: dict[str, Any], stranger: dict[str, Any],
              neighbour: dict[str, Any], resolvers: tuple[StubResolver, StubResolver],
              ingress_answer: Answer) -> list[Row]:
    """Paths that authenticate nobody: probes, pod to pod, DNS, Ingress backends, and the
    apiserver's proxy (which authorizes the *user*, not itself, and shows the pod nothing).
    ``web`` serves HTTP on 8080; ``neighbour`` is a pod of its namespace, ``stranger`` one of
    another namespace; ``resolvers`` are theirs."""
    t = c.trace
    ip, name = web["status"]["podIP"], web["metadata"]["name"]
    reader = c.client("pod/default/web", BearerToken(token(c, "reader")))
    nothing = "none by default (a NetworkPolicy, enforced by the network plugin, could)"

    def lookup(resolver: StubResolver) -> Answer:
        found = resolver.lookup("kubernetes.default.svc.cluster.local")
        last = found.attempts[-1] if found.attempts else None
        text = f"{last.rcode} {', '.join(found.answer)}" if last else "no answer"
        return Answer(text, found.found, last.rcode if last else "none")

    stranger_src = f"pod/{stranger['metadata']['name']}"
    return [
        Row("kubelet->pod", "none", "none: probes carry no credentials", nothing, "—",
            f"the kubelet's readiness probe of {name}",
            on_trace(t, mark, "kubelet->pod", lambda m: m.result.startswith("200")),
            "a pod of namespace other GETs the same port",
            http_get(c, stranger_src, stranger, ip, 8080)),
        Row("pod->pod", "none", "none at the network level (a mesh can add mTLS)", nothing,
            "—", "a pod of the same namespace", http_get(c, f"pod/{neighbour['metadata']['name']}",
                                                      neighbour, ip, 8080),
            "a pod of namespace other", http_get(c, stranger_src, stranger, ip, 8080)),
        Row("pod->coredns", "none", "none: DNS queries carry no identity", nothing, "—",
            "a pod of namespace default resolves a name", lookup(resolvers[0]),
            "a pod of namespace other resolves the same name", lookup(resolvers[1])),
        Row("ingress-controller->pod", "none",
            "none by default (backend TLS or a mesh can add it)", nothing, "—",
            f"the controller proxies GET / to {name}", ingress_answer,
            "a pod of namespace other calls the backend directly",
            http_get(c, stranger_src, stranger, ip, 8080)),
        Row("kube-apiserver->pod", "none",
            "none: the apiserver proves nothing to the pod; it authorizes the user",
            "RBAC on pods/proxy (the caller's, checked by the apiserver)", "—",
            f"kubernetes-admin GETs pods/{name}:8080/proxy",
            attempt(lambda: pod_proxy_get(c.admin(), "default", name, "/", 8080), t),
            "reader (may get pods, not pods/proxy)",
            attempt(lambda: pod_proxy_get(reader, "default", name, "/", 8080), t)),
    ]
