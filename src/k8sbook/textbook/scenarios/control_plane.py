"""Scenarios of the control-plane chapters: controllers, scheduling, rescheduling, the cloud.

Each function is a complete, deterministic run on a fresh :class:`~k8sbook.cluster.Cluster`;
the chapters 03 to 06 draw and check what they return.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api import objects
from k8sbook.client.leaderelection import leaders_at
from k8sbook.cluster import Cluster
from k8sbook.controlplane.cloud import CloudAPI
from k8sbook.controlplane.cloud_controller_manager import (
    CloudControllerManager,
    external_cloud_provider_kubelet,
)
from k8sbook.controlplane.cloud_controller_manager import manifests as ccm_manifests
from k8sbook.controlplane.controller_manager import KubeControllerManager
from k8sbook.controlplane.descheduler import Descheduler
from k8sbook.controlplane.descheduler import manifests as descheduler_manifests
from k8sbook.controlplane.scheduler import KubeScheduler
from k8sbook.core.status import StatusError
from k8sbook.textbook.scenarios import ScenarioResult, scenario

Obj = dict[str, Any]


def _apply(cluster: Cluster, objs: list[Obj]) -> None:
    """What ``kubectl apply -f`` of a component's manifests does here: create each object."""
    admin = cluster.admin()
    for o in objs:
        try:
            admin.create(o)
        except StatusError as err:
            if err.code != 409:
                raise


def _pods(cluster: Cluster, namespace: str = "default") -> list[Obj]:
    return cluster.admin().list("pods", namespace)["items"]


def _events(cluster: Cluster, namespace: str = "default") -> list[tuple[str, str, str, str]]:
    """(source, reason, object, message) of every Event, in the order written."""
    items = cluster.admin().list("events", namespace)["items"]
    items.sort(key=lambda e: (e["firstTimestamp"], e["metadata"]["name"]))
    return [(e["source"]["component"], e["reason"],
             f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}", e["message"])
            for e in items]


def _user(cluster: Cluster, instance_client: Any) -> str:
    return cluster.apiserver.authn.authenticate(instance_client.credentials).name


# -- chapter 03 ---------------------------------------------------------------------------
CH03 = "03-controllers"


@scenario("controllers-replicaset", "The ReplicaSet controller creates and deletes Pods to "
          "match spec.replicas", CH03)
def replicaset(seed: int = 0) -> ScenarioResult:
    """kube-controller-manager (one replica) leads, starts its informers and controllers;
    kubectl creates a ReplicaSet of 3, later scales it to 1. No scheduler and no kubelet run:
    the Pods stay Pending and unscheduled, which the controller neither knows nor cares."""
    cluster = Cluster(seed)
    kcm = KubeControllerManager(cluster, "kube-controller-manager/cp-1")
    kcm.start()
    cluster.run_for(3)
    mark = cluster.trace.mark()
    admin = cluster.admin()
    admin.create(objects.replicaset("web", replicas=3))
    cluster.run_for(2)
    after_create = sorted(p["metadata"]["name"] for p in _pods(cluster))
    rs = admin.get("replicasets", "web", "default")
    rs["spec"]["replicas"] = 1
    admin.update(rs)
    cluster.run_for(2)
    messages = cluster.trace.since(mark)
    pods = _pods(cluster)
    rs = admin.get("replicasets", "web", "default")
    ctrl = kcm.controllers["replicaset"]
    facts = {
        "pods_after_create": after_create,
        "pods_after_scale_down": sorted(p["metadata"]["name"] for p in pods),
        "owner_reference": pods[0]["metadata"]["ownerReferences"][0],
        "generate_name": pods[0]["metadata"]["generateName"],
        "pod_phase": sorted({p["status"]["phase"] for p in pods}),
        "pod_node": sorted({p["spec"].get("nodeName", "") for p in pods}),
        "rs_status": rs["status"], "rs_generation": rs["metadata"]["generation"],
        "decisions": ctrl.log, "events": _events(cluster),
        "informer_identity": _user(cluster, kcm.client),
        "controller_identity": _user(cluster, ctrl.client),
        "writers": sorted({m.src for m in messages if m.verb in ("CREATE", "UPDATE", "DELETE")
                           and m.dst == "kube-apiserver"}),
    }
    return ScenarioResult("controllers-replicaset", cluster, messages, facts)


@scenario("controllers-leader-election", "Two kube-controller-manager replicas, one Lease: "
          "the leader is cut off, the other takes over", CH03)
