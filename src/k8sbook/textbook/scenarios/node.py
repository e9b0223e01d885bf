"""Scenarios of the node chapters: 7, "The kubelet pulls", and 8, "Inside the node".

Each function is a complete, deterministic run on a fresh :class:`~k8sbook.cluster.Cluster`.
Pods are created with ``spec.nodeName`` already set, which Kubernetes allows: such a pod never
goes through the scheduler, and the kubelet of that node picks it up directly.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.apiserver.kubelet_client import pod_exec, pod_logs, pod_port_forward
from k8sbook.apiserver.pod_proxy import pod_proxy
from k8sbook.client.in_cluster import in_cluster_client
from k8sbook.client.network import DialError
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.core.trace import Message
from k8sbook.node.csi import CSINodePlugin
from k8sbook.node.dns import format_resolv_conf
from k8sbook.node.kube_proxy import walk_iptables
from k8sbook.node.kubelet import Kubelet, http_probe
from k8sbook.node.machine import Machine
from k8sbook.node.token_manager import TOKEN_PATH, mount_service_account_token, token_request
from k8sbook.textbook.scenarios import ScenarioResult, outcome, scenario
from k8sbook.textbook.scenarios.networking import kubernetes_endpointslice

CH7 = "07-the-kubelet-pulls"
CH8 = "08-inside-the-node"
#: the CRI calls the PLEG makes every second; left out where a chapter shows one pod's story
RELIST = ("ListPodSandbox", "ListContainers")


def _quiet(messages: list[Message]) -> list[Message]:
    """Drop the PLEG's periodic relists and the apiserver's etcd traffic."""
    return [m for m in messages if m.verb not in RELIST and m.dst != "etcd"]


def _pod(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.admin().get("pods", name, "default")


def _one_node(seed: int) -> tuple[Cluster, Kubelet]:
    """A cluster with one registered node, ``node-a``, and its running kubelet."""
    cluster = Cluster(seed)
    kubelet = cluster.add_kubelet("node-a").start()
    cluster.run_for(1)
    return cluster, kubelet


def _machine(cluster: Cluster, node: str) -> Machine:
    machine = cluster.components[f"machine/{node}"]
    assert isinstance(machine, Machine)
    return machine


def _exec(cluster: Cluster, pod: str, command: list[str], container: str = "") -> \
        dict[str, Any]:
    """``kubectl exec``: POST pods/exec through the apiserver; the body the kubelet relays."""
    params: dict[str, Any] = {"command": command}
    if container:
        params["container"] = container
    body: dict[str, Any] = cluster.admin().request(Request(
        "create", "pods", "", "default", pod, "exec", params=params))
    return body


def _conditions(pod: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}




# -- chapter 7 ------------------------------------------------------------------------------
@scenario("node-kubelet-pulls", "The kubelet registers its Node, watches its pods and "
          "reports their status", CH7)
def kubelet_pulls(seed: int = 0) -> ScenarioResult:
    """A kubelet starts on node-a, registers the Node and its Lease. kubectl creates a pod
    already bound to node-a; the kubelet hears of it on its own watch, runs it and writes
    its status back through ``pods/status``."""
    cluster = Cluster(seed)
    mark = cluster.trace.mark()
    kubelet = cluster.add_kubelet("node-a").start()
    cluster.run_for(1)
    cluster.admin().create(objects.pod("web", image="nginx:1.27", node_name="node-a"))
    cluster.run_for(2.5)
    messages = cluster.trace.since(mark)
    pod = _pod(cluster, "web")
    api = [m for m in messages if m.path == "kubelet->kube-apiserver"]
    facts = {
        "identity": cluster.apiserver.authn.authenticate(kubelet.client.credentials).name,
        "groups": list(cluster.apiserver.authn.authenticate(kubelet.client.credentials).groups),
        "pod_watch_field_selector": kubelet.pod_informer.reflector.selectors["fieldSelector"],
        "node_watch_field_selector": kubelet.node_informer.reflector.selectors["fieldSelector"],
        "kubelet_requests": sorted({f"{m.verb} {m.resource}" for m in api
                                    if "watch" not in m.protocol}),
        "apiserver_to_kubelet": [m for m in messages if m.path == "kube-apiserver->kubelet"],
        "phase": pod["status"]["phase"], "podIP": pod["status"].get("podIP"),
        "hostIP": pod["status"]["hostIP"], "conditions": _conditions(pod),
        "status_writes": [m.t for m in api if m.resource == "pods/status"],
    }
    return ScenarioResult("node-kubelet-pulls", cluster, messages, facts)


@scenario("node-kubelet-confined", "What node-b's kubelet may not do: other nodes, other "
          "nodes' pods, unrelated objects", CH7)
def kubelet_confined(seed: int = 0) -> ScenarioResult:
    """Two nodes; a pod on node-a that mounts a ConfigMap. node-b's credentials are used for
    requests about node-a's objects: the Node authorizer or the NodeRestriction admission
    plugin refuses each with 403, and nothing is written."""
    cluster = Cluster(seed)
    cluster.add_kubelet("node-a").start()
    cluster.add_kubelet("node-b").start()
    cluster.run_for(1)
    pod = objects.pod("web", node_name="node-a")
    pod["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "web-config"}}]
    adm = cluster.admin()
    adm.create(objects.configmap("web-config", data={"greeting": "hello"}))
    adm.create(pod)
    cluster.run_for(2)
    revision = cluster.etcd.revision
    mark = cluster.trace.mark()
    a, b = cluster.client("kubelet/node-a"), cluster.client("kubelet/node-b")
    outcomes = {
        "a: get its own Node": outcome(lambda: a.get("nodes", "node-a")),
        "a: get the ConfigMap its pod mounts": outcome(
            lambda: a.get("configmaps", "web-config", "default")),
        "a: watch pods with spec.nodeName=node-a": outcome(
            lambda: a.list("pods", fieldSelector="spec.nodeName=node-a")),
        "b: get node-a's Node": outcome(lambda: b.get("nodes", "node-a")),
        "b: label node-a": outcome(
            lambda: b.patch("nodes", "node-a", {"metadata": {"labels": {"x": "y"}}})),
        "b: list all pods": outcome(lambda: b.list("pods")),
        "b: get node-a's pod": outcome(lambda: b.get("pods", "web", "default")),
        "b: write node-a's pod status": outcome(
            lambda: b.patch("pods", "web", {"status": {"phase": "Failed"}}, "default",
                            subresource="status")),
        "b: delete node-a's pod": outcome(lambda: b.delete("pods", "web", "default")),
        "b: get the ConfigMap": outcome(
            lambda: b.get("configmaps", "web-config", "default")),
        "b: read node-a's Lease": outcome(
            lambda: b.get("leases", "node-a", "kube-node-lease")),
    }
    facts = {"outcomes": outcomes, "revision_unchanged": cluster.etcd.revision == revision}
    return ScenarioResult("node-kubelet-confined", cluster, cluster.trace.since(mark), facts)


@scenario("node-heartbeats", "Five and a half quiet minutes: a Lease renewal every 10 s, "
          "NodeStatus only every 5 min", CH7)
def heartbeats(seed: int = 0) -> ScenarioResult:
    """One kubelet and nothing to do for 330 s of virtual time."""
    cluster = Cluster(seed)
    cluster.add_kubelet("node-a").start()
    cluster.run_for(330)
    api = cluster.trace.filter(path="kubelet->kube-apiserver")
    facts = {
        "lease_writes": [m.t for m in api if m.resource == "leases"],
        "lease_verbs": sorted({m.verb for m in api if m.resource == "leases"}),
        "node_status_writes": [m.t for m in api if m.resource == "nodes/status"],
        "lease": cluster.admin().get("leases", "node-a", "kube-node-lease")["spec"],
    }
    return ScenarioResult("node-heartbeats", cluster, api, facts)


@scenario("node-unreachable", "A kubelet stops: Ready becomes Unknown after the grace "
          "period, the node is tainted, its pod is evicted 300 s later", CH7)
def unreachable(seed: int = 0) -> ScenarioResult:
    """kube-controller-manager runs the node lifecycle and taint eviction controllers. At
    t=60 s the kubelet on node-a stops (the machine died). Nobody tells the control plane:
    it notices the Lease is no longer renewed."""
    cluster = Cluster(seed)
    kcm = cluster.add_controller_manager(controllers=("nodelifecycle", "tainteviction"))
    kcm.start()
    kubelet = cluster.add_kubelet("node-a").start()
    cluster.run_for(20)
    cluster.admin().create(objects.pod("web", image="nginx:1.27", node_name="node-a"))
    cluster.run_for(40)
    stopped_at = cluster.clock.now()
    kubelet.stop()
    cluster.run_for(480)
    lifecycle, eviction = kcm.controllers["nodelifecycle"], kcm.controllers["tainteviction"]
    node = cluster.admin().get("nodes", "node-a")
    pod = _pod(cluster, "web")
    renewals = [m.t for m in cluster.trace.filter(path="kubelet->kube-apiserver")
                if m.resource == "leases" and m.verb == "UPDATE"]
    facts = {
        "kubelet_stopped_at": stopped_at,
        "last_lease_renewal": max(renewals),
        "node_log": lifecycle.log, "eviction_log": eviction.log,
        "taints": sorted((t["key"], t["effect"]) for t in node["spec"].get("taints", [])),
        "node_conditions": {c["type"]: (c["status"], c["reason"])
                            for c in node["status"]["conditions"]},
        "pod_deletion_timestamp": pod["metadata"].get("deletionTimestamp"),
        "pod_conditions": _conditions(pod),
        "tolerations": pod["spec"]["tolerations"],
    }
    messages = [m for m in cluster.trace.messages if m.dst != "etcd"
                and m.verb not in RELIST]
    return ScenarioResult("node-unreachable", cluster, messages, facts)


def unreachable_timeline(result: ScenarioResult) -> Any:
    """The node's story on a timeline: kubelet alive, lease renewals, Ready condition,
    taints and the pod's deletion."""
    from k8sbook.textbook import figures

    f = result.facts
    stop = f["kubelet_stopped_at"]
    unknown = next(t for t, _, what in f["node_log"] if what == "Ready=Unknown")
    evicted = f["eviction_log"][0][0]
    end = evicted + 40
    spans = [("kubelet", 0.0, stop, "running", "#2e8b57"),
             ("kubelet", stop, end, "stopped", "#c0392b"),
             ("Node Ready", 0.0, unknown, "True", "#2e8b57"),
             ("Node Ready", unknown, end, "Unknown", "#7f8c8d"),
             ("taint", unknown, end, "unreachable:NoExecute", "#e67e22"),
             ("pod web", 20.0, evicted, "Running", "#326ce5"),
             ("pod web", evicted, end, "Terminating", "#8e44ad")]
    points = [("kubelet", f["last_lease_renewal"], "last Lease renewal"),
              ("Node Ready", unknown, f"grace period over (t={unknown:g})"),
              ("pod web", evicted, f"300 s later: deleted (t={evicted:g})")]
    return figures.timeline(["kubelet", "Node Ready", "taint", "pod web"], spans, points,
                            title="node-a goes silent")


