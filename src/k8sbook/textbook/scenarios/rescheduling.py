"""Scenarios of chapter 5, "Rescheduling is eviction": a descheduler evicts through the
Eviction API, and kube-scheduler preempts.

Each function is a complete, deterministic run on a fresh :class:`~k8sbook.cluster.Cluster`.
"""

from __future__ import annotations

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.controlplane.descheduler import manifests as descheduler_manifests
from k8sbook.core.trace import Message
from k8sbook.textbook.scenarios import (
    ScenarioResult,
    apply,
    events,
    outcome,
    pods,
    scenario,
    user_of,
)
from k8sbook.textbook.scenarios.scheduling import cpu_pod
from k8sbook.textbook.scenarios.views import api_messages

CHAPTER = "05-rescheduling-is-eviction"
BUDGET_KEYS = ("currentHealthy", "desiredHealthy", "disruptionsAllowed", "expectedPods")


@scenario("rescheduling-eviction", "A descheduler evicts through the Eviction API; a PDB "
          "refuses with 429, then allows; the ReplicaSet and the scheduler do the rest", CHAPTER)
def rescheduling(seed: int = 0) -> ScenarioResult:
    """node-a alone runs both replicas of ``web``; node-b joins. A PodDisruptionBudget asks for
    2 available pods, so the descheduler's eviction of a duplicate is refused (429). The
    budget is relaxed to 1; the next eviction is accepted: the kubelet stops the pod, the
    ReplicaSet controller creates a replacement and kube-scheduler puts it on node-b."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    apply(cluster, descheduler_manifests())
    cluster.add_kubelet("node-a").start()
    kcm = cluster.add_controller_manager("kube-controller-manager/cp-1")
    kcm.start()
    sched = cluster.add_scheduler("kube-scheduler/cp-1")
    sched.start()
    cluster.run_for(3)
    admin.create(objects.replicaset("web", replicas=2))
    admin.create(objects.pdb("web", selector={"app": "web"}, min_available=2))
    cluster.run_for(20)
    cluster.add_kubelet("node-b").start()
    cluster.run_for(5)
    before = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods(cluster)}
    desched = cluster.add_descheduler("descheduler")
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
    after = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods(cluster)}
    evictions = [m for m in messages if m.resource == "pods/eviction"]
    facts = {
        "before": before, "after": after, "evictions": desched.evictions,
        "eviction_results": [m.result for m in evictions],
        "pdb_refusing": {k: pdb_refusing[k] for k in BUDGET_KEYS},
        "pdb_allowing": {k: pdb_allowing[k] for k in BUDGET_KEYS},
        "descheduler_identity": user_of(cluster, desched.client),
        "descheduler_peers": sorted({m.dst for m in messages if m.src == "descheduler"}),
        "rs_log": kcm.controllers["replicaset"].log,
        "pods_running": sorted(p["metadata"]["name"] for p in pods(cluster)
                               if p["status"].get("phase") == "Running"),
    }
    return ScenarioResult("rescheduling-eviction", cluster, messages, facts)


@scenario("preemption", "A high-priority pod preempts a low-priority one", CHAPTER)
def preemption(seed: int = 0, *, batch_priority_class: str = "") -> ScenarioResult:
    """One node with 2 CPUs runs ``batch`` (priority 0, 1500m). ``critical`` (PriorityClass
    ``high``, value 1000000, 1 CPU) does not fit; DefaultPreemption picks ``batch`` as the
    victim, sets ``status.nominatedNodeName`` and deletes it; once the kubelet has stopped it,
    ``critical`` is bound.

    ``batch_priority_class="high"`` (chapter 5's exercise) gives ``batch`` the same class:
    there is then no lower-priority victim, and ``critical`` stays pending."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    cluster.add_kubelet("node-a", cpu="2").start()
    sched = cluster.add_scheduler("kube-scheduler/cp-1")
    sched.start()
    cluster.run_for(3)
    admin.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                  "metadata": {"name": "high"}, "value": 1000000,
                  "description": "for pods that must run"})
    admin.create(cpu_pod("batch", "1500m", **(
        {"priorityClassName": batch_priority_class} if batch_priority_class else {})))
    cluster.run_for(10)
    mark = cluster.trace.mark()
    admin.create(cpu_pod("critical", "1", priorityClassName="high"))
    cluster.run_for(2)
    nominated = admin.get("pods", "critical", "default")["status"].get("nominatedNodeName", "")
    cluster.run_for(40)
    messages = cluster.trace.since(mark)
    now = {p["metadata"]["name"]: p for p in pods(cluster)}
    facts = {
        "priorities": {n: p["spec"].get("priority") for n, p in sorted(now.items())},
        "nominated": nominated,
        "preemption": [a.get("preemption") for a in sched.attempts if a.get("preemption")],
        "pods": {n: p["spec"].get("nodeName", "") for n, p in sorted(now.items())},
        "events": [e for e in events(cluster) if e[1] in ("Preempted", "Scheduled",
                                                            "FailedScheduling")],
    }
    return ScenarioResult("preemption", cluster, messages, facts)


def budget_status(seed: int = 0, **budget: int | str) -> dict[str, int]:
    """What the disruption controller writes into a budget's status for ``web`` (a ReplicaSet
    of 2, running on node-a), given ``min_available=`` or ``max_unavailable=`` (see
    :func:`~k8sbook.api.objects.pdb`): ``currentHealthy``, ``desiredHealthy``,
    ``disruptionsAllowed`` and ``expectedPods``, read back from the apiserver."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    cluster.add_kubelet("node-a").start()
    cluster.add_controller_manager("kube-controller-manager/cp-1").start()
    cluster.add_scheduler("kube-scheduler/cp-1").start()
    cluster.run_for(3)
    admin.create(objects.replicaset("web", replicas=2))
    admin.create(objects.pdb("web", selector={"app": "web"}, **budget))  # type: ignore[arg-type]
    cluster.run_for(20)
    status = admin.get("poddisruptionbudgets", "web", "default")["status"]
    return {k: status[k] for k in BUDGET_KEYS}


def evict_pending(seed: int = 0) -> ScenarioResult:
    """Chapter 5's exercise: a Pod that no scheduler places stays ``Pending``; a budget that
    allows no disruption covers it; kubectl evicts it. ``facts["answer"]`` is what the
    apiserver answered, ``facts["budget"]`` the budget's status, ``facts["pod_left"]`` whether
    the Pod still exists afterwards."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    cluster.add_controller_manager("kube-controller-manager/cp-1").start()
    cluster.run_for(3)
    admin.create(objects.pod("lonely", labels={"app": "lonely"}))
    admin.create(objects.pdb("lonely", selector={"app": "lonely"}, min_available=1))
    cluster.run_for(5)
    status = admin.get("poddisruptionbudgets", "lonely", "default")["status"]
    phase = admin.get("pods", "lonely", "default")["status"]["phase"]
    mark = cluster.trace.mark()
    answer = outcome(lambda: admin.evict("default", "lonely"), cluster.trace)
    cluster.run_for(1)
    left = [p["metadata"]["name"] for p in pods(cluster)]
    facts = {"phase": phase, "budget": {k: status[k] for k in BUDGET_KEYS},
             "answer": str(answer), "pod_left": "lonely" in left}
    return ScenarioResult("evict-pending", cluster, cluster.trace.since(mark), facts)


def eviction_story(result: ScenarioResult) -> list[Message]:
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


__all__ = ["budget_status", "evict_pending", "eviction_story", "preemption", "rescheduling"]
