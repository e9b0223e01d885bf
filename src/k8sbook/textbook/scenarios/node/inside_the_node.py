"""Chapter 8, "Inside the node": a pod through the CRI, the PLEG, crash-loop and image
back-off, a failing CNI plugin, readiness probes, a CSI volume, and what a container holds.

Mirrors ``pkg/kubelet/kuberuntime``, ``pkg/kubelet/pleg``, ``pkg/kubelet/prober`` and
``pkg/kubelet/volumemanager`` (v1.35.0) talking to containerd's CRI plugin and a CSI node
plugin, run on a fresh cluster.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.node.csi import CSINodePlugin
from k8sbook.node.dns import format_resolv_conf
from k8sbook.node.kubelet import http_probe
from k8sbook.node.token_manager import TOKEN_PATH
from k8sbook.textbook.scenarios import ScenarioResult, scenario
from k8sbook.textbook.scenarios.node.common import (
    CH8,
    RELIST,
    get_pod,
    kubectl_exec,
    machine_of,
    one_node,
    pod_conditions,
)


# -- chapter 8 ------------------------------------------------------------------------------
@scenario("node-cri-lifecycle", "A two-container pod through the CRI: sandbox, CNI, images, "
          "containers, then deletion", CH8)
def cri_lifecycle(seed: int = 0, *, other_pull_policy: str = "") -> ScenarioResult:
    """A pod with a web server and a sidecar, bound to node-a, then deleted. A second pod
    shows what sharing a network namespace means; ``other_pull_policy`` (chapter 8's
    exercise) sets its container's ``imagePullPolicy``."""
    cluster, kubelet = one_node(seed)
    adm = cluster.admin()
    mark = cluster.trace.mark()
    adm.create(objects.pod("web", node_name="node-a", containers=[
        objects.container("server", "nginx:1.27", ports=[8080]),
        objects.container("sidecar", "busybox:1.36")]))
    cluster.run_for(2)
    started = cluster.trace.mark()
    other_mark = cluster.trace.mark()
    other = objects.pod("other", node_name="node-a", image="busybox:1.36")
    if other_pull_policy:
        other["spec"]["containers"][0]["imagePullPolicy"] = other_pull_policy
    adm.create(other)
    cluster.run_for(2)
    other_msgs = cluster.trace.since(other_mark)
    rt = machine_of(cluster, "node-a").runtime
    web_ip = get_pod(cluster, "web")["status"]["podIP"]

    def nc(pod: str, container: str, host: str) -> bool:
        return kubectl_exec(cluster, pod, ["nc", "-z", host, "8080"], container)["exitCode"] == 0
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
        "ips": {"web": web_ip, "other": get_pod(cluster, "other")["status"]["podIP"]},
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
    cluster, kubelet = one_node(seed)
    cluster.admin().create(objects.pod("web", image="nginx:1.27", node_name="node-a"))
    cluster.clock.run_until(10.3)
    mark = cluster.trace.mark()
    machine_of(cluster, "node-a").runtime.kill(kubelet.container_id("default", "web", "app"),
                                               137, "OOMKilled")
    killed_at = cluster.clock.now()
    cluster.run_for(2)
    messages = [m for m in cluster.trace.since(mark) if m.dst != "etcd"]
    pod = get_pod(cluster, "web")
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
def crashloop(seed: int = 0, *, script: str = "exit 1", duration: float = 900) -> ScenarioResult:
    """The container runs ``sh -c <script>`` and the cluster runs for ``duration`` seconds
    (chapter 8's exercise changes both)."""
    cluster, _ = one_node(seed)
    c = objects.container("app", "busybox:1.36")
    c["command"] = ["sh", "-c", script]
    cluster.admin().create(objects.pod("crash", node_name="node-a", containers=[c]))
    cluster.run_for(duration)
    pod = get_pod(cluster, "crash")
    starts = [m.t for m in cluster.trace.filter(verb="StartContainer")]
    runs = sorted(((c.started_at, c.finished_at)
                   for c in machine_of(cluster, "node-a").runtime.containers.values()),
                  key=lambda r: r[0])
    facts = {"starts": starts,
             "gaps": [round(b - a, 1) for a, b in pairwise(starts)],
             "runs": runs, "phase": pod["status"]["phase"],
             "waiting": pod["status"]["containerStatuses"][0]["state"].get("waiting"),
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
    machine_of(cluster, "node-a").runtime.registry.missing.add("nginx:1.99-typo")
    cluster.run_for(1)
    adm = cluster.admin()
    adm.create(objects.pod("typo", image="nginx:1.99-typo", node_name="node-a"))
    cluster.run_for(0.5)
    first = get_pod(cluster, "typo")["status"]["containerStatuses"][0]["state"]["waiting"]
    cluster.run_for(5)
    second = get_pod(cluster, "typo")["status"]["containerStatuses"][0]["state"]["waiting"]
    cluster.run_for(300)
    pulls = [m for m in cluster.trace.filter(verb="PullImage")]
    events = sorted({(e["type"], e["reason"], e["message"]) for e in
                     adm.list("events", "default")["items"]
                     if e["involvedObject"]["name"] == "typo"})
    facts = {"first": first, "second": second,
             "pull_times": [m.t for m in pulls], "pull_result": pulls[0].result,
             "phase": get_pod(cluster, "typo")["status"]["phase"], "events": events}
    return ScenarioResult("node-image-pull", cluster, pulls, facts)


@scenario("node-cni-failure", "The CNI plugin fails: no sandbox, a FailedCreatePodSandBox "
          "event, retries until the network works again", CH8)
def cni_failure(seed: int = 0) -> ScenarioResult:
    cluster, _ = one_node(seed)
    cni = machine_of(cluster, "node-a").cni
    cni.fail_add("failed to allocate for range 0: no IP addresses available in range set: "
                 "10.244.0.2-10.244.0.254")
    mark = cluster.trace.mark()
    cluster.admin().create(objects.pod("web", node_name="node-a"))
    cluster.run_for(15)
    pod = get_pod(cluster, "web")
    broken = {"conditions": pod_conditions(pod), "podIP": pod["status"].get("podIP"),
              "sandboxes": len(machine_of(cluster, "node-a").runtime.sandboxes),
              "allocations": dict(cni.allocations)}
    events = [e for e in cluster.admin().list("events", "default")["items"]
              if e["reason"] == "FailedCreatePodSandBox"]
    cni.fail_add(None)
    cluster.run_for(15)
    pod = get_pod(cluster, "web")
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


def cni_breaks_later(seed: int = 0) -> ScenarioResult:
    """Chapter 8's exercise: pod ``web`` starts; then the CNI plugin starts failing every ADD
    (``fail_add``) and a second pod, ``late``, is created. ``facts`` hold both pods' phase and
    IP, and whether ``web``'s containers kept running."""
    cluster, _ = one_node(seed)
    adm = cluster.admin()
    adm.create(objects.pod("web", node_name="node-a", image="nginx:1.27"))
    cluster.run_for(3)
    cni = machine_of(cluster, "node-a").cni
    cni.fail_add("failed to allocate for range 0: no IP addresses available in range set: "
                 "10.244.0.2-10.244.0.254")
    mark = cluster.trace.mark()
    adm.create(objects.pod("late", node_name="node-a", image="nginx:1.27"))
    cluster.run_for(15)
    messages = [m for m in cluster.trace.since(mark)
                if m.path in ("kubelet->container-runtime", "container-runtime->cni-plugin")
                and m.verb not in RELIST]
    facts: dict[str, Any] = {}
    for name in ("late", "web"):
        p = get_pod(cluster, name)
        facts[name] = {"phase": p["status"]["phase"], "podIP": p["status"].get("podIP"),
                       "ready": pod_conditions(p).get("Ready")}
    facts["cni_calls"] = sorted({(m.verb, m.result) for m in messages
                                 if m.path == "container-runtime->cni-plugin"})
    return ScenarioResult("node-cni-breaks-later", cluster, messages, facts)


@scenario("node-readiness-probe", "The kubelet probes the pod; the application starts "
          "failing and the pod turns unready, then ready again", CH8)
def readiness_probe(seed: int = 0, *, kind: str = "readiness") -> ScenarioResult:
    """With ``kind="liveness"`` (chapter 8's exercise) the same probe is a ``livenessProbe``;
    ``facts["restarts"]`` then shows what the kubelet did instead."""
    cluster, kubelet = one_node(seed)
    c = objects.container("app", "nginx:1.27", ports=[8080])
    c[f"{kind}Probe"] = http_probe(8080, "/healthz", period=2)
    cluster.admin().create(objects.pod("web", node_name="node-a", containers=[c]))
    cluster.run_for(4)
    ready_before = pod_conditions(get_pod(cluster, "web"))["Ready"]
    kubelet.set_app_healthy("default", "web", False)
    broke_at = cluster.clock.now()
    cluster.run_for(8)
    ready_during = pod_conditions(get_pod(cluster, "web"))["Ready"]
    kubelet.set_app_healthy("default", "web", True)
    cluster.run_for(4)
    ready_after = pod_conditions(get_pod(cluster, "web"))["Ready"]
    probes = cluster.trace.filter(path="kubelet->pod")
    writes = [m.t for m in cluster.trace.filter(path="kubelet->kube-apiserver")
              if m.resource == "pods/status"]
    facts = {"ready": [ready_before, ready_during, ready_after], "broke_at": broke_at,
             "probe_results": [(m.t, m.result) for m in probes], "status_writes": writes,
             "failure_threshold": c[f"{kind}Probe"]["failureThreshold"]}
    if kind != "readiness":
        cs = get_pod(cluster, "web")["status"]["containerStatuses"][0]
        facts["restarts"] = {
            "killed": [(m.t, m.verb) for m in cluster.trace.filter(path="kubelet->container-runtime")
                       if m.verb in ("StopContainer", "StartContainer")],
            "restart_count": cs["restartCount"],
            "events": sorted({(e["reason"], e["message"]) for e in cluster.admin().list(
                "events", "default")["items"] if e["reason"] in ("Unhealthy", "Killing")})}
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



@scenario("node-inside-container", "What a container holds: the resolv.conf, hosts file, "
          "environment and token the kubelet and the runtime gave it, read with exec", CH8)
def inside_container(seed: int = 0) -> ScenarioResult:
    """Pod ``web`` (ServiceAccount ``reader``) runs on node-a. kubectl execs commands in its
    container: each goes kubectl -> kube-apiserver -> kubelet -> containerd's streaming
    server -> runc, and the output is what the container's files and environment hold."""
    cluster, kubelet = one_node(seed)
    adm = cluster.admin()
    adm.create({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "reader", "namespace": "default"}})
    adm.create(objects.pod("web", node_name="node-a", serviceAccountName="reader",
                           containers=[objects.container("app", "busybox:1.36")]))
    cluster.run_for(2)
    pod = get_pod(cluster, "web")
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
    outputs = {k: kubectl_exec(cluster, "web", v) for k, v in commands.items()}
    exec_messages = [m for m in cluster.trace.since(mark) if m.dst != "etcd"]
    first_end = next(i for i, m in enumerate(exec_messages) if i and m.src == "kubectl")
    token = kubectl_exec(cluster, "web", ["cat", TOKEN_PATH])["text"]
    expected_resolv = format_resolv_conf(kubelet.pod_dns_config(pod))
    facts = {
        "outputs": {k: (v["text"], v["exitCode"]) for k, v in outputs.items()},
        "kubelet_resolv_conf": expected_resolv,
        "resolv_conf_matches": outputs["resolv.conf"]["text"] == expected_resolv,
        "token_matches": cluster.apiserver.tokens.claims(token)["kubernetes.io"]["pod"]["name"]
        == "web",
        "podIP": pod["status"]["podIP"],
        "exec_paths": sorted({m.path for m in exec_messages}),
        "first_exec": [(m.path, m.verb, m.resource, m.result)
                       for m in exec_messages[:first_end]],
    }
    return ScenarioResult("node-inside-container", cluster, exec_messages, facts)