@scenario("node-apiserver-to-kubelet", "The other direction: logs, exec and port-forward "
          "make kube-apiserver call the kubelet on 10250", CH7)
def apiserver_to_kubelet(seed: int = 0) -> ScenarioResult:
    """kubectl asks for a pod's logs, runs a command in it and forwards a port. Each time
    the apiserver opens a connection to the kubelet, which authorizes the apiserver with a
    SubjectAccessReview. Then two failures: the apiserver verifying the kubelet's serving
    certificate, and the kubelet gone."""
    cluster, kubelet = _one_node(seed)
    adm = cluster.admin()
    adm.create(objects.pod("web", node_name="node-a", containers=[
        objects.container("app", "nginx:1.27", ports=[8080])]))
    cluster.run_for(2)
    mark = cluster.trace.mark()
    logs = pod_logs(adm, "default", "web")
    out = pod_exec(adm, "default", "web", ["cat", "/etc/hostname"])
    fwd = pod_port_forward(adm, "default", "web", 8080)
    messages = [m for m in cluster.trace.since(mark) if m.dst != "etcd"]
    cluster.apiserver.kubelet_client.certificate_authority = "kubernetes"
    with_ca = outcome(lambda: pod_logs(adm, "default", "web"))
    cluster.apiserver.kubelet_client.certificate_authority = None
    kubelet.stop()
    gone = outcome(lambda: pod_logs(adm, "default", "web"))
    facts = {"logs": logs, "exec": out, "port_forward": fwd,
             "with_kubelet_certificate_authority": with_ca, "kubelet_stopped": gone,
             "sar_count": len([m for m in messages if m.resource == "subjectaccessreviews"])}
    return ScenarioResult("node-apiserver-to-kubelet", cluster, messages, facts)


