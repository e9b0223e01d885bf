"""The etcd v3 API as kube-apiserver sees it: keys, events, transaction ops, responses, watch
handles, the errors, and the :class:`Etcd` protocol every store in the model implements.

Mirrors ``go.etcd.io/etcd/api/v3``: ``mvccpb`` (``KeyValue``, ``Event``), ``etcdserverpb``
(``Compare``, ``RequestOp``'s put/delete-range/range, ``RangeResponse``, ``TxnResponse``) and
the error texts of ``v3rpc/rpctypes`` and ``server/v3/mvcc``. The embedded store is
:class:`k8sbook.storage.etcd.MemoryEtcd`; a real etcd is reached through
:mod:`k8sbook.storage.etcd_client`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


class EtcdError(Exception):
    """An error etcd returns; ``str(err)`` is etcd's own message."""


class CompactedError(EtcdError):
    def __init__(self, compact_revision: int) -> None:
        super().__init__("mvcc: required revision has been compacted")
        self.compact_revision = compact_revision


class FutureRevisionError(EtcdError):
    def __init__(self) -> None:
        super().__init__("mvcc: required revision is a future revision")


class LeaseNotFoundError(EtcdError):
    def __init__(self) -> None:
        super().__init__("etcdserver: requested lease not found")


class UnavailableError(EtcdError):
    """The request got no answer: the member is gone or has no leader. Its text is what
    kube-apiserver passes on (``etcdserver: request timed out``); ``cause`` is what happened
    on the wire, for the trace (``connection refused`` when the process is not running)."""

    def __init__(self, cause: str = "connection refused",
                 message: str = "etcdserver: request timed out") -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: str
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    type: Literal["PUT", "DELETE"]
    kv: KeyValue  # for DELETE: the key with mod_revision = the deleting revision, empty value
    prev_kv: KeyValue | None = None


@dataclass(frozen=True, slots=True)
class RangeResponse:
    kvs: list[KeyValue]
    count: int
    revision: int
    more: bool = False


@dataclass(frozen=True, slots=True)
class Compare:
    """One condition of a transaction: ``target`` of ``key`` ``result`` ``value``."""

    key: str
    target: Literal["VERSION", "CREATE", "MOD", "VALUE", "LEASE"]
    result: Literal["=", "!=", "<", ">"]
    value: Any


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: str
    lease: int = 0


@dataclass(frozen=True, slots=True)
class DeleteRange:
    key: str
    range_end: str | None = None


@dataclass(frozen=True, slots=True)
class Range:
    key: str
    range_end: str | None = None


Op = Put | DeleteRange | Range


@dataclass(frozen=True, slots=True)
class TxnResponse:
    succeeded: bool
    revision: int
    responses: list[Any]


@dataclass(slots=True)
class WatchHandle:
    """One open watch; ``cancel()`` marks it cancelled and tells the store (``on_cancel``,
    called once with the handle's id) to stop delivering to it."""

    id: int
    key: str
    range_end: str | None
    callback: Callable[[list[Event]], None]
    cancelled: bool = False
    on_cancel: Callable[[int], None] | None = field(default=None, repr=False, compare=False)

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            if self.on_cancel is not None:
                self.on_cancel(self.id)


def prefix_end(prefix: str) -> str:
    """etcd's ``GetPrefixRangeEnd``: the smallest key greater than every key with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def in_range(key: str, start: str, end: str | None) -> bool:
    if end is None:
        return key == start
    if end == "\0":  # etcd: range_end "\0" means "every key >= start"
        return key >= start
    return start <= key < end


class Etcd(Protocol):
    """The store interface kube-apiserver's storage layer needs (an etcd v3 client's)."""

    revision: int
    compact_revision: int

    def range(self, key: str, range_end: str | None = None, *, revision: int = 0,
              limit: int = 0) -> RangeResponse: ...
    def put(self, key: str, value: str, lease: int = 0) -> int: ...
    def delete_range(self, key: str, range_end: str | None = None) -> tuple[int, int]: ...
    def txn(self, compare: list[Compare], success: list[Op], failure: list[Op]) -> TxnResponse: ...
    def watch(self, key: str, range_end: str | None, start_revision: int,
              callback: Callable[[list[Event]], None]) -> WatchHandle: ...
    def compact(self, revision: int) -> None: ...
    def lease_grant(self, ttl: int) -> int: ...
    def lease_revoke(self, lease_id: int) -> None: ...
    def lease_keepalive(self, lease_id: int) -> int: ...


def by_revision(events: list[Event]) -> list[list[Event]]:
    batches: list[list[Event]] = []
    for e in events:
        if batches and batches[-1][0].kv.mod_revision == e.kv.mod_revision:
            batches[-1].append(e)
        else:
            batches.append([e])
    return batches
