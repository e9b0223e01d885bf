"""The embedded etcd: revisions, ranges, transactions, watch, compaction, leases."""

import pytest

from k8sbook.core.clock import Clock
from k8sbook.storage.etcd import (
    CompactedError,
    Compare,
    DeleteRange,
    FutureRevisionError,
    LeaseNotFoundError,
    MemoryEtcd,
    Put,
    prefix_end,
)


@pytest.fixture
def store() -> MemoryEtcd:
    return MemoryEtcd(Clock())


def test_revisions_and_versions(store):
    assert store.revision == 1
    assert store.put("/a", "1") == 2
    assert store.put("/a", "2") == 3
    assert store.put("/b", "x") == 4
    a = store.get("/a")
    assert (a.create_revision, a.mod_revision, a.version, a.value) == (2, 3, 2, "2")
    # a delete bumps the revision; re-creating starts a new version history
    rev, deleted = store.delete_range("/a")
    assert (rev, deleted) == (5, 1)
    store.put("/a", "3")
    a = store.get("/a")
    assert (a.create_revision, a.version) == (6, 1)


def test_delete_of_nothing_does_not_bump_revision(store):
    store.put("/a", "1")
    assert store.delete_range("/nothing") == (2, 0)
    assert store.revision == 2


def test_range_by_prefix_and_at_revision(store):
    store.put("/r/a", "1")
    store.put("/r/b", "1")
    store.put("/s/c", "1")
    store.put("/r/a", "2")
    resp = store.range("/r/", prefix_end("/r/"))
    assert [kv.key for kv in resp.kvs] == ["/r/a", "/r/b"]
    assert resp.revision == 5
    old = store.range("/r/", prefix_end("/r/"), revision=3)
    assert [(kv.key, kv.value) for kv in old.kvs] == [("/r/a", "1"), ("/r/b", "1")]
    with pytest.raises(FutureRevisionError):
        store.range("/r/a", revision=99)


def test_txn_compare_and_swap(store):
    store.put("/k", "v1")
    mod = store.get("/k").mod_revision
    ok = store.txn([Compare("/k", "MOD", "=", mod)], [Put("/k", "v2")], [])
    assert ok.succeeded and store.get("/k").value == "v2"
    stale = store.txn([Compare("/k", "MOD", "=", mod)], [Put("/k", "v3")], [])
    assert not stale.succeeded and store.get("/k").value == "v2"
    assert stale.revision == ok.revision  # a failed txn writes nothing
    create = store.txn([Compare("/new", "CREATE", "=", 0)], [Put("/new", "x")], [])
    again = store.txn([Compare("/new", "CREATE", "=", 0)], [Put("/new", "y")], [])
    assert create.succeeded and not again.succeeded


def test_txn_is_atomic_one_revision(store):
    resp = store.txn([], [Put("/x", "1"), Put("/y", "1"), DeleteRange("/nothing")], [])
    assert store.get("/x").mod_revision == store.get("/y").mod_revision == resp.revision


def test_watch_replays_from_revision_in_order(store):
    for v in "123":
        store.put("/w", v)
    got = []
    store.watch("/w", None, 3, lambda batch: got.extend((e.type, e.kv.value) for e in batch))
    store.delete_range("/w")
    assert got == [("PUT", "2"), ("PUT", "3"), ("DELETE", "")]


def test_compaction(store):
    for v in "1234":
        store.put("/c", v)
    store.compact(4)
    assert store.get("/c").value == "4"
    assert store.range("/c", revision=4).kvs[0].value == "3"
    with pytest.raises(CompactedError) as err:
        store.range("/c", revision=3)
    assert str(err.value) == "mvcc: required revision has been compacted"
    with pytest.raises(CompactedError):
        store.watch("/c", None, 2, lambda batch: None)
    with pytest.raises(CompactedError):
        store.compact(3)


def test_lease_expiry_deletes_keys_on_virtual_time():
    clock = Clock()
    store = MemoryEtcd(clock)
    lease = store.lease_grant(10)
    store.put("/e", "event", lease=lease)
    clock.run_until(5)
    assert store.lease_keepalive(lease) == 10
    clock.run_until(14)
    assert store.get("/e") is not None
    clock.run_until(15.1)
    assert store.get("/e") is None
    with pytest.raises(LeaseNotFoundError):
        store.lease_keepalive(lease)
    with pytest.raises(LeaseNotFoundError):
        store.put("/f", "x", lease=lease)