# -- chapter 8 ------------------------------------------------------------------------------
@scenario("node-cri-lifecycle", "A two-container pod through the CRI: sandbox, CNI, images, "
          "containers, then deletion", CH8)
def cri_lifecycle(seed: int = 0) -> ScenarioResult:
    """A pod with a web server and a sidecar, bound to node-a, then deleted. A second pod
    shows what sharing a network namespace means."""
    cluster, kubelet = _one_node(seed)
    adm = cluster.admin()
    mark = cluster.trace.mark()
    adm.create(objects.pod("web", node_name="node-a", containers=[
        objects.container("server", "nginx:1.27", ports=[8080]),
        objects.container("sidecar", "busybox:1.36")]))
    cluster.run_for(2)
    started = cluster.trace.mark()
    other_mark = cluster.trace.mark()
    adm.create(objects.pod("other", node_name="node-a", image="busybox:1.36"))
    cluster.run_for(2)
    other_msgs = cluster.trace.since(other_mark)
    rt = _machine(cluster, "node-a").runtime
    web_ip = _pod(cluster, "web")["status"]["podIP"]

    def nc(pod: str, container: str, host: str) -> bool:
        return _exec(cluster, pod, ["nc", "-z", host, "8080"], container)["exitCode"] == 0
    reach = {
        "sidecar -> localhost:8080": nc("web", "sidecar", "localhost"),
        "other pod -> localhost:8080": nc("other", "app", "localhost"),
        f"other pod -> {web_ip}:8080": nc("other", "app", web_ip),
    }
    rec = kubelet.record("default", "web")
    assert rec is not None
    sb = rt.sandboxes[rec.sandbox_id]
    del_mark = cluster.trace.mark()
    adm.delete("pods", "web", "default")
    cluster.run_for(2)
    start_msgs = [m for m in cluster.trace.messages[mark:started] if m.verb not in RELIST]
    delete_msgs = [m for m in cluster.trace.since(del_mark) if m.verb not in RELIST]
    node_local = ("kubelet->container-runtime", "container-runtime->cni-plugin",
                  "container-runtime->oci-runtime")
    facts = {
        "start_calls": [(m.path, m.verb) for m in start_msgs if m.path in node_local],
        "delete_calls": [(m.path, m.verb) for m in delete_msgs if m.path in node_local],
        "ips": {"web": web_ip, "other": _pod(cluster, "other")["status"]["podIP"]},
        "netns": sb.netns, "reach": reach,
        "other_pulls": [m.resource for m in other_msgs if m.verb == "PullImage"],
    }
    messages = [m for m in cluster.trace.since(mark) if m.dst != "etcd"]
    return ScenarioResult("node-cri-lifecycle", cluster, messages, facts)