def leader_election(seed: int = 0) -> ScenarioResult:
    """cp-1 and cp-2 start 1 s apart; cp-1 takes the Lease. At t = 20 s the network cuts
    cp-1 off from the apiserver: its renewals fail, and after the 10 s renew deadline it
    stops leading (and exits). cp-2, which last saw the Lease change at about t = 20 s, may
    take it only 15 s later. A ReplicaSet created while cp-1 is cut off is reconciled once
    cp-2 leads."""
    cluster = Cluster(seed)
    one = KubeControllerManager(cluster, "kube-controller-manager/cp-1")
    two = KubeControllerManager(cluster, "kube-controller-manager/cp-2")
    mark = cluster.trace.mark()
    one.start()
    cluster.run_for(1)
    two.start()
    cluster.clock.run_until(20.0)
    cluster.network.isolate("kube-controller-manager/cp-1")
    cluster.clock.run_until(24.0)
    cluster.admin().create(objects.replicaset("web", replicas=2))
    cluster.clock.run_until(50.0)
    messages = cluster.trace.since(mark)
    lease = cluster.admin().get("leases", "kube-controller-manager", "kube-system")
    terms = {e.identity: [[round(a, 3) if a is not None else None,
                           round(b, 3) if b is not None else None] for a, b in e.terms]
             for e in (one.elector, two.elector)}
    grid = [round(i * 0.5, 1) for i in range(101)]
    overlap = [t for t in grid if len(leaders_at([one.elector, two.elector], t)) > 1]
    facts = {
        "identities": {"cp-1": one.identity, "cp-2": two.identity},
        "terms": terms, "overlap": overlap,
        "cp1_exited": one.exited, "cp2_leading": two.leading,
        "lease_spec": lease["spec"],
        "pods": sorted(p["metadata"]["name"] for p in _pods(cluster)),
        "pods_created_by": sorted({m.src for m in messages if m.verb == "CREATE"
                                   and m.resource == "pods"}),
    }
    return ScenarioResult("controllers-leader-election", cluster, messages, facts)


# -- chapter 04 ---------------------------------------------------------------------------
CH04 = "04-scheduling"


def _cpu_pod(name: str, cpu: str, **spec: Any) -> Obj:
    return objects.pod(name, containers=[objects.container("app", "registry.k8s.io/pause:3.10",
                                                           requests={"cpu": cpu})], **spec)


@scenario("scheduling", "kube-scheduler filters and scores nodes, binds one pod, cannot place "
          "another until a node is added", CH04)
