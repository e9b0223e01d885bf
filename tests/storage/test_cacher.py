"""The watch cache (storage/cacher.py): streaming lists (KEP-3157)."""

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.cluster import Cluster


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
