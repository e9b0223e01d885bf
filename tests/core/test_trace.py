"""The trace: messages, and the ``counts`` level that keeps only counts and bytes."""

from __future__ import annotations

import dataclasses
import enum
import json

import pytest

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.core.trace import COUNTS, Encoded, Trace, proto_bytes, wire_bytes


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


# -- the sizes' fast path against the plain walk ------------------------------------------------
# wire_bytes and proto_bytes choose a strategy once per type; these are the rules as their
# docstrings state them, written out as a plain recursive walk (what trace.py did before), so
# that the two can be compared on every payload a cluster's run sends.

def reference_wire_bytes(payload: object) -> int:
    if payload is None or callable(payload):
        return 0
    if type(payload) is Encoded:
        return payload.wire_size
    if isinstance(payload, (dict, list)):
        try:
            return len(json.dumps(payload, separators=(",", ":")).encode())
        except TypeError:
            return reference_proto_bytes(payload)
    if isinstance(payload, (bytes, bytearray)):
        return len(payload)
    if isinstance(payload, str):
        return len(payload.encode())
    if isinstance(payload, tuple):
        return sum(reference_wire_bytes(p) for p in payload)
    if dataclasses.is_dataclass(payload):
        return reference_proto_bytes(payload)
    body = getattr(payload, "body", None)
    return reference_wire_bytes(body) if body is not None else 0


def reference_proto_bytes(value: object) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (list, tuple)):
        return sum(reference_proto_bytes(v) for v in value)
    if isinstance(value, bool):
        return 1
    if isinstance(value, (int, float)):
        return 8
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, dict):
        return reference_wire_bytes(value)
    if dataclasses.is_dataclass(value):
        return sum(reference_proto_bytes(getattr(value, f.name))
                   for f in dataclasses.fields(value))
    return 0


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


NAME = Name("näme")


@dataclasses.dataclass(frozen=True)
class Inner:
    flag: bool
    ratio: float
    note: str | None = None
    raw: bytes = b""


@dataclasses.dataclass
class Outer:
    key: str
    inner: Inner
    items: list[object]
    extra: dict[str, object]
    level: Level = Level.HIGH
    name: Name = NAME
    nothing: object = None
    run: object = print


@dataclasses.dataclass
class Callable_:
    x: str = "abc"

    def __call__(self) -> None:
        pass


def test_the_sizes_are_those_of_the_plain_walk_for_every_shape() -> None:
    inner = Inner(True, 0.5, "ü", b"\x00\x01")
    shapes: list[object] = [
        None, print, "", "héllo", b"abc", bytearray(b"xy"), {}, [], (), {"a": [1, 2.5, None]},
        [inner], [{"a": 1}, inner], [inner, {"a": 1}], ["x", inner], (inner, "k", {}),
        Outer("k", inner, [inner, "s", 7, True, None, (1, "é")], {"x": {"y": "z"}}),
        Encoded({"type": "ADDED"}, 99), [Encoded({"a": 1}, 50), inner], Callable_(),
        Level.HIGH, Name("abc"), True, 12, 1.5, object(), {"k": "\u2603"},
        Outer("", Inner(False, 1.0), [], {}, nothing=Encoded({}, 7)),
    ]
    for shape in shapes:
        assert wire_bytes(shape) == reference_wire_bytes(shape), shape
        assert proto_bytes(shape) == reference_proto_bytes(shape), shape
    # twice: the second time through the strategy remembered for the type
    for shape in shapes:
        assert wire_bytes(shape) == reference_wire_bytes(shape), shape


def test_the_sizes_agree_with_the_plain_walk_on_every_payload_of_a_run(monkeypatch) -> None:
    """Every request, reply and stream message of a cluster's run at the ``counts`` level is
    measured by both (when the fabric measures it, before anything can change it)."""
    from k8sbook.client import network

    seen: dict[str, int] = {}

    def both(payload: object) -> int:
        fast = wire_bytes(payload)
        assert fast == reference_wire_bytes(payload), type(payload)
        name = type(payload).__name__
        seen[name] = seen.get(name, 0) + 1
        return fast

    monkeypatch.setattr(network, "wire_bytes", both)
    cluster = Cluster(1)
    cluster.trace.level = COUNTS
    cluster.add_kubelet("node-a").start()
    cluster.add_scheduler().start()
    cluster.add_controller_manager().start()
    cluster.settle(2)
    admin = cluster.admin()
    admin.create(objects.replicaset("web", replicas=3))
    cluster.run_for(30)
    # requests and responses with bodies, etcd's calls and replies, watch events
    assert {"Request", "Response", "tuple", "Encoded"} <= set(seen), seen


def test_an_etcd_key_is_counted_under_its_first_two_segments() -> None:
    keys = ["/registry/leases/kube-node-lease/node-a", "/registry/pods", "/registry/pods/",
            "/registry", "/", "//", "/a//b/c", "/compact_rev_key", "pods", ""]
    for key in keys:
        trace = Trace(COUNTS)
        trace.tally("kube-apiserver->etcd", "Range", 5, resource=key)
        want = "/".join(key.split("/", 3)[:3]) if key.startswith("/") else key
        assert trace.tallies == {("kube-apiserver->etcd", "Range", want): [1, 5]}, key
