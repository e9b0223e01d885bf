"""The sizes the trace counts: each payload's strategy, chosen once per type, against the plain
recursive walk of the rules (what ``core/trace.py`` did before the strategies)."""

from __future__ import annotations

import dataclasses
import enum
import json

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.core.trace import COUNTS
from k8sbook.core.wire import Encoded, proto_bytes, wire_bytes

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
