"""The trace: messages, and the ``counts`` level that keeps only counts and bytes."""

from __future__ import annotations

import json

import pytest

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.core.trace import COUNTS, Trace, wire_bytes


def test_wire_bytes_is_compact_json_of_the_body() -> None:
    pod = objects.pod("web")
    assert wire_bytes(pod) == len(json.dumps(pod, separators=(",", ":")))
    assert wire_bytes("héllo") == 6
    assert wire_bytes(None) == 0 and wire_bytes(print) == 0

    class Req:
        def __init__(self) -> None:
            self.body = {"a": 1}
    assert wire_bytes(Req()) == len('{"a":1}')
    assert wire_bytes((Req(), print)) == len('{"a":1}')


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown trace level"):
        Trace("everything")


def test_counts_level_keeps_no_messages_but_the_same_paths_and_verbs() -> None:
    def run(level: str) -> Cluster:
        cluster = Cluster(3)
        cluster.trace.level = level
        cluster.add_kubelet("node-a").start()
        cluster.add_scheduler().start()
        cluster.settle(2)
        cluster.admin().create(objects.pod("web"))
        cluster.run_for(20)
        return cluster

    full, counted = run("messages"), run(COUNTS)
    assert counted.trace.messages == []
    # the same traffic: per path and verb, as many messages as the full trace holds
    want: dict[tuple[str, str], int] = {}
    for m in full.trace.messages:
        want[(m.path, m.verb)] = want.get((m.path, m.verb), 0) + 1
    got: dict[tuple[str, str], int] = {}
    for (path, verb, _), (count, _) in counted.trace.tallies.items():
        got[(path, verb)] = got.get((path, verb), 0) + count
    assert got == want
    # a call that stays on its node (CRI, CNI, OCI) is counted per path and verb only: one
    # key for all the sandboxes and containers it named, where the messages name each one
    local = ("kubelet->container-runtime", "container-runtime->cni-plugin",
             "container-runtime->oci-runtime")
    named = {m.resource for m in full.trace.messages if m.path in local}
    assert len(named) > 3
    assert {r for (path, _, r) in counted.trace.tallies if path in local} == {""}
    by_path = counted.trace.totals("path")
    assert list(by_path) == sorted(by_path)
    # the pod went out as JSON: the create carried at least the pod's own bytes, and the
    # kubelet's watch event for it carried the whole object
    create = counted.trace.tallies[("kubectl->kube-apiserver", "CREATE", "pods")]
    assert create[1] >= wire_bytes(objects.pod("web"))
    assert counted.trace.tallies[("kubelet->kube-apiserver", "ADDED", "pods")][1] > 0
    # etcd keys are counted by resource prefix
    assert "/registry/pods" in counted.trace.totals("resource", path="kube-apiserver->etcd")
    # etcd's transactions are counted as gRPC messages (their keys and values)
    assert counted.trace.totals("verb")["Txn"]["bytes"] > 0


def test_table_puts_the_result_right_after_the_time():
    trace = Trace()
    trace.record(1.0, "kubectl", "kube-apiserver", "kubectl->kube-apiserver", "HTTPS", "CREATE",
                 "pods", "default/web", result="409 Conflict")
    trace.record(2.0, "kube-apiserver", "kubelet/node-a", "kubelet->kube-apiserver", "HTTPS",
                 "ADDED", "pods", "default/web", result="105")
    header, conflict, event = trace.table().splitlines()
    assert header.split() == ["t(s)", "result", "from", "to", "message"]
    assert conflict.split()[:2] == ["1.00", "409"]
    assert conflict.endswith("CREATE pods/default/web (Conflict)")
    assert event.split()[:2] == ["2.00", "rv=105"]


def test_an_etcd_key_is_counted_under_its_first_two_segments() -> None:
    keys = ["/registry/leases/kube-node-lease/node-a", "/registry/pods", "/registry/pods/",
            "/registry", "/", "//", "/a//b/c", "/compact_rev_key", "pods", ""]
    for key in keys:
        trace = Trace(COUNTS)
        trace.tally("kube-apiserver->etcd", "Range", 5, resource=key)
        want = "/".join(key.split("/", 3)[:3]) if key.startswith("/") else key
        assert trace.tallies == {("kube-apiserver->etcd", "Range", want): [1, 5]}, key
