"""Chapter 7, "The kubelet pulls": registration, what a node may do, heartbeats, an
unreachable node, and the apiserver's calls to the kubelet (logs, exec, port-forward).

Mirrors the kubelet's side of ``pkg/kubelet`` (``kubelet_node_status.go``, ``nodelease``,
``server``) and ``pkg/controller/nodelifecycle`` (v1.35.0), run on a fresh cluster.
"""

from __future__ import annotations

from typing import Any

from k8sbook.api import objects
from k8sbook.apiserver.kubelet_client import pod_exec, pod_logs, pod_port_forward
from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios import ScenarioResult, outcome, scenario
from k8sbook.textbook.scenarios.node.common import (
    CH7,
    RELIST,
    get_pod,
    one_node,
    pod_conditions,
)


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
    pod = get_pod(cluster, "web")
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
        "hostIP": pod["status"]["hostIP"], "conditions": pod_conditions(pod),
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
def unreachable(seed: int = 0, *, tolerations: list[dict[str, Any]] | None = None,
                rejoin_at: float | None = None) -> ScenarioResult:
    """kube-controller-manager runs the node lifecycle and taint eviction controllers. At
    t=60 s the kubelet on node-a stops (the machine died). Nobody tells the control plane:
    it notices the Lease is no longer renewed.

    Chapter 7's exercises vary it: ``tolerations`` go into the pod's spec (admission adds the
    default ones it lacks); with ``rejoin_at`` the network isolates the kubelet at 60 s instead
    of stopping it, and lets it back at that time."""
    cluster = Cluster(seed)
    kcm = cluster.add_controller_manager(controllers=("nodelifecycle", "tainteviction"))
    kcm.start()
    kubelet = cluster.add_kubelet("node-a").start()
    # a second node that stays up: were node-a the only node, every zone would be fully
    # disrupted and the node lifecycle controller would evict nothing (handleDisruption)
    cluster.add_kubelet("node-b").start()
    cluster.run_for(20)
    extra: dict[str, Any] = {"tolerations": tolerations} if tolerations else {}
    cluster.admin().create(objects.pod("web", image="nginx:1.27", node_name="node-a", **extra))
    cluster.run_for(40)
    stopped_at = cluster.clock.now()
    if rejoin_at is None:
        kubelet.stop()
    else:
        cluster.network.isolate("kubelet/node-a")
        cluster.clock.run_until(rejoin_at)
        cluster.network.rejoin("kubelet/node-a")
    cluster.clock.run_until(stopped_at + 480)
    lifecycle, eviction = kcm.controllers["nodelifecycle"], kcm.controllers["tainteviction"]
    node = cluster.admin().get("nodes", "node-a")
    pod = get_pod(cluster, "web")
    renewals = [m.t for m in cluster.trace.filter(path="kubelet->kube-apiserver",
                                                  src="kubelet/node-a")
                if m.resource == "leases" and m.verb == "UPDATE"]
    facts = {
        "kubelet_stopped_at": stopped_at,
        "last_lease_renewal": max(renewals),
        "node_log": lifecycle.log, "eviction_log": eviction.log,
        "taints": sorted((t["key"], t["effect"]) for t in node["spec"].get("taints", [])),
        "node_conditions": {c["type"]: (c["status"], c["reason"])
                            for c in node["status"]["conditions"]},
        "pod_deletion_timestamp": pod["metadata"].get("deletionTimestamp"),
        "pod_conditions": pod_conditions(pod),
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
    cluster, kubelet = one_node(seed)
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