@scenario("node-pleg-restart", "A container dies; the PLEG's relist notices within a "
          "second and the kubelet restarts it", CH8)
def pleg_restart(seed: int = 0) -> ScenarioResult:
    """The web server's process is killed (as the OOM killer would) at t=10.3 s. No CRI call
    reports it: the kubelet finds out at its next relist."""
    cluster, kubelet = _one_node(seed)
    cluster.admin().create(objects.pod("web", image="nginx:1.27", node_name="node-a"))
    cluster.clock.run_until(10.3)
    mark = cluster.trace.mark()
    _machine(cluster, "node-a").runtime.kill(kubelet.container_id("default", "web", "app"),
                                             137, "OOMKilled")
    killed_at = cluster.clock.now()
    cluster.run_for(2)
    messages = [m for m in cluster.trace.since(mark) if m.dst != "etcd"]
    pod = _pod(cluster, "web")
    cs = pod["status"]["containerStatuses"][0]
    facts = {"killed_at": killed_at,
             "noticed_at": next(m.t for m in messages if m.verb == "ContainerStatus"),
             "restart_count": cs["restartCount"],
             "last_state": cs["lastState"]["terminated"]["reason"],
             "exit_code": cs["lastState"]["terminated"]["exitCode"],
             "state": next(iter(cs["state"]))}
    return ScenarioResult("node-pleg-restart", cluster, messages, facts)


