"""The EventRecorder (``client-go/tools/record``): a repeated event is patched, and the
correlator remembers at most ``maxLruCacheEntries`` events, least recently used out first."""

from __future__ import annotations

from k8sbook.api import objects
from k8sbook.client import events
from k8sbook.client.events import EventRecorder
from k8sbook.cluster import Cluster


def test_a_repeated_event_is_patched_and_an_evicted_one_written_anew(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(events, "MAX_LRU_CACHE_ENTRIES", 2)
    cluster = Cluster(0)
    pod = cluster.admin().create(objects.pod("p"))
    rec = EventRecorder(cluster.client("kube-scheduler"), "default-scheduler")
    rec.event(pod, "Normal", "A", "one")
    rec.event(pod, "Normal", "A", "one")  # the same event: count 2 on the same Event
    got = cluster.admin().list("events", "default")["items"]
    assert [(e["reason"], e["count"]) for e in got] == [("A", 2)]
    rec.event(pod, "Normal", "B", "two")
    rec.event(pod, "Normal", "C", "three")  # a third key: "A" is the least recently used
    rec.event(pod, "Normal", "A", "one")  # forgotten, so a new Event
    got = cluster.admin().list("events", "default")["items"]
    assert sorted((e["reason"], e["count"]) for e in got) == [
        ("A", 1), ("A", 2), ("B", 1), ("C", 1)]
    assert len(rec._seen) == 2
