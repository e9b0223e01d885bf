"""The watch cache (``apiserver/pkg/storage/cacher``): watchers filed by the pods'
``spec.nodeName`` trigger get only the events of their node; the others get everything."""

from __future__ import annotations

import json
from typing import Any

import pytest

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


# -- the window of recent events, bounded as watch_cache.go bounds it -------------------------
def _configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"k": "v"}}


def test_the_window_doubles_while_its_events_are_fresh() -> None:
    from k8sbook.storage.cacher import LOWER_BOUND_CAPACITY
    cluster = Cluster(0)
    cache = cluster.apiserver.caches["configmaps"]
    assert cache.capacity == LOWER_BOUND_CAPACITY == 100
    admin = cluster.admin()
    for i in range(250):
        admin.create(_configmap(f"cm-{i:03d}"))
    # 250 events within a few seconds: full at 100 and at 200, each time fresh, so doubled
    assert cache.capacity == 400
    assert len(cache.events) == 250  # none dropped
    first = cache.events[0][0]
    seen: list[str] = []
    admin.watch("configmaps", lambda e: seen.append(e["type"]) if e else None,
                "default", resourceVersion=str(first - 1))
    cluster.settle(1)
    assert seen.count("ADDED") == 250


def test_a_stale_full_window_drops_its_oldest_and_answers_410_before_it() -> None:
    from k8sbook.storage.cacher import EVENT_FRESH_DURATION
    cluster = Cluster(0)
    cache = cluster.apiserver.caches["configmaps"]
    admin = cluster.admin()
    for i in range(100):
        admin.create(_configmap(f"old-{i:03d}"))
    oldest_rv = cache.events[0][0]
    cluster.run_for(EVENT_FRESH_DURATION + 5)  # the window is full and its events are stale
    admin.create(_configmap("new"))
    assert cache.capacity == 100  # not doubled: the oldest event was not fresh
    assert len(cache.events) == 100 and cache.events[0][0] == oldest_rv + 1
    assert cache.oldest == oldest_rv  # the revision before the oldest event kept
    out: list[dict[str, Any]] = []
    admin.watch("configmaps", lambda e: out.append(e) if e else None, "default",
                resourceVersion=str(oldest_rv - 1))
    cluster.settle(1)
    assert out[0]["type"] == "ERROR"
    status = out[0]["object"]
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"] == f"too old resource version: {oldest_rv - 1} ({oldest_rv})"


def test_the_window_halves_when_a_quarter_of_it_is_stale() -> None:
    from k8sbook.storage.cacher import EVENT_FRESH_DURATION
    cluster = Cluster(0)
    cache = cluster.apiserver.caches["configmaps"]
    admin = cluster.admin()
    for i in range(190):
        admin.create(_configmap(f"a-{i:03d}"))
    assert cache.capacity == 200
    cluster.run_for(EVENT_FRESH_DURATION + 5)
    for i in range(10):
        admin.create(_configmap(f"b-{i:03d}"))
    assert cache.capacity == 200 and len(cache.events) == 200  # full, not yet resized
    last = cache.events[-1][0]
    admin.create(_configmap("b-010"))
    # the 201st event found the ring full and the event a quarter back (50) stale: halved,
    # keeping the newest 100 events, then the oldest of those dropped for the new one
    assert cache.capacity == 100 and len(cache.events) == 100
    assert cache.events[-1][0] == last + 1 and cache.events[0][0] == last - 98


# -- one decoded object for every watcher, and the mutation detector --------------------------
def test_watchers_share_the_caches_object_and_its_one_encoding() -> None:
    from k8sbook.core.trace import Encoded, wire_bytes
    cluster = Cluster(0)
    got: list[list[dict[str, Any]]] = [[], []]
    for box in got:
        cluster.admin().watch("configmaps", lambda e, box=box: box.append(e) if e else None,
                              "default")
    cluster.admin().create(_configmap("shared"))
    cluster.settle(1)
    (a,), (b,) = ([e for e in box if e["type"] == "ADDED"] for box in got)
    cached = cluster.apiserver.cached("configmaps", "default", "shared")
    assert a["object"] is b["object"] is cached
    assert type(a) is Encoded and a.wire_size == len(
        json.dumps(dict(a), separators=(",", ":")))
    assert wire_bytes(a) == wire_bytes(dict(a))  # the size without encoding again


def test_the_mutation_detector_catches_a_component_changing_a_shared_object() -> None:
    from k8sbook.core import mutation_detector
    mutation_detector.detect()
    try:
        cluster = Cluster(0)
        seen: list[dict[str, Any]] = []
        cluster.admin().watch("configmaps", lambda e: seen.append(e) if e else None, "default")
        cluster.admin().create(_configmap("x"))
        cluster.settle(1)
        mutation_detector.check()  # nobody changed anything
        seen[-1]["object"]["data"]["k"] = "changed"  # what client-go forbids
        with pytest.raises(AssertionError, match="cache mutation detected"):
            mutation_detector.check()
    finally:
        mutation_detector.detect(mutation_detector.enabled_by_environment())


