"""Scenarios of chapter 2, "The hub": kube-apiserver in front of etcd.

Each function is a complete, deterministic run on a fresh :class:`~k8sbook.cluster.Cluster`.
"""

from __future__ import annotations

from typing import Any

from k8sbook.api import objects
from k8sbook.client.informer import DeletedFinalStateUnknown, SharedIndexInformer
from k8sbook.cluster import Cluster
from k8sbook.storage import etcd3
from k8sbook.textbook.scenarios import ScenarioResult, outcome, scenario

CHAPTER = "02-the-hub"


@scenario("hub-write-and-watch", "A write goes through the apiserver to etcd and back out to a "
          "watcher", CHAPTER)
def write_and_watch(seed: int = 0) -> ScenarioResult:
    """kubectl creates a Pod; kube-scheduler (the real one, started with
    ``--leader-elect=false``), watching Pods, hears of it, filters and scores the two nodes and
    binds it; an informer of the controller manager, watching too, sees the binding. Only
    kube-apiserver touches etcd. The Nodes are created by the administrator, standing in for
    kubelets registering (chapter 7)."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    admin.create(objects.node("node-a", cpu="2"))
    admin.create(objects.node("node-b", cpu="4"))
    sched = cluster.add_scheduler("kube-scheduler", leader_elect=False)
    sched.start()
    kcm_pods = SharedIndexInformer(cluster.client("kube-controller-manager"), "pods")
    seen: dict[str, list[str]] = {"kube-scheduler": [], "kube-controller-manager": []}
    assert sched.pod_informer is not None
    for name, inf in (("kube-scheduler", sched.pod_informer),
                      ("kube-controller-manager", kcm_pods)):
        inf.add_event_handler(  # an observer's handler beside the component's own
            on_add=lambda o, n=name: seen[n].append(f"add {o['metadata']['name']}"),
            on_update=lambda old, new, n=name: seen[n].append(
                f"update {new['metadata']['name']} nodeName={new['spec'].get('nodeName', '')}"))
    kcm_pods.run()
    cluster.settle(1.0)
    mark = cluster.trace.mark()
    admin.create(objects.pod("web", labels={"app": "web"}))
    cluster.settle(1.0)
    messages = cluster.trace.since(mark)
    etcd_clients = sorted({m.src for m in messages if m.dst == "etcd"})
    decision = next(a for a in sched.attempts if a["pod"] == "default/web")
    binding = next(m for m in messages if m.resource == "pods/binding")
    facts = {"etcd_clients": etcd_clients, "seen": seen,
             "node_name": admin.get("pods", "web", "default")["spec"].get("nodeName", ""),
             # what the scheduler's own cycle computed, and the Binding as the trace has it
             "scores": decision.get("scores", {}), "chosen": decision.get("node", ""),
             "binding": {"src": binding.src, "name": binding.name, "result": binding.result}}
    return ScenarioResult("hub-write-and-watch", cluster, messages, facts)


@scenario("hub-optimistic-concurrency", "Two writers, one resourceVersion: the second gets "
          "409 Conflict and retries", CHAPTER)
def optimistic_concurrency(seed: int = 0) -> ScenarioResult:
    """Two clients read the same ConfigMap, both change it and write it back with the
    resourceVersion they read. The first wins; the second is refused with 409 Conflict and
    the store keeps the first write; the second re-reads and writes again."""
    cluster = Cluster(seed)
    alice, bob = cluster.admin(), cluster.client("kubectl/bob")
    bob.credentials = alice.credentials  # the same admin identity from a second terminal
    cluster.admin().create(objects.configmap("settings", data={"replicas": "1"}))
    mark = cluster.trace.mark()
    a = alice.get("configmaps", "settings", "default")
    b = bob.get("configmaps", "settings", "default")
    read_rv = a["metadata"]["resourceVersion"]
    a["data"]["replicas"] = "2"
    written = alice.update(a)
    b["data"]["replicas"] = "5"
    refused = outcome(lambda: bob.update(b), cluster.trace)
    conflict = {"code": refused.code, "reason": refused.reason, "message": refused.message}
    after_conflict = alice.get("configmaps", "settings", "default")
    fresh = bob.get("configmaps", "settings", "default")
    fresh["data"]["replicas"] = "5"
    retried = bob.update(fresh)
    facts = {
        "read_resource_version": read_rv,
        "first_write_resource_version": written["metadata"]["resourceVersion"],
        "conflict": conflict,
        "after_conflict": {"data": after_conflict["data"],
                           "resourceVersion": after_conflict["metadata"]["resourceVersion"]},
        "after_retry": {"data": retried["data"],
                        "resourceVersion": retried["metadata"]["resourceVersion"]},
    }
    return ScenarioResult("hub-optimistic-concurrency", cluster, cluster.trace.since(mark),
                          facts)


@scenario("hub-watch-from-revision", "A watch started from an old resourceVersion replays "
          "every change after it, in order", CHAPTER)
def watch_from_revision(seed: int = 0) -> ScenarioResult:
    cluster = Cluster(seed)
    admin = cluster.admin()
    first = admin.create(objects.configmap("counter", data={"n": "0"}))
    start_rv = first["metadata"]["resourceVersion"]
    for n in (1, 2, 3):
        admin.patch("configmaps", "counter", {"data": {"n": str(n)}}, "default")
    admin.delete("configmaps", "counter", "default")
    cluster.settle(1.0)
    mark = cluster.trace.mark()
    events: list[dict[str, Any]] = []
    watcher = cluster.client("kubectl").watch(
        "configmaps", lambda e: events.append(e) if e else None, "default",
        resourceVersion=start_rv)
    cluster.settle(1.0)
    watcher.stop()
    cluster.settle(0.1)
    replay = [(e["type"], e["object"]["metadata"]["resourceVersion"],
               (e["object"].get("data") or {}).get("n", "")) for e in events]
    facts = {"start_resource_version": start_rv, "replay": replay,
             "etcd_revision": cluster.etcd.revision}
    return ScenarioResult("hub-watch-from-revision", cluster, cluster.trace.since(mark), facts)


def _state(items: list[dict[str, Any]]) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in items}


@scenario("hub-compaction-relist", "An informer loses its watch, the history is compacted, it "
          "gets 410 Gone, relists, and misses nothing", CHAPTER)
def compaction_relist(seed: int = 0, *, compact: bool = True) -> ScenarioResult:
    """The scheduler's Pod informer is cut off from the apiserver. While it is away, one Pod
    changes, one is deleted, one is created, and the apiserver compacts etcd. When the
    connection returns, the reflector's watch from its last resourceVersion gets 410 Expired;
    it relists and its handlers get the missed update, a delete (with a
    DeletedFinalStateUnknown tombstone) and the add. Its cache ends equal to the server's.

    With ``compact=False`` (chapter 2's exercise) the apiserver does not compact while the
    informer is away: the same watch resumes, replays the three changes and nothing relists."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    admin.create(objects.namespace("demo"))
    for name in ("a", "b"):
        admin.create(objects.pod(name, "demo", labels={"v": "1"}))
    informer = SharedIndexInformer(cluster.client("kube-scheduler"), "pods")
    handled: list[str] = []
    informer.add_event_handler(
        on_add=lambda o: handled.append(f"add {o['metadata']['name']}"),
        on_update=lambda old, new: handled.append(
            f"update {new['metadata']['name']} "
            f"rv {old['metadata']['resourceVersion']}->{new['metadata']['resourceVersion']}"),
        on_delete=lambda o: handled.append(
            f"delete {o.key} (tombstone)" if isinstance(o, DeletedFinalStateUnknown)
            else f"delete {o['metadata']['name']}"))
    informer.run()
    cluster.run_for(2.0)
    mark = cluster.trace.mark()
    handled.append("-- connection lost --")
    cluster.network.isolate("kube-scheduler")
    cluster.run_for(1.0)
    admin.patch("pods", "a", {"metadata": {"labels": {"v": "2"}}}, "demo")
    admin.delete("pods", "b", "demo")
    admin.create(objects.pod("c", "demo", labels={"v": "1"}))
    compacted_to = cluster.apiserver.compact() if compact else None
    cluster.run_for(1.0)
    handled.append("-- connection back --")
    cluster.network.rejoin("kube-scheduler")
    cluster.run_for(60.0)
    server = admin.list("pods", "demo")["items"]
    facts = {
        "compacted_to": compacted_to,
        "handled": handled,
        "reflector": informer.reflector.history,
        "relists_after_410": informer.reflector.relists_after_410,
        "server_state": _state(server),
        "informer_state": _state(informer.lister("demo")),
    }
    return ScenarioResult("hub-compaction-relist", cluster, cluster.trace.since(mark), facts)


@scenario("hub-etcd-unavailable", "etcd stops answering: reads that need etcd fail, cached "
          "reads and informers carry on, and everything recovers", CHAPTER)
def etcd_unavailable(seed: int = 0) -> ScenarioResult:
    """With etcd down, a write and a consistent read fail with a Status, a list with
    ``resourceVersion=0`` is still served from the watch cache, an informer keeps its cache;
    when etcd is back the same write succeeds. Nothing half-written is left behind."""
    cluster = Cluster(seed)
    admin = cluster.admin()
    admin.create(objects.pod("web"))
    informer = SharedIndexInformer(cluster.client("kube-scheduler"), "pods")
    informer.run()
    cluster.settle(1.0)
    mark = cluster.trace.mark()
    etcd3.stop(cluster.network, cluster.etcd)  # the etcd member stops
    outcomes: dict[str, str] = {}

    def attempt(label: str, call: Any) -> None:
        outcomes[label] = outcome(call, cluster.trace)

    attempt("create pod db", lambda: admin.create(objects.pod("db")))
    attempt("get pod web", lambda: admin.get("pods", "web", "default"))
    attempt("list pods rv=0", lambda: admin.list("pods", "default", resourceVersion="0"))
    cluster.run_for(30.0)
    informer_during = [p["metadata"]["name"] for p in informer.lister()]
    etcd3.serve(cluster.network, cluster.etcd)  # and starts again
    attempt("create pod db again", lambda: admin.create(objects.pod("db")))
    cluster.settle(1.0)
    facts = {"outcomes": outcomes, "informer_during_outage": informer_during,
             "informer_after": [p["metadata"]["name"] for p in informer.lister()]}
    return ScenarioResult("hub-etcd-unavailable", cluster, cluster.trace.since(mark), facts)


def relist_timeline(result: ScenarioResult) -> Any:
    """A timeline of :func:`compaction_relist`: the connection, what the reflector was doing
    (watching, waiting out a backoff) and the compaction, from the trace and the reflector's
    own history."""
    import re

    from k8sbook.textbook import figures

    msgs = result.messages
    lost = next(m.t for m in msgs if m.verb == "CLOSED")
    compact = next(m.t for m in msgs if m.verb == "Compact")
    back = next(m.t for m in msgs if m.verb == "WATCH" and m.result == "200")
    history = result.facts["reflector"]
    end = max(t for t, _ in history) + 1.5
    spans = [("connection", 0.0, lost, "up", "#2e8b57"),
             ("connection", lost, back, "cut off", "#c0392b"),
             ("connection", back, end, "up", "#2e8b57")]
    points = [("etcd", compact, f"compacted to rev {result.facts['compacted_to']}")]
    watching_since: float | None = None
    for t, what in history:
        if what.startswith("watch from"):
            watching_since = t
            points.append(("reflector", t, "watch " + what.split(" from ")[1]))
        elif what.startswith("backoff"):
            if watching_since is not None and t > watching_since:
                spans.append(("reflector", watching_since, t, "watching", "#326ce5"))
            watching_since = None
            wait = float(re.findall(r"[0-9.]+", what)[0])
            spans.append(("reflector", t, t + wait, "backoff", "#999999"))
        elif what.startswith("watch: 410"):
            points.append(("reflector", t, "410 Expired"))
        elif what.startswith("list"):
            points.append(("reflector", t, "list " + what.split(" ")[1]))
    if watching_since is not None:
        spans.append(("reflector", watching_since, end, "watching", "#326ce5"))
    return figures.timeline(["connection", "reflector", "etcd"], spans, points,
                            title="The scheduler's Pod informer loses its watch and relists",
                            width=11.0)


def _team_label_policy(request: dict[str, Any]) -> dict[str, Any]:
    """The demo webhook's logic: every Pod must carry a ``team`` label."""
    labels = (request.get("object") or {}).get("metadata", {}).get("labels") or {}
    if "team" in labels:
        return {"uid": request["uid"], "allowed": True}
    return {"uid": request["uid"], "allowed": False,
            "status": {"code": 403, "message": "every pod needs a team label"}}


@scenario("hub-admission-webhook", "The apiserver calls a validating admission webhook; when "
          "the webhook is down, failurePolicy decides", CHAPTER)
def admission_webhook(seed: int = 0) -> ScenarioResult:
    """A ValidatingWebhookConfiguration sends Pod creations in namespaces labelled
    ``webhooks=on`` to a policy server. The server denies a Pod without a ``team`` label and
    admits one with it. Then the server goes down: with ``failurePolicy: Fail`` the create
    fails with a 500 and nothing is stored; switched to ``Ignore``, it goes through."""
    from k8sbook.apiserver.webhook import WebhookServer, serve_behind_service

    cluster = Cluster(seed)
    admin = cluster.admin()
    server = serve_behind_service(WebhookServer("policy.webhooks.svc", _team_label_policy),
                                  admin, cluster.network, "webhooks", "policy")
    ns = objects.namespace("shop")
    ns["metadata"]["labels"] = {"webhooks": "on"}
    admin.create(ns)
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "team-label"},
        "webhooks": [{
            "name": "team-label.example.com",
            "clientConfig": {"service": {"namespace": "webhooks", "name": "policy",
                                         "path": "/validate", "port": 443}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"webhooks": "on"}},
            "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail", "timeoutSeconds": 10,
        }],
    }
    admin.create(config)
    mark = cluster.trace.mark()
    outcomes: dict[str, str] = {}

    def attempt(label: str, body: dict[str, Any]) -> None:
        outcomes[label] = outcome(lambda: admin.create(body), cluster.trace)

    attempt("1 pod without team label", objects.pod("no-team", "shop"))
    attempt("2 pod with team label", objects.pod("web", "shop", labels={"team": "payments"}))
    attempt("3 default namespace (not selected)", objects.pod("other", "default"))
    server.stop()  # the webhook's listener closes: dials to it are refused
    revision_before = cluster.etcd.revision
    attempt("4 webhook down, failurePolicy Fail",
            objects.pod("db", "shop", labels={"team": "payments"}))
    unchanged = cluster.etcd.revision == revision_before
    admin.patch("validatingwebhookconfigurations", "team-label",
                [{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}],
                content_type="application/json-patch+json")
    attempt("5 webhook down, failurePolicy Ignore",
            objects.pod("db", "shop", labels={"team": "payments"}))
    facts = {"outcomes": outcomes, "store_unchanged_when_failing": unchanged,
             "reviews_received": len(server.received),
             "pods_in_shop": [p["metadata"]["name"] for p in admin.list("pods", "shop")["items"]]}
    return ScenarioResult("hub-admission-webhook", cluster, cluster.trace.since(mark), facts)
