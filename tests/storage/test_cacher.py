"""The watch cache (``apiserver/pkg/storage/cacher``): watchers filed by the pods'
``spec.nodeName`` trigger get only the events of their node; the others get everything."""

from __future__ import annotations

from typing import Any

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.cluster import Cluster


def _watch(cluster: Cluster, **params: Any) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []

    def on(event: dict[str, Any] | None) -> None:
        if event is not None and event["type"] != "BOOKMARK":
            seen.append((event["type"], event["object"]["metadata"]["name"]))
    cluster.admin().watch("pods", on, **params)
    return seen


def test_a_node_filed_watch_sees_only_its_nodes_pods() -> None:
    cluster = Cluster(0)
    admin = cluster.admin()
    on_a = _watch(cluster, fieldSelector="spec.nodeName=node-a")
    on_b = _watch(cluster, fieldSelector="spec.nodeName=node-b")
    unscheduled = _watch(cluster, fieldSelector="spec.nodeName=")
    everything = _watch(cluster)
    cache = cluster.apiserver.caches["pods"]
    admin.create(objects.pod("p"))
    admin.bind("default", "p", "node-a")
    admin.create(objects.pod("q", node_name="node-b"))
    admin.delete("pods", "p", "default")
    cluster.settle(1)
    # bound: ADDED for node-a's watch; deleted gracefully: MODIFIED (the kubelet finishes it)
    assert on_a == [("ADDED", "p"), ("MODIFIED", "p")]
    assert on_b == [("ADDED", "q")]
    # the unscheduled pod left the "" watch when it was bound: a DELETED for that watcher
    assert unscheduled == [("ADDED", "p"), ("DELETED", "p")]
    assert everything == [("ADDED", "p"), ("MODIFIED", "p"), ("ADDED", "q"), ("MODIFIED", "p")]
    # the cache's own index answers "the pods on node-b" without a scan
    assert [p["metadata"]["name"] for p in cache.by_trigger("node-b")] == ["q"]



def test_a_stopped_watcher_gets_nothing_more() -> None:
    cluster = Cluster(0)
    seen: list[Any] = []
    w = cluster.admin().watch("pods", seen.append, fieldSelector="spec.nodeName=node-a")
    w.stop()
    cluster.settle(1)
    cluster.admin().create(objects.pod("p", node_name="node-a"))
    cluster.settle(1)
    assert seen == [None]  # only the end of the stream


def test_send_initial_events_ends_the_state_with_an_annotated_bookmark() -> None:
    cluster = Cluster(0)
    admin = cluster.admin()
    for name in ("a", "b"):
        admin.create(objects.pod(name))
    events: list[dict] = []
    params = {"sendInitialEvents": True, "resourceVersionMatch": "NotOlderThan",
              "allowWatchBookmarks": True}
    resp = cluster.apiserver.handle(Request("watch", "pods", namespace="default", params=params,
                                            credentials=admin.credentials),
                                    on_event=lambda e: events.append(e) if e else None)
    assert resp.ok
    cluster.settle(0.1)
    kinds = [(e["type"], e["object"]["metadata"].get("name")) for e in events]
    assert kinds == [("ADDED", "a"), ("ADDED", "b"), ("BOOKMARK", None)]
    end = events[-1]["object"]["metadata"]
    assert end["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(end["resourceVersion"]) >= max(int(e["object"]["metadata"]["resourceVersion"])
                                              for e in events[:2])
    admin.create(objects.pod("c"))
    cluster.settle(0.1)
    assert (events[-1]["type"], events[-1]["object"]["metadata"]["name"]) == ("ADDED", "c")
