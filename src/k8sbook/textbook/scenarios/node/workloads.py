"""Chapter 7, section 6, "The apiserver and the workloads": ``pods/proxy`` from
kube-apiserver to a pod's IP, and a pod calling the API with the bound service-account token
the kubelet got for it.

Mirrors ``pkg/registry/core/pod/rest`` (``ProxyREST``) and ``pkg/kubelet/token`` with
``k8s.io/client-go/rest``'s in-cluster config (v1.35.0), run on a fresh cluster.
"""

from __future__ import annotations

from typing import Any

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.apiserver.pod_proxy import pod_proxy
from k8sbook.apiserver.serviceaccount import unix_time
from k8sbook.client.in_cluster import in_cluster_client
from k8sbook.client.network import DialError
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.node.kube_proxy import walk_iptables
from k8sbook.node.token_manager import TOKEN_PATH, mount_service_account_token, token_request
from k8sbook.textbook.scenarios import Outcome, ScenarioResult, outcome, scenario
from k8sbook.textbook.scenarios.networking import kubernetes_endpointslice
from k8sbook.textbook.scenarios.node.common import (
    CH7,
    get_pod,
    machine_of,
    one_node,
)


# -- chapter 7, section 6: the apiserver and the workloads ---------------------------------
def _proxy_outcome(fn: Any) -> str:
    try:
        code = fn()
    except StatusError as err:
        return f"{err.code} {err.reason}: {err.status['message']}"
    return f"{code} (relayed from the pod)"


@scenario("node-apiserver-to-pod", "kube-apiserver proxies an HTTP request to a pod's IP: "
          "pods/proxy, plain HTTP, and its refusals", CH7)
def apiserver_to_pod(seed: int = 0) -> ScenarioResult:
    """kubectl reads a pod's ``/healthz`` through ``pods/proxy``: the apiserver dials the pod
    IP itself and relays the answer (200, then 503 once the app is unhealthy). Then the
    refusals: a closed port, a pod without an IP, a missing pod, and the scheduler, whose
    RBAC role has no ``pods/proxy``."""
    cluster, kubelet = one_node(seed)
    adm = cluster.admin()
    adm.create(objects.pod("web", node_name="node-a", containers=[
        objects.container("app", "nginx:1.27", ports=[8080])]))
    adm.create(objects.pod("queued", image="nginx:1.27"))  # never scheduled: no node, no IP
    cluster.run_for(2)
    mark = cluster.trace.mark()
    healthy = _proxy_outcome(lambda: pod_proxy(adm, "default", "web", "/healthz"))
    kubelet.set_app_healthy("default", "web", False)
    unhealthy = _proxy_outcome(lambda: pod_proxy(adm, "default", "web", "/healthz"))
    kubelet.set_app_healthy("default", "web", True)
    closed = _proxy_outcome(lambda: pod_proxy(adm, "default", "web", "/", port=9090))
    no_ip = _proxy_outcome(lambda: pod_proxy(adm, "default", "queued", "/"))
    missing = _proxy_outcome(lambda: pod_proxy(adm, "default", "ghost", "/"))
    scheduler = cluster.client("kube-scheduler")
    refused = _proxy_outcome(lambda: pod_proxy(scheduler, "default", "web", "/healthz"))
    messages = [m for m in cluster.trace.since(mark) if m.dst != "etcd"]
    web = get_pod(cluster, "web")
    facts = {"podIP": web["status"]["podIP"], "phase": web["status"]["phase"],
             "healthy": healthy, "unhealthy": unhealthy, "closed_port": closed,
             "no_ip": no_ip, "missing": missing, "scheduler": refused,
             "proxied": [(m.verb, m.resource, m.result) for m in messages
                         if m.path == "kube-apiserver->pod"],
             "kubelet_involved": any(m.path == "kube-apiserver->kubelet" for m in messages)}
    return ScenarioResult("node-apiserver-to-pod", cluster, messages, facts)


@scenario("node-pod-to-apiserver", "A workload calls the API: the kubelet gets it a bound "
          "service-account token (TokenRequest), the pod uses it on the kubernetes Service", CH7)
