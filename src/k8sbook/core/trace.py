"""The record of every message that crosses a component boundary in a model run.

Kubernetes has no single counterpart: the closest are the apiserver's audit log
(``k8s.io/apiserver/pkg/audit``, one record per request with user, verb, resource and response
code) and distributed tracing of apiserver and etcd calls (KEP-647). The model's trace is a
superset that also sees watch events, etcd calls and node-local calls (CRI, CNI), so that
each chapter can say *exactly* which paths a scenario used and draw them.

Two levels (:attr:`Trace.level`): ``"messages"`` (the default) keeps every message;
``"counts"`` keeps, per path, verb and resource, only the number of messages and their bytes,
so that a run with thousands of nodes stays cheap (a resource that is an etcd key,
``/registry/leases/kube-node-lease/node-a``, is counted under its first two segments,
``/registry/leases``). The bytes are those of the JSON that would go
on the wire (:func:`wire_bytes`: compact, as Go's ``encoding/json`` writes it, which is what
kube-apiserver's JSON serializer uses), request and reply bodies and each watch event; a
payload the model does not carry as JSON (a DNS message) counts 0 bytes, and so does every call
that stays on its node (CRI on a Unix socket, a CNI or OCI plugin exec).
The fabric (:mod:`k8sbook.client.network`) is still the only recorder at either level.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, is_dataclass
from json import encoder as json_encoder
from operator import attrgetter
from typing import Any

#: :attr:`Trace.level` values
MESSAGES, COUNTS = "messages", "counts"


class Encoded(dict[str, Any]):
    """A JSON object decoded from text whose size on the wire is already known (a watch
    event the watch cache encoded once for all its watchers): :func:`wire_bytes` reads
    ``wire_size`` instead of encoding it again."""

    __slots__ = ("wire_size",)

    def __init__(self, value: dict[str, Any], wire_size: int) -> None:
        super().__init__(value)
        self.wire_size = wire_size


def _compact_encoder() -> Callable[[Any], int]:
    """The length of ``json.dumps(value, separators=(",", ":"))``, from one C encoder made
    once (``json.dumps`` builds a new encoder for every call with non-default separators).
    ``ensure_ascii`` holds, so the text is ASCII and its length is its size in bytes. No
    check for reference cycles (API bodies are trees). A value that is not JSON raises
    ``TypeError``, as ``json.dumps`` does."""
    encoder = json.JSONEncoder(separators=(",", ":"))
    make = getattr(json_encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (CPython and Pyodide have it): the same text
        return lambda value: len(encoder.encode(value))
    # the arguments JSONEncoder.iterencode passes, but no dict of markers (cycle check)
    iterencode = make(None, encoder.default, json_encoder.encode_basestring_ascii, None,
                      encoder.key_separator, encoder.item_separator, False, False, True)
    join = "".join
    return lambda value: len(join(iterencode(value, 0)))


_json_size = _compact_encoder()


# How a payload is measured (its exact type, a subclass of dict or list, being callable, being
# a dataclass and which fields it has) depends only on its type: the rules are applied once per
# type, to its first value, and give a strategy that every later value of that type goes
# straight to. The numbers are exactly those of the rules as the docstrings state them, which
# ``tests/core/test_trace.py`` keeps as a plain recursive walk and compares with these on every
# payload of a cluster's run.

def wire_bytes(payload: Any) -> int:
    """The size of a payload on the wire: a dict or list (an API body) as compact JSON; an
    object with a ``body`` (a request, a response) by its body; a tuple by its parts; text by
    its UTF-8 length; a dataclass (an etcd gRPC message, protobuf on the wire) by
    :func:`proto_bytes`; anything else (a callable, a message the model keeps as an object) 0.
    An :class:`Encoded` object counts the size of the text it was decoded from.

    In that order: ``None`` and a callable count 0 before anything else, and a list that is
    not JSON (a list of gRPC messages: etcd ops, events) counts its :func:`proto_bytes`."""
    measure = _WIRE.get(type(payload))
    if measure is None:
        measure = _wire_strategy(payload)
    return measure(payload)


def _wire_strategy(payload: Any) -> Callable[[Any], int]:
    """How :func:`wire_bytes` measures ``payload`` and every value of its type: the checks
    below are the rules in their order, and each depends only on the type (``callable``,
    ``isinstance``, ``is_dataclass`` of an instance), so they are made once per type."""
    measure: Callable[[Any], int]
    if payload is None or callable(payload):
        measure = _zero
    elif type(payload) is Encoded:
        measure = _encoded_size
    elif type(payload) is list:
        measure = _list_size
    elif isinstance(payload, (dict, list)):
        measure = _json_or_proto
    elif isinstance(payload, (bytes, bytearray)):
        measure = len
    elif isinstance(payload, str):
        measure = _text_size
    elif isinstance(payload, tuple):
        measure = _tuple_size
    elif is_dataclass(payload):
        measure = proto_bytes
    else:
        measure = _body_size
    _WIRE[type(payload)] = measure
    return measure


_WIRE: dict[type, Callable[[Any], int]] = {}


def _zero(_: Any) -> int:
    return 0


def _encoded_size(value: Encoded) -> int:
    return value.wire_size


def _text_size(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode())


def _json_or_proto(value: dict[str, Any] | list[Any]) -> int:
    if not value:  # "{}" or "[]"
        return 2
    try:
        return _json_size(value)
    except TypeError:  # a list of gRPC messages (etcd ops, events)
        return proto_bytes(value)


def _list_size(value: list[Any]) -> int:
    # a list whose first item is a gRPC message is not JSON (json.dumps raises at that item),
    # so it goes to the fallback at once: the same number, without raising and catching
    if value:
        kind = type(value[0])
        message = _MESSAGE_TYPES.get(kind)
        if message is None:  # a dataclass that is none of the types JSON can write
            message = _MESSAGE_TYPES[kind] = is_dataclass(kind) and not issubclass(
                kind, (dict, list, tuple, str, int, float))
        if message:
            return proto_bytes(value)
    return _json_or_proto(value)


_MESSAGE_TYPES: dict[type, bool] = {}


def _tuple_size(value: tuple[Any, ...]) -> int:
    total = 0
    for part in value:
        total += wire_bytes(part)
    return total


def _body_size(payload: Any) -> int:
    body = getattr(payload, "body", None)
    return wire_bytes(body) if body is not None else 0


def proto_bytes(value: Any) -> int:
    """An estimate of a protobuf message's size: its strings' and bytes' lengths, 8 per
    number, summed through nested messages and lists (close for etcd's messages, whose size
    is their keys and values).

    Precisely: text its UTF-8 length, a list or tuple the sum of its items, a bool 1, an int
    or float 8, bytes their length, a dict (JSON inside a message) its :func:`wire_bytes`, a
    dataclass the sum of its fields; anything else (``None``, another object) 0."""
    measure = _PROTO.get(type(value))
    if measure is None:
        measure = _proto_strategy(value)
    return measure(value)


def _proto_strategy(value: Any) -> Callable[[Any], int]:
    """How :func:`proto_bytes` measures ``value`` and every value of its type (the rules in
    their order; each depends only on the type)."""
    measure: Callable[[Any], int]
    if isinstance(value, str):
        measure = _text_size
    elif isinstance(value, (list, tuple)):
        measure = _items_size
    elif isinstance(value, bool):
        measure = _one
    elif isinstance(value, (int, float)):
        measure = _eight
    elif isinstance(value, (bytes, bytearray)):
        measure = len
    elif isinstance(value, dict):
        measure = wire_bytes
    elif is_dataclass(value):
        measure = _fields_size(tuple(f.name for f in fields(value)))
    else:
        measure = _zero
    _PROTO[type(value)] = measure
    return measure


_PROTO: dict[type, Callable[[Any], int]] = {}


def _one(_: Any) -> int:
    return 1


def _eight(_: Any) -> int:
    return 8


def _items_size(value: list[Any] | tuple[Any, ...]) -> int:
    total = 0
    for v in value:
        total += proto_bytes(v)
    return total


def _fields_size(names: tuple[str, ...]) -> Callable[[Any], int]:
    """The sum of a message's fields ``names``: the common field types (text, numbers,
    ``None``, bools) measured in line, exactly as :func:`proto_bytes` measures them, the
    others through it."""
    if not names:
        return _zero
    get = attrgetter(*names)
    single = len(names) == 1

    def measure(value: Any) -> int:
        total = 0
        for v in (get(value),) if single else get(value):
            k = type(v)
            if k is str:
                total += len(v) if v.isascii() else len(v.encode())
            elif k is int or k is float:
                total += 8
            elif v is None:
                pass
            elif k is bool:
                total += 1
            else:
                total += proto_bytes(v)
        return total
    return measure


def component_of(instance: str) -> str:
    """``kubelet/node-a`` -> ``kubelet``."""
    return instance.partition("/")[0]


@dataclass(frozen=True)
class Message:
    """One message: a request with its result, or one event on an open stream.

    ``path`` is the id of the connection's path in the catalog (``initiator->target``), so a
    watch event flowing from kube-apiserver to the scheduler carries
    ``kube-scheduler->kube-apiserver``: the scheduler opened that connection.
    """

    seq: int
    t: float
    src: str
    dst: str
    path: str
    protocol: str
    verb: str
    resource: str = ""
    name: str = ""
    result: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def label(self) -> str:
        what = f"{self.resource}/{self.name}" if self.name else self.resource
        return f"{self.verb} {what}".strip() + (f" → {self.result}" if self.result else "")


#: The event types of a watch stream (``watch.EventType``), whose trace result is a resourceVersion.
WATCH_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})


class Trace:
    """An append-only list of :class:`Message` with a few ways to look at it."""

    def __init__(self, level: str = MESSAGES) -> None:
        self.messages: list[Message] = []
        self.enabled = True
        if level not in (MESSAGES, COUNTS):
            raise ValueError(f"unknown trace level {level!r}: {MESSAGES!r} or {COUNTS!r}")
        #: ``"messages"``: every message; ``"counts"``: only :attr:`tallies`
        self.level = level
        #: (path, verb, resource) -> [messages, bytes], kept at the ``"counts"`` level
        self.tallies: dict[tuple[str, str, str], list[int]] = {}

    @property
    def counting(self) -> bool:
        """True when the fabric should tally instead of recording messages."""
        return self.enabled and self.level == COUNTS

    def tally(self, path: str, verb: str, nbytes: int, messages: int = 1,
              resource: str = "") -> None:
        """Count a message (or only more bytes of one, ``messages=0``) on a path, verb and
        resource."""
        if not self.enabled:
            return
        if resource.startswith("/"):  # "/registry/leases/ns/name" -> "/registry/leases"
            second = resource.find("/", 1)
            if second > 0:
                third = resource.find("/", second + 1)
                if third > 0:
                    resource = resource[:third]
        key = (path, verb, resource)
        entry = self.tallies.get(key)
        if entry is None:
            self.tallies[key] = [messages, nbytes]
        else:
            entry[0] += messages
            entry[1] += nbytes

    def totals(self, by: str = "path", **where: str) -> dict[str, dict[str, int]]:
        """The tallies summed per ``"path"``, ``"verb"`` or ``"resource"`` (those matching
        ``where``, e.g. ``path="kubelet->kube-apiserver"``): messages and bytes, sorted."""
        fields_ = ("path", "verb", "resource")
        out: dict[str, dict[str, int]] = {}
        for parts, (count, nbytes) in self.tallies.items():
            named = dict(zip(fields_, parts, strict=True))
            if any(named[k] != v for k, v in where.items()):
                continue
            key = named[by]
            entry = out.setdefault(key, {"messages": 0, "bytes": 0})
            entry["messages"] += count
            entry["bytes"] += nbytes
        return dict(sorted(out.items()))

    def record(self, t: float, src: str, dst: str, path: str, protocol: str, verb: str,
               resource: str = "", name: str = "", result: str = "") -> Message | None:
        if not self.enabled:
            return None
        msg = Message(len(self.messages), round(t, 6), src, dst, path, protocol, verb,
                      resource, name, result)
        self.messages.append(msg)
        return msg

    def complete(self, msg: Message | None, result: str) -> None:
        """Fill in the result of a request recorded before it was served."""
        if msg is not None and self.messages[msg.seq] is msg:
            self.messages[msg.seq] = Message(msg.seq, msg.t, msg.src, msg.dst, msg.path,
                                             msg.protocol, msg.verb, msg.resource, msg.name,
                                             result)

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self):
        return iter(self.messages)

    def mark(self) -> int:
        """A position to slice from later: ``trace.since(mark)``."""
        return len(self.messages)

    def since(self, mark: int) -> list[Message]:
        return self.messages[mark:]

    def filter(self, *, path: str | None = None, src: str | None = None,
               dst: str | None = None, verb: str | None = None,
               resource: str | None = None, involving: str | None = None,
               messages: Iterable[Message] | None = None) -> list[Message]:
        """Messages matching every given field; ``src``/``dst``/``involving`` match a
        component name (``kubelet``) or an instance (``kubelet/node-a``)."""
        def hit(value: str, want: str | None) -> bool:
            return want is None or value == want or component_of(value) == want

        out = []
        for m in self.messages if messages is None else messages:
            if path is not None and m.path != path:
                continue
            if not (hit(m.src, src) and hit(m.dst, dst)):
                continue
            if verb is not None and m.verb != verb:
                continue
            if resource is not None and m.resource != resource:
                continue
            if involving is not None and not (hit(m.src, involving) or hit(m.dst, involving)):
                continue
            out.append(m)
        return out

    def paths(self, messages: Iterable[Message] | None = None) -> list[str]:
        """The sorted set of path ids the messages travelled on."""
        return sorted({m.path for m in (self.messages if messages is None else messages)})

    def path_counts(self, messages: Iterable[Message] | None = None) -> dict[str, int]:
        counts = Counter(m.path for m in (self.messages if messages is None else messages))
        return dict(sorted(counts.items()))

    def table(self, messages: Iterable[Message] | None = None, limit: int | None = None) -> str:
        """A fixed-width text table, for printing in a notebook: time, result, from, to, message."""
        rows = list(self.messages if messages is None else messages)
        if limit is not None:
            rows = rows[:limit]
        # The result's first word (a status code, or a watch event's resourceVersion) comes
        # right after the time, so it stays on screen when the long columns do not; the rest
        # of the result (a reason, an error) follows the message in parentheses.
        # A watch event's result is the object's resourceVersion: "rv=105", not a status code.
        results = [m.result.split(" ", 1) if m.result else [""] for m in rows]
        for m, parts in zip(rows, results, strict=True):
            if m.verb in WATCH_EVENTS and parts[0].isdigit():
                parts[0] = f"rv={parts[0]}"
        r = max([len("result")] + [len(parts[0]) for parts in results])
        a = max([len("from")] + [len(m.src) for m in rows])
        b = max([len("to")] + [len(m.dst) for m in rows])
        lines = [f"{'t(s)':>7} {'result':<{r}} {'from':<{a}} {'to':<{b}} message"]
        for m, parts in zip(rows, results, strict=True):
            what = f"{m.resource}/{m.name}" if m.name else m.resource
            message = f"{m.verb} {what}".strip() + (f" ({parts[1]})" if len(parts) > 1 else "")
            lines.append(f"{m.t:7.2f} {parts[0]:<{r}} {m.src:<{a}} {m.dst:<{b}} {message}")
        return "\n".join(lines)

    def to_dicts(self, messages: Iterable[Message] | None = None) -> list[dict[str, object]]:
        return [m.to_dict() for m in (self.messages if messages is None else messages)]