@scenario("node-crashloop", "A container that exits at once: restarts back off 10 s, 20 s, "
          "40 s ... up to 5 min (CrashLoopBackOff)", CH8)
def crashloop(seed: int = 0) -> ScenarioResult:
    cluster, _ = _one_node(seed)
    c = objects.container("app", "busybox:1.36")
    c["command"] = ["sh", "-c", "exit 1"]
    cluster.admin().create(objects.pod("crash", node_name="node-a", containers=[c]))
    cluster.run_for(900)
    pod = _pod(cluster, "crash")
    starts = [m.t for m in cluster.trace.filter(verb="StartContainer")]
    runs = sorted(((c.started_at, c.finished_at)
                   for c in _machine(cluster, "node-a").runtime.containers.values()),
                  key=lambda r: r[0])
    facts = {"starts": starts,
             "gaps": [round(b - a, 1) for a, b in pairwise(starts)],
             "runs": runs, "phase": pod["status"]["phase"],
             "waiting": pod["status"]["containerStatuses"][0]["state"]["waiting"],
             "restart_count": pod["status"]["containerStatuses"][0]["restartCount"]}
    return ScenarioResult("node-crashloop", cluster, cluster.trace.filter(
        path="kubelet->container-runtime", verb="StartContainer"), facts)


def crashloop_timeline(result: ScenarioResult) -> Any:
    from k8sbook.textbook import figures

    f = result.facts
    spans = []
    runs = f["runs"]
    for i, (start, end) in enumerate(runs):
        spans.append(("container", start, max(end, start + 1.5), "", "#c0392b"))
        if i + 1 < len(runs):
            gap = runs[i + 1][0] - end
            spans.append(("container", end, runs[i + 1][0],
                          f"back-off {gap:.0f} s" if gap > 60 else "", "#e67e22"))
    starts = f["starts"]
    points = [("container", s, f"start #{i}") for i, s in enumerate(starts)
              if i == 0 or s - starts[i - 1] > 30]
    return figures.timeline(["container"], spans, points,
                            title="Restarts of a container that exits at once")


@scenario("node-image-pull", "An image that does not exist: ErrImagePull, then "
          "ImagePullBackOff, with pulls retried 10 s, 20 s, 40 s ... apart", CH8)