def pod_to_apiserver(seed: int = 0, *, unbind: bool = False,
                     delete_pod: bool = False) -> ScenarioResult:
    """Pod ``app`` on node-a runs as ServiceAccount ``reader``, which a Role lets list pods.
    Starting the pod, node-a's kubelet requests a token bound to it and writes it into the
    container's ``/var/run/secrets/kubernetes.io/serviceaccount/``. Code in the container
    builds its in-cluster client from that file and from ``KUBERNETES_SERVICE_HOST``/``_PORT``
    and dials ``10.96.0.1:443`` from the pod's IP, through node-a's netfilter rules (kube-proxy
    writes them; without them the dial is refused). It may list pods and is refused Secrets.
    The kubelet is refused a token for a pod on another node, and one for a ServiceAccount no
    pod of its node uses.

    With ``unbind`` (chapter 7's exercise) the administrator then deletes the RoleBinding and
    the pod lists pods again with the same token: ``facts["after_unbind"]``. With
    ``delete_pod`` the administrator deletes pod ``app`` instead and, once the kubelet has
    finished and the object is gone, the same token is sent again: ``facts["after_delete"]``
    (the apiserver's service-account authenticator no longer finds the pod it is bound to)."""
    cluster = Cluster(seed)
    kubelet = cluster.add_kubelet("node-a").start()
    kubernetes_endpointslice(cluster)
    proxy = cluster.add_kube_proxy("node-a", node_ip=kubelet.address)
    cluster.run_for(1)
    adm = cluster.admin()
    for sa in ("reader", "builder"):
        adm.create({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": sa, "namespace": "default"}})
    rbac_group = "rbac.authorization.k8s.io"
    adm.create({"apiVersion": f"{rbac_group}/v1", "kind": "Role",
                "metadata": {"name": "pod-reader", "namespace": "default"},
                "rules": [{"apiGroups": [""], "resources": ["pods"],
                           "verbs": ["get", "list", "watch"]}]})
    adm.create({"apiVersion": f"{rbac_group}/v1", "kind": "RoleBinding",
                "metadata": {"name": "reader-reads-pods", "namespace": "default"},
                "roleRef": {"apiGroup": rbac_group, "kind": "Role", "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader",
                              "namespace": "default"}]})
    mark = cluster.trace.mark()
    adm.create(objects.pod("app", node_name="node-a", serviceAccountName="reader",
                           containers=[objects.container("app", "registry.k8s.io/kubectl:v1.32.0")]))
    adm.create(objects.pod("elsewhere", node_name="node-b", serviceAccountName="reader"))
    cluster.run_for(3)
    runtime = machine_of(cluster, "node-a").runtime
    process = runtime.process(kubelet.container_id("default", "app", "app"))
    token = process.read_file(TOKEN_PATH) or ""
    tr = mount_service_account_token(kubelet, "default", "app")  # the cached TokenRequest
    client = in_cluster_client(process, network=cluster.network, clock=cluster.clock)
    user = cluster.apiserver.authn.authenticate(client.credentials)
    try:
        listed: Any = sorted(p["metadata"]["name"]
                             for p in client.list("pods", "default")["items"])
        secrets = outcome(lambda: client.list("secrets", "default"))
    except DialError as err:
        listed, secrets = f"dial refused: {err}", Outcome("not tried")
    after_unbind = None
    if unbind:
        adm.delete("rolebindings", "reader-reads-pods", "default")
        after_unbind = str(outcome(lambda: client.list("pods", "default"), cluster.trace))
    pod_ip = get_pod(cluster, "app")["status"]["podIP"]
    route = walk_iptables(proxy.iptables_save, src=pod_ip, dst="10.96.0.1", dport=443)
    other = token_request(get_pod(cluster, "elsewhere"))
    other_node = outcome(lambda: kubelet.client.request(Request(
        "create", "serviceaccounts", "", "default", "reader", "token", body=other)))
    unrelated = token_request(get_pod(cluster, "app"))
    unrelated["metadata"]["name"] = "builder"
    no_relation = outcome(lambda: kubelet.client.request(Request(
        "create", "serviceaccounts", "", "default", "builder", "token", body=unrelated)))
    claims = cluster.apiserver.tokens.claims(token)  # verified with sa.pub
    k8s_claims = claims["kubernetes.io"]
    after_delete = None
    if delete_pod:
        adm.delete("pods", "app", "default")
        cluster.run_for(40)  # the kubelet stops the container and removes the object
        after_delete = {"pod_gone": outcome(lambda: adm.get("pods", "app", "default")).code,
                        "list": str(outcome(lambda: client.list("pods", "default"),
                                            cluster.trace))}
    requests = [m for m in cluster.trace.since(mark) if m.resource == "serviceaccounts/token"]
    first = next(m for m in requests if m.src == "kubelet/node-a")
    messages = [m for m in cluster.trace.since(mark)
                if m.src.startswith("pod/") or m.resource == "serviceaccounts/token"]
    facts = {"token_request": {"t": first.t, "path": first.path, "result": first.result},
             "token_request_spec": tr["spec"],
             "expirationTimestamp": tr["status"]["expirationTimestamp"],
             "token_in_container": token[:24] + "...",
             "token_is_the_issued_one": k8s_claims["pod"]["name"] == "app",
             "env": {k: v for k, v in process.env.items() if k.startswith("KUBERNETES_SERVICE")},
             "issued_at": claims["iat"] - unix_time(0),
             "real_lifetime_s": claims["exp"] - claims["iat"],
             "warn_after_s": k8s_claims["warnafter"] - claims["iat"],
             "identity": user.name, "groups": list(user.groups), "extra": dict(user.extra),
             "listed_pods": listed, "secrets": secrets,
             "route": {"dst": "10.96.0.1:443", "verdict": route.verdict},
             "other_node": other_node, "no_relation": no_relation,
             **({"after_unbind": after_unbind} if unbind else {}),
             **({"after_delete": after_delete} if delete_pod else {})}
    return ScenarioResult("node-pod-to-apiserver", cluster, messages, facts)
