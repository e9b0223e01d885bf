"""DeltaFIFO.Replace against keys still queued (client-go ``delta_fifo.go``), unit and end to
end with a Reflector whose queue is drained late."""

from __future__ import annotations

from typing import Any

from k8sbook.client.informer import (
    DeletedFinalStateUnknown,
    DeltaFIFO,
    Indexer,
    Reflector,
    final_state,
)
from k8sbook.cluster import Cluster


def _obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


def test_replace_deletes_a_queued_key_missing_from_the_list() -> None:
    fifo = DeltaFIFO(Indexer())  # the consumer has popped nothing yet: the indexer is empty
    fifo.add(_obj("a", "1"))
    fifo.update(_obj("a", "2"))
    fifo.replace([])
    key, deltas = fifo.pop()
    assert key == "ns/a" and [k for k, _ in deltas] == ["Added", "Updated", "Deleted"]
    assert deltas[-1][1] == DeletedFinalStateUnknown("ns/a", _obj("a", "2"))


def test_replace_tombstone_carries_the_newest_queued_state_not_the_indexers() -> None:
    known = Indexer()
    known.add(_obj("a", "1"))
    fifo = DeltaFIFO(known)
    fifo.update(_obj("a", "5"))  # queued, not yet popped
    fifo.replace([])
    _, deltas = fifo.pop()
    assert [k for k, _ in deltas] == ["Updated", "Deleted"]
    assert final_state(deltas[-1][1])["metadata"]["resourceVersion"] == "5"
    assert fifo.pop() is None  # one tombstone, not a second one from the indexer


def test_replace_of_a_queued_deletion_keeps_the_real_deletion() -> None:
    known = Indexer()
    known.add(_obj("a", "1"))
    fifo = DeltaFIFO(known)
    fifo.delete(_obj("a", "3"))
    fifo.replace([])
    _, deltas = fifo.pop()
    assert deltas == [("Deleted", _obj("a", "3"))]  # isDeletionDup keeps the non-tombstone


def _configmap(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"v": value}}


def test_reflector_relist_deletes_what_a_slow_consumer_has_still_queued() -> None:
    """The watch breaks, the object is deleted and etcd compacted, the Reflector relists:
    the consumer, which had not popped the object's Added yet, must still learn of its
    deletion. Before, Replace looked only at the indexer, so the object came back to life."""
    cluster = Cluster(0)
    admin = cluster.admin()
    client = cluster.client("kube-controller-manager")
    indexer = Indexer()
    fifo = DeltaFIFO(indexer)
    reflector = Reflector(client, "configmaps", fifo)
    reflector.run()
    admin.create(_configmap("doomed", "1"))
    cluster.settle()
    assert list(fifo.queue) == ["default/doomed"]  # queued, never popped
    cluster.network.isolate(client.instance)
    admin.delete("configmaps", "doomed", "default")
    admin.create(_configmap("other", "1"))
    cluster.apiserver.compact()
    cluster.run_for(5.0)
    cluster.network.rejoin(client.instance)
    cluster.run_for(120.0)
    assert reflector.lists == 2
    while (popped := fifo.pop()) is not None:  # the consumer, at last
        key, deltas = popped
        for kind, obj in deltas:
            if kind == "Deleted":
                indexer.items.pop(key, None)
            else:
                indexer.add(obj)
    assert indexer.list_keys() == ["default/other"]
    reflector.stop()


def test_indexer_keeps_its_indexes_up_to_date_on_every_change() -> None:
    """``threadSafeMap.updateIndices``: add, update (the value moves) and delete keep
    ``by_index`` right without a scan; an index added later covers what is already stored."""
    def node_of(o: dict[str, Any]) -> list[str]:
        node = o.get("spec", {}).get("nodeName")
        return [node] if node else []

    store = Indexer({"node": node_of})
    a, b = _obj("a", "1"), _obj("b", "1")
    store.add(a)
    store.add(b)
    assert store.by_index("node", "n1") == []
    store.update({**a, "spec": {"nodeName": "n1"}})
    store.update({**b, "spec": {"nodeName": "n1"}})
    assert [o["metadata"]["name"] for o in store.by_index("node", "n1")] == ["a", "b"]
    store.update({**b, "spec": {"nodeName": "n2"}})
    assert [o["metadata"]["name"] for o in store.by_index("node", "n1")] == ["a"]
    store.delete_key("ns/a")
    assert store.by_index("node", "n1") == [] and "n1" not in store.indices["node"]
    store.add_indexer("rv", lambda o: [o["metadata"]["resourceVersion"]])
    assert [o["metadata"]["name"] for o in store.by_index("rv", "1")] == ["b"]
    assert [o["metadata"]["name"] for o in store.by_index("namespace", "ns")] == ["b"]


def test_by_index_stays_in_key_order_through_every_change() -> None:
    """``by_index`` keeps each entry's keys sorted until a key joins or leaves it: after any
    sequence of adds, updates (moving or not), deletes and a new index, it is the entry's
    keys sorted, as sorting on every call gives."""
    import random

    def node_of(o: dict[str, Any]) -> list[str]:
        node = o.get("spec", {}).get("nodeName")
        return [node] if node else []

    rng = random.Random(7)
    store = Indexer({"node": node_of})
    for step in range(600):
        name, node = f"p{rng.randrange(40)}", rng.choice(["", "n1", "n2", "n3"])
        if rng.random() < 0.25:
            store.delete_key(f"ns/{name}")
        else:
            store.update({**_obj(name, str(step)), "spec": {"nodeName": node}})
        if step == 300:
            store.add_indexer("rv-parity", lambda o: [str(int(o["metadata"]["resourceVersion"])
                                                          % 2)])
        for index, entries in store.indices.items():
            for value in [*entries, "absent"]:
                keys = sorted(entries.get(value, ()))
                assert store.by_index(index, value) == [store.items[k] for k in keys]