# -- what the cache holds: etcd's bytes until someone needs the object, interned objects ------
def test_an_unwatched_cache_holds_etcds_values_and_decodes_them_when_read() -> None:
    from k8sbook.storage.etcd3 import decode
    from k8sbook.storage.etcd_api import KeyValue
    cluster = Cluster(0)
    cache = cluster.apiserver.caches["configmaps"]
    assert not cache.watchers
    admin = cluster.admin()
    admin.create(_configmap("lazy"))
    admin.patch("configmaps", "lazy", {"data": {"k": "v2"}}, "default")
    key = "/registry/configmaps/default/lazy"
    stored = cluster.etcd.get(key)
    held = cache._objects[key]  # still the etcd KeyValue: nobody asked for the object
    assert isinstance(held, KeyValue) and held is not None and held.value == stored.value
    # a list answers with copies decoded from it, and leaves it as it is
    items, _ = cache.list("default", lambda o: True)
    assert [o for o in items if o["metadata"]["name"] == "lazy"] == [decode(stored)]
    assert cache._objects[key] is held
    # an in-process read decodes it once, keeps it, and shares it from then on
    obj = cluster.apiserver.cached("configmaps", "default", "lazy")
    assert obj == decode(stored) and list(obj) == list(decode(stored))
    assert cluster.apiserver.cached("configmaps", "default", "lazy") is obj
    # the window replays both changes as they were, the current one as the cache's object
    window = [(rev, kind, o) for rev, kind, o, _ in cache.window()
              if o["metadata"]["name"] == "lazy"]
    assert [kind for _, kind, _ in window] == ["ADDED", "MODIFIED"]
    assert window[0][2]["data"] == {"k": "v"} and window[1][2] is obj


def test_a_watch_from_inside_the_window_gets_what_a_live_watch_got() -> None:
    cluster = Cluster(0)
    admin = cluster.admin()
    live: list[dict[str, Any]] = []
    admin.watch("configmaps", lambda e: live.append(e) if e else None, "default")
    cluster.settle(1)
    start = cluster.apiserver.caches["configmaps"].revision
    admin.create(_configmap("w"))
    admin.patch("configmaps", "w", {"data": {"k": "v2"}}, "default")
    admin.delete("configmaps", "w", "default")
    cluster.settle(1)
    later: list[dict[str, Any]] = []
    admin.watch("configmaps", lambda e: later.append(e) if e else None, "default",
                resourceVersion=str(start))
    cluster.settle(1)
    assert [e["type"] for e in later] == ["ADDED", "MODIFIED", "DELETED"]
    assert [dict(e) for e in later] == [dict(e) for e in live]


def test_interned_objects_equal_their_decoding_key_order_and_all() -> None:
    from k8sbook.storage.cacher import _interned
    pod = objects.pod("p", node_name="node-a")
    pod["metadata"]["labels"] = {"app": "x", "tier": "web"}
    text = json.dumps(pod, separators=(",", ":"))
    a, b = _interned(json.loads(text)), _interned(json.loads(text))
    assert a == json.loads(text)
    assert json.dumps(a, separators=(",", ":")) == text  # the same keys in the same order
    assert a is not b and a["spec"] is not b["spec"]  # two objects, no shared containers
    assert a["spec"]["nodeName"] is b["spec"]["nodeName"]  # one string for both


def _stored(obj: dict[str, Any], rev: int) -> Any:
    from k8sbook.storage import etcd_api
    from k8sbook.storage.etcd3 import encode
    return etcd_api.KeyValue(key="/registry/x", value=encode(obj), create_revision=rev,
                             mod_revision=rev, version=1)


_SHAPES: list[dict[str, Any]] = [
    {"metadata": {"name": "a"}},
    {"metadata": {}},  # nothing but the resourceVersion: no comma before it
    {"kind": "Pod"},  # no metadata at all: the stored value has ``"metadata":{}``
    {"metadata": {"name": "ü-ñ", "resourceVersion": "7", "labels": {"k": "v\n\"x\""}},
     "data": {"f": 1.5, "i": -3, "t": True, "n": None, "e": {}, "l": [1, [2.0], {"z": []}]}},
    objects.pod("p", node_name="node-a"),
]


@pytest.mark.parametrize("kind", ["ADDED", "MODIFIED", "DELETED"])
@pytest.mark.parametrize("shape", range(len(_SHAPES)))
def test_event_size_from_the_stored_value_is_the_encodings(shape: int, kind: str) -> None:
    from k8sbook.storage.cacher import _decode, _sized, _sized_stored
    for rev in (1, 99, 123456789):
        kv = _stored(_SHAPES[shape], rev)
        event = {"type": kind, "object": _decode(kv)}
        assert _sized_stored(event, kv).wire_size == _sized(event).wire_size \
            == len(json.dumps(event, separators=(",", ":")))


def test_event_size_from_the_stored_value_keeps_the_text_when_detecting() -> None:
    from k8sbook.core import mutation_detector
    from k8sbook.storage.cacher import _decode, _sized_stored
    kv = _stored(_SHAPES[0], 5)
    event = {"type": "ADDED", "object": _decode(kv)}
    mutation_detector.detect()
    try:
        payload = _sized_stored(event, kv)
        mutation_detector.check()  # the event's text was kept (nothing changed since)
        payload["object"]["metadata"]["name"] = "changed"
        with pytest.raises(AssertionError):
            mutation_detector.check()
    finally:
        mutation_detector.detect(False)
