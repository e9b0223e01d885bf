"""client-go's side: Reflector, DeltaFIFO, Indexer, SharedIndexInformer, WorkQueue."""

from k8sbook.api import objects
from k8sbook.client.informer import (
    DeletedFinalStateUnknown,
    DeltaFIFO,
    Indexer,
    SharedIndexInformer,
)
from k8sbook.client.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    RateLimitingQueue,
)
from k8sbook.cluster import Cluster
from k8sbook.core.clock import Clock
from k8sbook.textbook.scenarios import run


def test_informer_lists_then_watches_from_the_list_revision():
    cluster = Cluster()
    admin = cluster.admin()
    admin.create(objects.pod("a"))
    informer = SharedIndexInformer(cluster.client("kube-scheduler"), "pods")
    informer.run()
    cluster.settle()
    list_rv = admin.list("pods")["metadata"]["resourceVersion"]
    assert informer.reflector.history[:2] == [
        (0.0, f"list rv=0 -> 1 items at rv {list_rv}"), (0.0, f"watch from rv {list_rv}")]
    assert informer.has_synced()
    admin.create(objects.pod("b"))
    cluster.settle()
    assert [p["metadata"]["name"] for p in informer.lister()] == ["a", "b"]
    assert informer.indexer.by_index("namespace", "default")[0]["metadata"]["name"] == "a"


def test_watch_timeout_rewatches_without_relisting():
    cluster = Cluster()
    informer = SharedIndexInformer(cluster.client("kube-scheduler"), "pods")
    informer.run()
    cluster.run_for(1200)  # watch timeouts are between 5 and 10 minutes
    assert informer.reflector.lists == 1
    assert informer.reflector.watches >= 2


def test_relist_after_compaction_misses_nothing():
    facts = run("hub-compaction-relist").facts
    assert facts["relists_after_410"] == 1
    assert facts["informer_state"] == facts["server_state"]
    after = facts["handled"][facts["handled"].index("-- connection back --") + 1:]
    assert [h.split(" rv ")[0] for h in after] == ["update a", "add c",
                                                   "delete demo/b (tombstone)"]
    relist = [what for _, what in facts["reflector"] if what.startswith("list rv=")]
    assert len(relist) == 2 and relist[1].startswith("list rv=") and 'rv=""' not in relist[1]


def test_deltafifo_replace_emits_tombstones():
    known = Indexer()
    known.add({"metadata": {"name": "gone", "namespace": "ns", "resourceVersion": "1"}})
    fifo = DeltaFIFO(known)
    fifo.replace([{"metadata": {"name": "new", "namespace": "ns", "resourceVersion": "2"}}])
    assert fifo.pop() == ("ns/new", [("Replaced", {"metadata": {
        "name": "new", "namespace": "ns", "resourceVersion": "2"}})])
    key, deltas = fifo.pop()
    assert key == "ns/gone" and deltas[0][0] == "Deleted"
    assert isinstance(deltas[0][1], DeletedFinalStateUnknown)
    assert fifo.pop() is None


def test_workqueue_deduplicates_and_requeues_after_done():
    clock = Clock()
    q = RateLimitingQueue(clock, "test")
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    item = q.get()
    q.add(item)  # added while processing: not queued twice, requeued after done
    assert len(q) == 1
    q.done(item)
    assert list(q.queue) == ["b", "a"]


def test_workqueue_worker_retries_with_exponential_backoff():
    clock = Clock()
    q = RateLimitingQueue(clock, "test")
    attempts = []

    def sync(item):
        attempts.append(clock.now())
        if len(attempts) < 4:
            raise RuntimeError("not yet")

    q.run_worker(sync)
    q.add("key")
    clock.run_for(1)
    assert [round(t, 3) for t in attempts] == [0.0, 0.005, 0.015, 0.035]
    assert q.num_requeues("key") == 0  # forgotten after the success
    assert len(q.errors) == 3


def test_rate_limiters():
    per_item = ItemExponentialFailureRateLimiter()
    assert [per_item.when("x", 0) for _ in range(3)] == [0.005, 0.01, 0.02]
    bucket = BucketRateLimiter(qps=10, burst=2)
    assert [bucket.when(i, 0.0) for i in range(4)] == [0.0, 0.0, 0.1, 0.2]


def test_notifications_are_kept_while_the_trace_keeps_messages():
    def notified(level: str) -> list[tuple[str, str]]:
        cluster = Cluster()
        cluster.trace.level = level
        informer = SharedIndexInformer(cluster.client("kube-scheduler"), "pods")
        informer.run()
        admin = cluster.admin()
        admin.create(objects.pod("a"))
        cluster.settle()
        admin.delete("pods", "a", "default", gracePeriodSeconds=0)
        cluster.settle()
        return [n[1:] for n in informer.notifications]

    assert notified("messages") == [("add", "default/a"), ("delete", "default/a")]
    assert notified("counts") == []  # a run at scale keeps no record of each delivery
