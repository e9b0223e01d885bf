"""Scenarios of chapter 4, "Scheduling": kube-scheduler filters, scores and binds.

Each function is a complete, deterministic run on a fresh :class:`~k8sbook.cluster.Cluster`.
"""

from __future__ import annotations

from typing import Any

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios import ScenarioResult, events, pods, scenario

CHAPTER = "04-scheduling"
Obj = dict[str, Any]


def cpu_pod(name: str, cpu: str, **spec: Any) -> Obj:
    """A one-container pod that requests ``cpu``."""
    return objects.pod(name, containers=[objects.container("app", "registry.k8s.io/pause:3.10",
                                                           requests={"cpu": cpu})], **spec)


@scenario("scheduling", "kube-scheduler filters and scores nodes, binds one pod, cannot place "
          "another until a node is added", CHAPTER)
def scheduling(seed: int = 0, *, tolerations: list[Obj] | None = None,
               uncordon: bool = False) -> ScenarioResult:
    """Three nodes: node-a (2 CPUs), node-b (4 CPUs, tainted dedicated=gpu:NoSchedule) and
    node-c (4 CPUs, cordoned). ``web`` asks for 500m and lands on node-a; ``batch`` asks for 3
    CPUs, fits nowhere, and gets PodScheduled=False with the reasons; node-d (8 CPUs) joins
    and ``batch`` is retried and bound there. The nodes are created by the administrator,
    standing in for kubelets registering (chapter 7).

    Chapter 4's exercises vary it: ``tolerations`` are given to ``batch``; with ``uncordon``
    the administrator patches node-c to ``spec.unschedulable: false`` instead of adding
    node-d."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    admin.create(objects.node("node-a", cpu="2"))
    admin.create(objects.node("node-b", cpu="4", taints=[
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]))
    node_c = objects.node("node-c", cpu="4")
    node_c["spec"]["unschedulable"] = True
    admin.create(node_c)
    sched = cluster.add_scheduler("kube-scheduler/cp-1")
    sched.start()
    cluster.run_for(3)
    mark = cluster.trace.mark()
    admin.create(cpu_pod("web", "500m"))
    admin.create(cpu_pod("batch", "3", **({"tolerations": tolerations} if tolerations else {})))
    cluster.run_for(2)
    batch_before = admin.get("pods", "batch", "default")
    if uncordon:
        admin.patch("nodes", "node-c", {"spec": {"unschedulable": False}})
    else:
        admin.create(objects.node("node-d", cpu="8"))
    cluster.run_for(3)
    messages = cluster.trace.since(mark)
    now = {p["metadata"]["name"]: p for p in pods(cluster)}
    facts = {
        "nodes": {n: p["spec"].get("nodeName", "") for n, p in sorted(now.items())},
        "batch_condition": next(c for c in batch_before["status"]["conditions"]
                                if c["type"] == "PodScheduled"),
        "batch_condition_after": next(c for c in now["batch"]["status"]["conditions"]
                                      if c["type"] == "PodScheduled"),
        "attempts": sched.attempts, "queue_moves": sched.queue.moves,
        # from the trace: when the administrator's request to add node-d (or to uncordon
        # node-c) was made
        "node_added_at": next(m.t for m in messages if m.verb in ("CREATE", "PATCH")
                              and m.resource == "nodes" and m.name in ("node-d", "node-c")),
        "events": events(cluster),
        "scheduler_peers": sorted({m.dst for m in messages if m.src.startswith("kube-scheduler")}
                                  | {m.src for m in messages
                                     if m.dst.startswith("kube-scheduler")}),
        "lease_holder": admin.get("leases", "kube-scheduler", "kube-system")["spec"][
            "holderIdentity"],
    }
    return ScenarioResult("scheduling", cluster, messages, facts)


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