def scheduling(seed: int = 0) -> ScenarioResult:
    """Three nodes: node-a (2 CPUs), node-b (4 CPUs, tainted dedicated=gpu:NoSchedule) and
    node-c (4 CPUs, cordoned). ``web`` asks for 500m and lands on node-a; ``batch`` asks for 3
    CPUs, fits nowhere, and gets PodScheduled=False with the reasons; node-d (8 CPUs) joins
    and ``batch`` is retried and bound there. The nodes are created by the administrator,
    standing in for kubelets registering (chapter 7)."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    admin.create(objects.node("node-a", cpu="2"))
    admin.create(objects.node("node-b", cpu="4", taints=[
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]))
    node_c = objects.node("node-c", cpu="4")
    node_c["spec"]["unschedulable"] = True
    admin.create(node_c)
    sched = KubeScheduler(cluster, "kube-scheduler/cp-1")
    sched.start()
    cluster.run_for(3)
    mark = cluster.trace.mark()
    admin.create(_cpu_pod("web", "500m"))
    admin.create(_cpu_pod("batch", "3"))
    cluster.run_for(2)
    batch_before = admin.get("pods", "batch", "default")
    t_node = round(cluster.clock.now(), 6)
    admin.create(objects.node("node-d", cpu="8"))
    cluster.run_for(3)
    messages = cluster.trace.since(mark)
    pods = {p["metadata"]["name"]: p for p in _pods(cluster)}
    facts = {
        "nodes": {n: p["spec"].get("nodeName", "") for n, p in sorted(pods.items())},
        "batch_condition": next(c for c in batch_before["status"]["conditions"]
                                if c["type"] == "PodScheduled"),
        "batch_condition_after": next(c for c in pods["batch"]["status"]["conditions"]
                                      if c["type"] == "PodScheduled"),
        "attempts": sched.attempts, "queue_moves": sched.queue.moves,
        "node_added_at": t_node,
        "events": _events(cluster),
        "scheduler_peers": sorted({m.dst for m in messages if m.src.startswith("kube-scheduler")}
                                  | {m.src for m in messages
                                     if m.dst.startswith("kube-scheduler")}),
        "lease_holder": admin.get("leases", "kube-scheduler", "kube-system")["spec"][
            "holderIdentity"],
    }
    return ScenarioResult("scheduling", cluster, messages, facts)


# -- chapter 05 ---------------------------------------------------------------------------
CH05 = "05-rescheduling-is-eviction"


@scenario("rescheduling-eviction", "A descheduler evicts through the Eviction API; a PDB "
          "refuses with 429, then allows; the ReplicaSet and the scheduler do the rest", CH05)
def rescheduling(seed: int = 0) -> ScenarioResult:
    """node-a alone runs both replicas of ``web``; node-b joins. A PodDisruptionBudget asks for
    2 available pods, so the descheduler's eviction of a duplicate is refused (429). The
    budget is relaxed to 1; the next eviction is accepted: the kubelet stops the pod, the
    ReplicaSet controller creates a replacement and kube-scheduler puts it on node-b."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    _apply(cluster, descheduler_manifests())
    cluster.add_kubelet("node-a").start()
    kcm = KubeControllerManager(cluster, "kube-controller-manager/cp-1")
    kcm.start()
    sched = KubeScheduler(cluster, "kube-scheduler/cp-1")
    sched.start()
    cluster.run_for(3)
    admin.create(objects.replicaset("web", replicas=2))
    admin.create(objects.pdb("web", selector={"app": "web"}, min_available=2))
    cluster.run_for(20)
    cluster.add_kubelet("node-b").start()
    cluster.run_for(5)
    before = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in _pods(cluster)}
    desched = Descheduler(cluster, "descheduler")
    desched.start(first_run_after=2.0)
    mark = cluster.trace.mark()
    cluster.run_for(3)
    pdb_refusing = admin.get("poddisruptionbudgets", "web", "default")["status"]
    admin.patch("poddisruptionbudgets", "web", {"spec": {"minAvailable": 1}}, "default")
    cluster.run_for(2)
    pdb_allowing = admin.get("poddisruptionbudgets", "web", "default")["status"]
    desched.run_once()
    cluster.run_for(40)
    desched.stop()
    messages = cluster.trace.since(mark)
    after = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in _pods(cluster)}
    evictions = [m for m in messages if m.resource == "pods/eviction"]
    facts = {
        "before": before, "after": after, "evictions": desched.evictions,
        "eviction_results": [m.result for m in evictions],
        "pdb_refusing": {k: pdb_refusing[k] for k in ("currentHealthy", "desiredHealthy",
                                                      "disruptionsAllowed", "expectedPods")},
        "pdb_allowing": {k: pdb_allowing[k] for k in ("currentHealthy", "desiredHealthy",
                                                      "disruptionsAllowed", "expectedPods")},
        "descheduler_identity": _user(cluster, desched.client),
        "descheduler_peers": sorted({m.dst for m in messages if m.src == "descheduler"}),
        "rs_log": kcm.controllers["replicaset"].log,
        "pods_running": sorted(p["metadata"]["name"] for p in _pods(cluster)
                               if p["status"].get("phase") == "Running"),
    }
    return ScenarioResult("rescheduling-eviction", cluster, messages, facts)


