"""The appendix's scenario, runnable on either store: the embedded one or a real etcd.

The book's own code (no Kubernetes counterpart). One story touches everything the apiserver
asks of etcd: a compare-and-swap create, a watch that an informer is fed from, an update by
compare-and-swap on ``mod_revision`` (the binding), an Event written with a one-hour lease, the
compactor's claim-then-compact round every five minutes, the lease running out (etcd deletes
the Event by itself), and a delete. :func:`run_on` runs it on any store, so the appendix can
print the trace from a real etcd next to the trace from the embedded store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.api import objects
from k8sbook.client.events import EventRecorder
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.cluster import Cluster
from k8sbook.core.clock import Clock
from k8sbook.core.trace import Message
from k8sbook.storage import etcd3
from k8sbook.storage.etcd3 import COMPACT_REV_KEY
from k8sbook.storage.etcd3 import PATH as ETCD_PATH
from k8sbook.storage.etcd_api import Etcd
from k8sbook.textbook.scenarios import ScenarioResult, scenario

Store = Etcd | Callable[[Clock], Etcd] | None


def run_on(seed: int = 0, etcd: Store = None) -> ScenarioResult:
    """Run the story on ``etcd`` (a store, a factory taking the clock, or None: the default)."""
    cluster = Cluster(seed, etcd=etcd)
    admin = cluster.admin()
    scheduler = cluster.client("kube-scheduler")
    admin.create(objects.node("node-a"))
    informer = SharedIndexInformer(scheduler, "pods")
    informer.run()
    cluster.settle()
    mark = cluster.trace.mark()

    admin.create(objects.pod("web"))
    cluster.settle()
    pod = informer.get("default/web")
    assert pod is not None, "the informer saw the pod"
    scheduler.bind("default", "web", "node-a")
    EventRecorder(scheduler, "default-scheduler").event(
        pod, "Normal", "Scheduled", "Successfully assigned default/web to node-a")
    cluster.settle()
    events_before = len(admin.list("events")["items"])
    cluster.run_for(3600.0)  # the compactor runs every 300 s; the Event's lease runs out
    events_after = len(admin.list("events")["items"])
    admin.delete("pods", "web", "default", gracePeriodSeconds=0)  # kubectl delete --force
    cluster.settle()

    messages = cluster.trace.since(mark)
    etcd_calls = [m for m in messages if m.path == ETCD_PATH]
    facts: dict[str, Any] = {
        "revision": cluster.etcd.revision,
        "compact_revision": cluster.etcd.compact_revision,
        "events_before_expiry": events_before,
        "events_after_expiry": events_after,
        "informer_notifications": [n[1:] for n in informer.notifications],
        "etcd_verbs": sorted({m.verb for m in etcd_calls}),
    }
    informer.stop()
    return ScenarioResult("real-etcd", cluster, messages, facts)


def key_messages(result: ScenarioResult) -> list[Message]:
    """The messages worth reading: no bookmarks or watch restarts, one compactor round."""
    out, compactions = [], 0
    for m in result.messages:
        if m.verb in ("BOOKMARK", "CLOSED", "WATCH"):
            continue
        if m.path == ETCD_PATH and (m.verb == "Compact" or m.resource == COMPACT_REV_KEY):
            compactions += m.verb == "Compact"
            if compactions > 1 or (compactions == 1 and m.verb != "Compact"):
                continue
        out.append(m)
    return out


def _configmap(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"v": value}}


def embedded_outage(cluster: Cluster, down: bool) -> None:
    """Stop (``down=True``) or restart the embedded etcd member, the way :func:`outage_on`
    needs: its process stops (the client port closes, no lease expires while it is down) and
    starts again on the same data (every lease gets its TTL again)."""
    if down:
        etcd3.stop(cluster.network, cluster.etcd)
    else:
        etcd3.serve(cluster.network, cluster.etcd)


def outage_on(seed: int = 0, etcd: Store = None,
              switch: Callable[[Cluster, bool], None] = embedded_outage) -> ScenarioResult:
    """etcd goes down while the cluster runs, then comes back.

    ``switch(cluster, True)`` stops the store and ``switch(cluster, False)`` brings it back
    (for a real etcd: stop and start the process). While it is down, requests that need etcd
    fail with the apiserver's Status and write nothing; reads the watch cache can serve still
    work; afterwards the same writes succeed and the informer sees them.
    """
    from k8sbook.core.status import StatusError

    cluster = Cluster(seed, etcd=etcd)
    admin = cluster.admin()
    informer = SharedIndexInformer(cluster.client("kube-controller-manager"), "configmaps")
    informer.run()
    admin.create(_configmap("one", "1"))
    cluster.settle()
    mark = cluster.trace.mark()
    before = cluster.etcd.revision
    switch(cluster, True)
    failures = []
    for attempt in (lambda: admin.create(_configmap("two", "2")),
                    lambda: admin.patch("configmaps", "one", {"data": {"v": "x"}}, "default"),
                    lambda: admin.get("configmaps", "one", "default")):
        try:
            attempt()
            failures.append((200, "", ""))
        except StatusError as err:
            failures.append((err.code, err.reason, err.status["message"]))
    cached = admin.list("configmaps", "default", resourceVersion="0")  # the watch cache
    cluster.run_for(30.0)
    switch(cluster, False)
    admin.create(_configmap("two", "2"))
    admin.patch("configmaps", "one", {"data": {"v": "x"}}, "default")
    cluster.settle()
    facts: dict[str, Any] = {
        "failures": failures,
        "listed_from_cache_while_down": [i["metadata"]["name"] for i in cached["items"]],
        "writes_after_outage": cluster.etcd.revision - before,
        "informer_notifications": [n[1:] for n in informer.notifications],
        "informer_keys": informer.indexer.list_keys(),
    }
    informer.stop()
    return ScenarioResult("etcd-outage", cluster, cluster.trace.since(mark), facts)


@scenario("real-etcd", "One story on the apiserver's store: CAS, watch, lease, compaction",
          "a2-real-etcd")
def real_etcd(seed: int = 0) -> ScenarioResult:
    """On the embedded store, or on the etcd ``$K8SBOOK_ETCD`` names."""
    return run_on(seed)