def image_pull(seed: int = 0) -> ScenarioResult:
    cluster = Cluster(seed)
    cluster.add_kubelet("node-a").start()
    _machine(cluster, "node-a").runtime.registry.missing.add("nginx:1.99-typo")
    cluster.run_for(1)
    adm = cluster.admin()
    adm.create(objects.pod("typo", image="nginx:1.99-typo", node_name="node-a"))
    cluster.run_for(0.5)
    first = _pod(cluster, "typo")["status"]["containerStatuses"][0]["state"]["waiting"]
    cluster.run_for(5)
    second = _pod(cluster, "typo")["status"]["containerStatuses"][0]["state"]["waiting"]
    cluster.run_for(300)
    pulls = [m for m in cluster.trace.filter(verb="PullImage")]
    events = sorted({(e["type"], e["reason"], e["message"]) for e in
                     adm.list("events", "default")["items"]
                     if e["involvedObject"]["name"] == "typo"})
    facts = {"first": first, "second": second,
             "pull_times": [m.t for m in pulls], "pull_result": pulls[0].result,
             "phase": _pod(cluster, "typo")["status"]["phase"], "events": events}
    return ScenarioResult("node-image-pull", cluster, pulls, facts)


@scenario("node-cni-failure", "The CNI plugin fails: no sandbox, a FailedCreatePodSandBox "
          "event, retries until the network works again", CH8)
def cni_failure(seed: int = 0) -> ScenarioResult:
    cluster, _ = _one_node(seed)
    cni = _machine(cluster, "node-a").cni
    cni.fail_add("failed to allocate for range 0: no IP addresses available in range set: "
                 "10.244.0.2-10.244.0.254")
    mark = cluster.trace.mark()
    cluster.admin().create(objects.pod("web", node_name="node-a"))
    cluster.run_for(15)
    pod = _pod(cluster, "web")
    broken = {"conditions": _conditions(pod), "podIP": pod["status"].get("podIP"),
              "sandboxes": len(_machine(cluster, "node-a").runtime.sandboxes),
              "allocations": dict(cni.allocations)}
    events = [e for e in cluster.admin().list("events", "default")["items"]
              if e["reason"] == "FailedCreatePodSandBox"]
    cni.fail_add(None)
    cluster.run_for(15)
    pod = _pod(cluster, "web")
    facts = {"broken": broken, "event": {"type": events[0]["type"],
                                         "reason": events[0]["reason"],
                                         "message": events[0]["message"],
                                         "count": len(events)},
             "healed": {"phase": pod["status"]["phase"], "podIP": pod["status"]["podIP"]},
             "attempts": [m.t for m in cluster.trace.since(mark) if m.verb == "RunPodSandbox"]}
    messages = [m for m in cluster.trace.since(mark)
                if m.path in ("kubelet->container-runtime", "container-runtime->cni-plugin")
                and m.verb not in RELIST]
    return ScenarioResult("node-cni-failure", cluster, messages, facts)


@scenario("node-readiness-probe", "The kubelet probes the pod; the application starts "
          "failing and the pod turns unready, then ready again", CH8)
def readiness_probe(seed: int = 0) -> ScenarioResult:
    cluster, kubelet = _one_node(seed)
    c = objects.container("app", "nginx:1.27", ports=[8080])
    c["readinessProbe"] = http_probe(8080, "/healthz", period=2)
    cluster.admin().create(objects.pod("web", node_name="node-a", containers=[c]))
    cluster.run_for(4)
    ready_before = _conditions(_pod(cluster, "web"))["Ready"]
    kubelet.set_app_healthy("default", "web", False)
    broke_at = cluster.clock.now()
    cluster.run_for(8)
    ready_during = _conditions(_pod(cluster, "web"))["Ready"]
    kubelet.set_app_healthy("default", "web", True)
    cluster.run_for(4)
    ready_after = _conditions(_pod(cluster, "web"))["Ready"]
    probes = cluster.trace.filter(path="kubelet->pod")
    writes = [m.t for m in cluster.trace.filter(path="kubelet->kube-apiserver")
              if m.resource == "pods/status"]
    facts = {"ready": [ready_before, ready_during, ready_after], "broke_at": broke_at,
             "probe_results": [(m.t, m.result) for m in probes], "status_writes": writes,
             "failure_threshold": c["readinessProbe"]["failureThreshold"]}
    return ScenarioResult("node-readiness-probe", cluster, probes, facts)


@scenario("node-csi-volume", "A pod with a CSI persistent volume: the kubelet stages it once "
          "per node and publishes it into the pod", CH8)
