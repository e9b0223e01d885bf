"""Scenarios of chapter 3, "Controllers": the ReplicaSet controller, and leader election
between two kube-controller-manager replicas.

Each function is a complete, deterministic run on a fresh :class:`~k8sbook.cluster.Cluster`.
"""

from __future__ import annotations

from typing import Any

from k8sbook.api import objects
from k8sbook.client.leaderelection import leaders_at
from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios import ScenarioResult, events, pods, scenario, user_of

CHAPTER = "03-controllers"


@scenario("controllers-replicaset", "The ReplicaSet controller creates and deletes Pods to "
          "match spec.replicas", CHAPTER)
def replicaset(seed: int = 0) -> ScenarioResult:
    """kube-controller-manager (one replica) leads, starts its informers and controllers;
    kubectl creates a ReplicaSet of 3, later scales it to 1. No scheduler and no kubelet run:
    the Pods stay Pending and unscheduled, which the controller neither knows nor cares."""
    cluster = Cluster(seed)
    kcm = cluster.add_controller_manager("kube-controller-manager/cp-1")
    kcm.start()
    cluster.run_for(3)
    mark = cluster.trace.mark()
    admin = cluster.admin()
    admin.create(objects.replicaset("web", replicas=3))
    cluster.run_for(2)
    after_create = sorted(p["metadata"]["name"] for p in pods(cluster))
    rs = admin.get("replicasets", "web", "default")
    rs["spec"]["replicas"] = 1
    admin.update(rs)
    cluster.run_for(2)
    messages = cluster.trace.since(mark)
    now = pods(cluster)
    rs = admin.get("replicasets", "web", "default")
    ctrl = kcm.controllers["replicaset"]
    facts = {
        "pods_after_create": after_create,
        "pods_after_scale_down": sorted(p["metadata"]["name"] for p in now),
        "owner_reference": now[0]["metadata"]["ownerReferences"][0],
        "generate_name": now[0]["metadata"]["generateName"],
        "pod_phase": sorted({p["status"]["phase"] for p in now}),
        "pod_node": sorted({p["spec"].get("nodeName", "") for p in now}),
        "rs_status": rs["status"], "rs_generation": rs["metadata"]["generation"],
        "decisions": ctrl.log, "events": events(cluster),
        "informer_identity": user_of(cluster, kcm.client),
        "controller_identity": user_of(cluster, ctrl.client),
        "writers": sorted({m.src for m in messages if m.verb in ("CREATE", "UPDATE", "DELETE")
                           and m.dst == "kube-apiserver"}),
    }
    return ScenarioResult("controllers-replicaset", cluster, messages, facts)


@scenario("controllers-leader-election", "Two kube-controller-manager replicas, one Lease: "
          "the leader is cut off, the other takes over", CHAPTER)
def leader_election(seed: int = 0, *, crash: bool = False) -> ScenarioResult:
    """cp-1 and cp-2 start 1 s apart; cp-1 takes the Lease. At t = 20 s the network isolates
    cp-1: its renewals time out, and after the 10 s renew deadline it stops leading (and
    exits). cp-2, which last saw the Lease change at cp-1's last renewal, may take it only 15 s
    after that. A ReplicaSet created while cp-1 is cut off is reconciled once cp-2 leads.

    With ``crash=True`` (chapter 3's exercise) cp-1 is killed at 20 s instead
    (:meth:`~k8sbook.controlplane.controller_manager.KubeControllerManager.stop`): its
    connections close and it releases nothing; the Lease is left to expire."""
    cluster = Cluster(seed)
    one = cluster.add_controller_manager("kube-controller-manager/cp-1")
    two = cluster.add_controller_manager("kube-controller-manager/cp-2")
    mark = cluster.trace.mark()
    one.start()
    cluster.run_for(1)
    two.start()
    cluster.clock.run_until(20.0)
    if crash:
        one.stop()
    else:
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
    lease_writes = [m for m in messages if m.resource == "leases" and m.verb in
                    ("CREATE", "UPDATE") and m.src == one.instance]
    facts = {
        "identities": {"cp-1": one.identity, "cp-2": two.identity},
        "terms": terms, "overlap": overlap,
        "cp1_exited": one.exited, "cp2_leading": two.leading,
        "lease_spec": lease["spec"],
        # from the trace: cp-1's last successful renewal, and when the network cut it off
        # (its watches broke: CLOSED; or, with none open, its first request with no answer)
        "cp1_last_renewal": max(m.t for m in lease_writes if m.result == "200"),
        "cp1_cut_at": min((m.t for m in messages if
                           (m.dst == one.instance and m.verb == "CLOSED")
                           or (m.src == one.instance and "i/o timeout" in m.result)),
                          default=None),
        "started": {"cp-1": min(m.t for m in messages if m.src == one.instance),
                    "cp-2": min(m.t for m in messages if m.src == two.instance)},
        "end": round(cluster.clock.now(), 6),
        "pods": sorted(p["metadata"]["name"] for p in pods(cluster)),
        "pods_created_by": sorted({m.src for m in messages if m.verb == "CREATE"
                                   and m.resource == "pods"}),
    }
    return ScenarioResult("controllers-leader-election", cluster, messages, facts)