@scenario("preemption", "A high-priority pod preempts a low-priority one", CH05)
def preemption(seed: int = 0) -> ScenarioResult:
    """One node with 2 CPUs runs ``batch`` (priority 0, 1500m). ``critical`` (PriorityClass
    ``high``, value 1000000, 1 CPU) does not fit; DefaultPreemption picks ``batch`` as the
    victim, sets ``status.nominatedNodeName`` and deletes it; once the kubelet has stopped it,
    ``critical`` is bound."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    cluster.add_kubelet("node-a", cpu="2").start()
    sched = KubeScheduler(cluster, "kube-scheduler/cp-1")
    sched.start()
    cluster.run_for(3)
    admin.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                  "metadata": {"name": "high"}, "value": 1000000,
                  "description": "for pods that must run"})
    admin.create(_cpu_pod("batch", "1500m"))
    cluster.run_for(10)
    mark = cluster.trace.mark()
    admin.create(_cpu_pod("critical", "1", priorityClassName="high"))
    cluster.run_for(2)
    nominated = admin.get("pods", "critical", "default")["status"].get("nominatedNodeName", "")
    cluster.run_for(40)
    messages = cluster.trace.since(mark)
    pods = {p["metadata"]["name"]: p for p in _pods(cluster)}
    facts = {
        "priorities": {n: p["spec"].get("priority") for n, p in sorted(pods.items())},
        "nominated": nominated,
        "preemption": [a.get("preemption") for a in sched.attempts if a.get("preemption")],
        "pods": {n: p["spec"].get("nodeName", "") for n, p in sorted(pods.items())},
        "events": [e for e in _events(cluster) if e[1] in ("Preempted", "Scheduled",
                                                             "FailedScheduling")],
    }
    return ScenarioResult("preemption", cluster, messages, facts)


# -- chapter 06 ---------------------------------------------------------------------------
CH06 = "06-the-cloud"


@scenario("cloud", "cloud-controller-manager initialises a node and provisions a load "
          "balancer; the apiserver never calls the cloud", CH06)
def cloud(seed: int = 0) -> ScenarioResult:
    """The operator launches an instance; its kubelet (``--cloud-provider=external``)
    registers a tainted Node. A pod waits (untolerated taint) until the cloud node controller
    has set providerID, labels and addresses and removed the taint; kube-scheduler then binds
    it. The route controller adds a route for the node's pod CIDR. A Service of type
    LoadBalancer gets a load balancer and ``status.loadBalancer.ingress``."""
    cluster = Cluster(seed)
    api = CloudAPI()
    _apply(cluster, ccm_manifests())
    sched = KubeScheduler(cluster, "kube-scheduler/cp-1")
    sched.start()
    ccm = CloudControllerManager(cluster, api, "cloud-controller-manager/cp-1")
    cluster.run_for(3)
    mark = cluster.trace.mark()
    kubelet = external_cloud_provider_kubelet(cluster, "node-a")
    api.launch("node-a", kubelet.address)
    kubelet.start()
    cluster.run_for(1)
    cluster.admin().create(objects.pod("web", labels={"app": "web"}))
    cluster.run_for(2)
    registered = copy.deepcopy(cluster.admin().get("nodes", "node-a"))
    waiting = cluster.admin().get("pods", "web", "default")
    ccm.start()
    cluster.run_for(14)
    cluster.admin().create(objects.service("web", selector={"app": "web"}, type="LoadBalancer"))
    cluster.run_for(4)
    messages = cluster.trace.since(mark)
    node = cluster.admin().get("nodes", "node-a")
    svc = cluster.admin().get("services", "web", "default")
    facts = {
        "registered_taints": registered["spec"].get("taints", []),
        "registered_addresses": registered["status"].get("addresses", []),
        "waiting_reason": next(c["message"] for c in waiting["status"]["conditions"]
                               if c["type"] == "PodScheduled"),
        "provider_id": node["spec"].get("providerID"),
        "labels": {k: v for k, v in sorted(node["metadata"]["labels"].items())
                   if k.startswith(("topology", "node.kubernetes.io"))},
        "addresses": node["status"]["addresses"],
        "taints_after": node["spec"].get("taints", []),
        "network_unavailable": next((c for c in node["status"]["conditions"]
                                     if c["type"] == "NetworkUnavailable"), None),
        "pod_node": cluster.admin().get("pods", "web", "default")["spec"].get("nodeName", ""),
        "ingress": svc["status"]["loadBalancer"].get("ingress", []),
        "finalizers": svc["metadata"].get("finalizers", []),
        "cloud_calls": [(m.verb, m.name, m.result) for m in messages if m.dst == "cloud-api"],
        "cloud_callers": sorted({m.src for m in messages if m.dst == "cloud-api"}),
        "routes": [(r.target_node, r.destination_cidr) for r in api.routes.values()],
        "load_balancers": {k: (v.ip, v.backends) for k, v in sorted(api.load_balancers.items())},
        "ccm_identity": _user(cluster, ccm.client),
    }
    return ScenarioResult("cloud", cluster, messages, facts)


# -- views for the chapters ---------------------------------------------------------------


def api_messages(result: ScenarioResult, *, leases: bool = False, events: bool = False,
                 node_local: bool = False, only: tuple[str, ...] = ()) -> list[Any]:
    """The messages worth drawing: no etcd traffic, and (unless asked) no Lease renewals,
    no Event writes, no node-local CRI/CNI calls. ``only`` keeps messages whose source or
    destination component is one of those named."""
    out = []
    for m in result.messages:
        comps = {m.src.split("/")[0], m.dst.split("/")[0]}
        if "etcd" in comps:
            continue
        if not leases and m.resource == "leases":
            continue
        if not events and m.resource == "events":
            continue
        if not node_local and not m.path.endswith("->kube-apiserver") and \
                m.path != "cloud-controller-manager->cloud-api":
            continue
        if not node_local and m.resource == "nodes/status" and m.src.startswith("kubelet"):
            continue
        if only and not comps & set(only):
            continue
        out.append(m)
    return out


def path_edges(result: ScenarioResult) -> list[tuple[str, str, dict[str, Any]]]:
    """One edge per path the scenario used, labelled with its message count."""
    counts = result.cluster.trace.path_counts(result.messages)
    return [(p.split("->")[0], p.split("->")[1], {"label": str(n)})
            for p, n in sorted(counts.items())]


def leader_timeline(result: ScenarioResult) -> Any:
    """A timeline of :func:`leader_election`: who led when, the cut, the Lease's expiry."""
    from k8sbook.textbook import figures

    ids = result.facts["identities"]
    lanes = ["cp-1", "cp-2", "network"]
    end = 50.0
    spans: list[tuple[str, float, float, str, str]] = []
    points: list[tuple[str, float, str]] = []
    for lane in ("cp-1", "cp-2"):
        terms = result.facts["terms"][ids[lane]]
        t = 0.0 if lane == "cp-1" else 1.0
        for start, stop in terms:
            if start > t:
                spans.append((lane, t, start, "candidate", "#999999"))
            spans.append((lane, start, stop if stop is not None else end, "leader", "#326ce5"))
            t = stop if stop is not None else end
        if t < end:
            spans.append((lane, t, end, "exited", "#c0392b"))
    spans.append(("network", 0.0, 20.0, "cp-1 connected", "#2e8b57"))
    spans.append(("network", 20.0, end, "cp-1 cut off", "#c0392b"))
    points.append(("cp-1", 20.0, "last renewal"))
    points.append(("cp-1", 30.0, "renew deadline"))
    cp2_start = result.facts["terms"][ids["cp-2"]][0][0]
    points.append(("cp-2", cp2_start, "Lease taken"))
    return figures.timeline(lanes, spans, points, width=11.0,
                            title="Lease kube-system/kube-controller-manager: one leader at a time")