def csi_volume(seed: int = 0) -> ScenarioResult:
    cluster = Cluster(seed)
    kubelet = cluster.add_kubelet("node-a").start()
    plugin = CSINodePlugin("hostpath.csi.k8s.io", "node-a", cluster.network).install()
    kubelet.register_csi_driver("hostpath.csi.k8s.io")
    cluster.run_for(1)
    adm = cluster.admin()
    adm.create({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-db"},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                         "claimRef": {"namespace": "default", "name": "db-data"},
                         "csi": {"driver": "hostpath.csi.k8s.io", "volumeHandle": "vol-0001"}}})
    adm.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "db-data", "namespace": "default"},
                "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pv-db",
                         "resources": {"requests": {"storage": "1Gi"}}}})
    pod = objects.pod("db", image="postgres:17", node_name="node-a")
    pod["spec"]["volumes"] = [{"name": "data",
                               "persistentVolumeClaim": {"claimName": "db-data"}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data",
                                                     "mountPath": "/var/lib/postgresql"}]
    mark = cluster.trace.mark()
    adm.create(pod)
    cluster.run_for(2)
    staged, published = dict(plugin.staged), dict(plugin.published)
    adm.delete("pods", "db", "default")
    cluster.run_for(2)
    messages = [m for m in cluster.trace.since(mark) if m.dst != "etcd"
                and m.verb not in RELIST and "watch" not in m.protocol]
    facts = {"staged": staged, "published": published,
             "csi_calls": [m.verb for m in messages if m.path == "kubelet->csi-node-plugin"],
             "first_csi_before_sandbox": min(i for i, m in enumerate(messages)
                                             if m.path == "kubelet->csi-node-plugin") <
             min(i for i, m in enumerate(messages) if m.verb == "RunPodSandbox"),
             "after_delete": (dict(plugin.staged), dict(plugin.published))}
    return ScenarioResult("node-csi-volume", cluster, messages, facts)


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
    cluster, kubelet = _one_node(seed)
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
    web = _pod(cluster, "web")
    facts = {"podIP": web["status"]["podIP"], "phase": web["status"]["phase"],
             "healthy": healthy, "unhealthy": unhealthy, "closed_port": closed,
             "no_ip": no_ip, "missing": missing, "scheduler": refused,
             "proxied": [(m.verb, m.resource, m.result) for m in messages
                         if m.path == "kube-apiserver->pod"],
             "kubelet_involved": any(m.path == "kube-apiserver->kubelet" for m in messages)}
    return ScenarioResult("node-apiserver-to-pod", cluster, messages, facts)


@scenario("node-pod-to-apiserver", "A workload calls the API: the kubelet gets it a bound "
          "service-account token (TokenRequest), the pod uses it on the kubernetes Service", CH7)