def leader_timeline(result: ScenarioResult) -> Any:
    """A timeline of :func:`leader_election`: who led when, the cut, the renew deadline and
    the hand-over, every time read off the run (the electors' terms, the trace)."""
    from k8sbook.textbook import figures

    f = result.facts
    ids = f["identities"]
    lanes = ["cp-1", "cp-2", "network"]
    end = f["end"]
    spans: list[tuple[str, float, float, str, str]] = []
    points: list[tuple[str, float, str]] = []
    for lane in ("cp-1", "cp-2"):
        t = f["started"][lane]
        for start, stop in f["terms"][ids[lane]]:
            if start > t:
                spans.append((lane, t, start, "candidate", "#999999"))
            spans.append((lane, start, stop if stop is not None else end, "leader", "#326ce5"))
            t = stop if stop is not None else end
        if t < end:
            spans.append((lane, t, end, "exited", "#c0392b"))
    cut = f["cp1_cut_at"]
    spans.append(("network", 0.0, cut, "cp-1 connected", "#2e8b57"))
    spans.append(("network", cut, end, "cp-1 cut off", "#c0392b"))
    points.append(("cp-1", f["cp1_last_renewal"], "last renewal"))
    stopped = f["terms"][ids["cp-1"]][0][1]
    if stopped is not None:
        points.append(("cp-1", stopped, "renew deadline"))
    points.append(("cp-2", f["terms"][ids["cp-2"]][0][0], "Lease taken"))
    return figures.timeline(lanes, spans, points, width=11.0,
                            title="Lease kube-system/kube-controller-manager: one leader at a time")


@scenario("controllers-garbage-collection", "Owners and dependents: deleting a Deployment in "
          "the foreground, through the garbage collector's watches", CHAPTER)
def garbage_collection(seed: int = 0) -> ScenarioResult:
    """kube-controller-manager runs the Deployment, ReplicaSet and garbage-collector
    controllers (no scheduler, no kubelet). kubectl creates a Deployment of 2 (Deployment ->
    ReplicaSet -> Pods, each owned through ``ownerReferences``), then deletes it with
    ``propagationPolicy: Foreground`` (``kubectl delete --cascade=foreground``). The apiserver
    only marks the Deployment; the garbage collector, which watches every deletable resource,
    deletes the dependents, waits for them, and removes the finalizers."""
    cluster = Cluster(seed)
    kcm = cluster.add_controller_manager(
        "kube-controller-manager/cp-1", controllers=("deployment", "garbagecollector",
                                                     "replicaset"))
    kcm.start()
    cluster.run_for(3)
    watched = sorted({m.resource for m in cluster.trace.messages if m.verb == "WATCH"
                      and m.src == kcm.instance})
    admin = cluster.admin()
    admin.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                               "containers": [{"name": "app", "image": "nginx:1.27"}]}}}})
    cluster.run_for(3)
    rs = admin.list("replicasets", "default")["items"][0]
    chain = [(o["kind"], o["metadata"]["name"],
              [f"{r['kind']}/{r['name']}" for r in o["metadata"].get("ownerReferences", [])])
             for o in [admin.get("deployments", "web", "default"), rs, *pods(cluster)]]
    mark = cluster.trace.mark()
    marked = admin.delete("deployments", "web", "default", propagationPolicy="Foreground")
    cluster.run_for(3)
    messages = cluster.trace.since(mark)
    gc = kcm.controllers["garbagecollector"]
    facts = {
        "watched": watched, "chain": chain,
        "finalizers_after_delete": marked["metadata"].get("finalizers", []),
        "deletion_timestamp_set": bool(marked["metadata"].get("deletionTimestamp")),
        "gc_actions": [(action, what) for _, action, what in gc.log],
        "gc_identity": user_of(cluster, gc.client),
        "gc_lookups": sum(1 for m in messages if m.verb == "GET" and m.src == kcm.instance
                          and m.resource != "leases"),  # not its Lease renewals
        "left": {r: len(admin.list(r, "default")["items"])
                 for r in ("deployments", "replicasets", "pods")},
        "writers": sorted({(m.src, m.verb, m.resource) for m in messages
                           if m.verb in ("DELETE", "PATCH") and m.dst == "kube-apiserver"}),
    }
    return ScenarioResult("controllers-garbage-collection", cluster, messages, facts)


def deletion_messages(result: ScenarioResult) -> list[Any]:
    """The foreground deletion as a sequence: kubectl's DELETE, the garbage collector's
    lookups and writes, and the watch events that drive it (no Events, no status writes)."""
    return [m for m in result.messages if m.dst != "etcd" and m.src != "etcd"
            and m.resource in ("deployments", "replicasets", "pods")
            and m.verb in ("DELETE", "PATCH", "GET", "MODIFIED", "DELETED")]