def queue_timeline(result: ScenarioResult, pod: str = "default/batch") -> Any:
    """Where one pod sat in the scheduling queue, from the queue's own record."""
    from k8sbook.textbook import figures

    moves = [m for m in result.facts["queue_moves"] if m[1] == pod]
    colours = {"activeQ": "#326ce5", "backoffQ": "#d2691e", "unschedulable": "#c0392b"}
    bound = [a["t"] for a in result.facts["attempts"] if a["pod"] == pod and a.get("node")]
    end = bound[-1] if bound else max(m[0] for m in moves) + 1.0
    spans = []
    for (t, _, where, _why), nxt in zip(moves, moves[1:] + [(end, "", "", "")], strict=True):
        spans.append(("queue", t, max(nxt[0], t + 0.15), where, colours[where]))
    if bound:
        spans.append(("queue", end + 0.15, end + 1.0, "bound", "#2e8b57"))
    points = [("queue", m[0], m[3]) for m in moves]
    points.append(("nodes", result.facts["node_added_at"], "node-d added"))
    for a in result.facts["attempts"]:
        if a["pod"] == pod:
            what = f"bound to {a['node']}" if a.get("node") else "unschedulable"
            points.append(("attempts", a["t"], f"attempt {a['attempt']}: {what}"))
    return figures.timeline(["queue", "attempts", "nodes"], spans, points, width=10.0,
                            title=f"{pod} in the scheduling queue")


def eviction_story(result: ScenarioResult) -> list[Any]:
    """The messages of :func:`rescheduling` that tell its story: every request made by the
    descheduler, kubectl, the controller manager and the scheduler (no Leases, no Events), and
    the watch events that woke the controller manager and the scheduler (additions and
    deletions of pods, changes to the budget), without bookmarks or pod status churn."""
    out = []
    for m in api_messages(result, only=("descheduler", "kubectl", "kube-controller-manager",
                                         "kube-scheduler")):
        if m.protocol.startswith("HTTPS (watch"):
            if m.dst == "descheduler" or m.verb == "BOOKMARK":
                continue
            if m.verb == "MODIFIED" and m.resource != "poddisruptionbudgets":
                continue
        elif m.verb == "GET":
            continue
        out.append(m)
    return out