def pod_to_apiserver(seed: int = 0) -> ScenarioResult:
    """Pod ``app`` on node-a runs as ServiceAccount ``reader``, which a Role lets list pods.
    Starting the pod, node-a's kubelet requests a token bound to it and writes it into the
    container's ``/var/run/secrets/kubernetes.io/serviceaccount/``. Code in the container
    builds its in-cluster client from that file and from ``KUBERNETES_SERVICE_HOST``/``_PORT``
    and dials ``10.96.0.1:443`` from the pod's IP, through node-a's netfilter rules (kube-proxy
    writes them; without them the dial is refused). It may list pods and is refused Secrets.
    The kubelet is refused a token for a pod on another node, and one for a ServiceAccount no
    pod of its node uses."""
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
    runtime = _machine(cluster, "node-a").runtime
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
        listed, secrets = f"dial refused: {err}", "not tried"
    pod_ip = _pod(cluster, "app")["status"]["podIP"]
    route = walk_iptables(proxy.iptables_save, src=pod_ip, dst="10.96.0.1", dport=443)
    other = token_request(_pod(cluster, "elsewhere"))
    other_node = outcome(lambda: kubelet.client.request(Request(
        "create", "serviceaccounts", "", "default", "reader", "token", body=other)))
    unrelated = token_request(_pod(cluster, "app"))
    unrelated["metadata"]["name"] = "builder"
    no_relation = outcome(lambda: kubelet.client.request(Request(
        "create", "serviceaccounts", "", "default", "builder", "token", body=unrelated)))
    issued = cluster.apiserver.tokens.issued[token]
    requests = [m for m in cluster.trace.since(mark) if m.resource == "serviceaccounts/token"]
    first = next(m for m in requests if m.src == "kubelet/node-a")
    messages = [m for m in cluster.trace.since(mark)
                if m.src.startswith("pod/") or m.resource == "serviceaccounts/token"]
    facts = {"token_request": {"t": first.t, "path": first.path, "result": first.result},
             "token_request_spec": tr["spec"],
             "expirationTimestamp": tr["status"]["expirationTimestamp"],
             "token_in_container": token[:24] + "...",
             "token_is_the_issued_one": token in cluster.apiserver.tokens.issued,
             "env": {k: v for k, v in process.env.items() if k.startswith("KUBERNETES_SERVICE")},
             "issued_at": issued.issued_at,
             "real_lifetime_s": issued.expires_at - issued.issued_at,
             "warn_after_s": (issued.warn_after or 0) - issued.issued_at,
             "identity": user.name, "groups": list(user.groups), "extra": dict(user.extra),
             "listed_pods": listed, "secrets": secrets,
             "route": {"dst": "10.96.0.1:443", "verdict": route.verdict},
             "other_node": other_node, "no_relation": no_relation}
    return ScenarioResult("node-pod-to-apiserver", cluster, messages, facts)


@scenario("node-inside-container", "What a container holds: the resolv.conf, hosts file, "
          "environment and token the kubelet and the runtime gave it, read with exec", CH8)
def inside_container(seed: int = 0) -> ScenarioResult:
    """Pod ``web`` (ServiceAccount ``reader``) runs on node-a. kubectl execs commands in its
    container: each goes kubectl -> kube-apiserver -> kubelet -> containerd's streaming
    server -> runc, and the output is what the container's files and environment hold."""
    cluster, kubelet = _one_node(seed)
    adm = cluster.admin()
    adm.create({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "reader", "namespace": "default"}})
    adm.create(objects.pod("web", node_name="node-a", serviceAccountName="reader",
                           containers=[objects.container("app", "busybox:1.36")]))
    cluster.run_for(2)
    pod = _pod(cluster, "web")
    mark = cluster.trace.mark()
    commands = {
        "resolv.conf": ["cat", "/etc/resolv.conf"],
        "hosts": ["cat", "/etc/hosts"],
        "hostname": ["hostname"],
        "env": ["env"],
        "script": ["sh", "-c", "echo hi; exit 3"],
        "missing file": ["cat", "/etc/nope"],
        "unknown command": ["ps", "aux"],
    }
    outputs = {k: _exec(cluster, "web", v) for k, v in commands.items()}
    exec_messages = [m for m in cluster.trace.since(mark) if m.dst != "etcd"]
    first_end = next(i for i, m in enumerate(exec_messages) if i and m.src == "kubectl")
    token = _exec(cluster, "web", ["cat", TOKEN_PATH])["text"]
    expected_resolv = format_resolv_conf(kubelet.pod_dns_config(pod))
    facts = {
        "outputs": {k: (v["text"], v["exitCode"]) for k, v in outputs.items()},
        "kubelet_resolv_conf": expected_resolv,
        "resolv_conf_matches": outputs["resolv.conf"]["text"] == expected_resolv,
        "token_matches": token in cluster.apiserver.tokens.issued,
        "podIP": pod["status"]["podIP"],
        "exec_paths": sorted({m.path for m in exec_messages}),
        "first_exec": [(m.path, m.verb, m.resource, m.result)
                       for m in exec_messages[:first_end]],
    }
    return ScenarioResult("node-inside-container", cluster, exec_messages, facts)