def test_etcd3_stop_and_serve_stop_and_start_the_embedded_member() -> None:
    """``etcd3.stop`` is the member stopping (port closed, store down, no lease expires);
    ``etcd3.serve`` starts it again (every lease gets its TTL again). ``network.close`` alone
    is a member nobody can reach, still running: its leases go on expiring."""
    from k8sbook.cluster import Cluster
    from k8sbook.storage import etcd3

    cluster = Cluster(0)
    store = cluster.etcd
    assert isinstance(store, MemoryEtcd)
    lease = store.lease_grant(10)
    store.put("/leased", "x", lease)
    etcd3.stop(cluster.network, store)
    assert not store.running and cluster.network.listener(etcd3.ETCD_ADDRESS) is None
    cluster.run_for(20.0)
    etcd3.serve(cluster.network, store)
    assert store.running and store.get("/leased") is not None
    cluster.run_for(9.0)
    assert store.get("/leased") is not None
    cluster.run_for(2.0)
    assert store.get("/leased") is None

    lease = store.lease_grant(10)
    store.put("/unreachable", "x", lease)
    cluster.network.close(etcd3.ETCD_ADDRESS)
    cluster.run_for(11.0)
    assert store.get("/unreachable") is None  # expired while nobody could reach it
    etcd3.serve(cluster.network, store)


def test_the_watcher_group_picks_exactly_the_watches_in_range() -> None:
    """``_WatcherGroup.watching`` (a binary search over the ranges' bounds) gives the same
    watches, in the same order, as trying ``in_range`` on every open watch."""
    import random

    from k8sbook.storage.etcd import WatchHandle, _WatcherGroup, in_range
    rand = random.Random(7)
    alphabet = ["", "/a", "/a/", "/a/b", "/b", "/registry/pods/", "/registry/pods/x",
                "/registry/podsx", "\0", "~"]
    group, handles = _WatcherGroup(), []
    for i in range(60):
        key = rand.choice(alphabet[1:]) + rand.choice(["", "1", "/z"])
        end = rand.choice([None, "\0", "", prefix_end(key), rand.choice(alphabet[1:])])
        handles.append(WatchHandle(i + 1, key, end, lambda _events: None))
        group.add(handles[-1])
        if rand.random() < 0.2:  # cancel one now and then, so the bounds are rebuilt
            gone = handles.pop(rand.randrange(len(handles)))
            group.remove(gone)
        for probe in [h.key for h in handles] + [a + s for a in alphabet for s in ("", "0")]:
            want = [h for h in handles if in_range(probe, h.key, h.range_end)]
            assert group.watching(probe) == want, (probe, want)


def test_a_watch_replays_deletes_and_compaction_as_etcd_keeps_them(store):
    store.put("/p/a", "1")  # 2
    store.put("/p/a", "2")  # 3
    store.delete_range("/p/a")  # 4
    store.put("/p/b", "1")  # 5
    seen = []
    store.watch("/p/", prefix_end("/p/"), 2, seen.extend)
    assert [(e.type, e.kv.key, e.kv.mod_revision, e.kv.value, e.prev_kv and e.prev_kv.value)
            for e in seen] == [("PUT", "/p/a", 2, "1", None), ("PUT", "/p/a", 3, "2", "1"),
                               ("DELETE", "/p/a", 4, "", "2"), ("PUT", "/p/b", 5, "1", None)]
    store.compact(3)
    again = []
    store.watch("/p/", prefix_end("/p/"), 3, again.extend)
    # the PUT at the compaction revision is kept, without the version before it
    assert [(e.type, e.kv.mod_revision, e.prev_kv and e.prev_kv.value) for e in again] == [
        ("PUT", 3, None), ("DELETE", 4, "2"), ("PUT", 5, None)]
    store.compact(4)  # the delete at the compaction revision goes with the key
    last = []
    store.watch("/p/", prefix_end("/p/"), 4, last.extend)
    assert [(e.type, e.kv.key) for e in last] == [("PUT", "/p/b")]
    assert store.range("/p/", prefix_end("/p/")).count == 1
