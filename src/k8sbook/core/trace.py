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
``/registry/leases``; a call that stays on its node, CRI, CNI or OCI, is counted per path and
verb only, since its "resource" names one sandbox, container or image). The bytes are those of the JSON that would go
on the wire (:func:`~k8sbook.core.wire.wire_bytes`: compact, as Go's ``encoding/json``
writes it, which is what kube-apiserver's JSON serializer uses), request and reply bodies and each watch event; a
payload the model does not carry as JSON (a DNS message) counts 0 bytes, and so does every call
that stays on its node (CRI on a Unix socket, a CNI or OCI plugin exec).
The fabric (:mod:`k8sbook.client.network`) is still the only recorder at either level.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from k8sbook.core.wire import Encoded, proto_bytes, wire_bytes

__all__ = ["COUNTS", "MESSAGES", "WATCH_EVENTS", "Encoded", "Message", "Trace", "component_of",
           "proto_bytes", "wire_bytes"]

#: :attr:`Trace.level` values
MESSAGES, COUNTS = "messages", "counts"


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
