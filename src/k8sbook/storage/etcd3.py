"""kube-apiserver's storage layer: API objects in, etcd keys and revisions out.

Mirrors ``k8s.io/apiserver/pkg/storage/etcd3`` (``store.go``): objects are serialised and put
under their key; ``metadata.resourceVersion`` is never stored but filled in on every read from
the key's ``mod_revision``; creates are a transaction that succeeds only if the key does not
exist (``create_revision == 0``); updates are a compare-and-swap on ``mod_revision``
(``GuaranteedUpdate``); a list reads a key prefix at one revision. Also mirrors the apiserver's
compactor (``compact.go``), which every five minutes compacts etcd to the revision it saw five
minutes earlier, coordinating through the ``compact_rev_key`` key.

Every call to etcd is recorded on the trace as a message on path ``kube-apiserver->etcd``.
etcd errors become API ``Status`` errors as ``storage/etcd3/errors.go`` and
``storage/errors.go`` interpret them: a compacted revision is 410 Expired; any other etcd
failure is not an API error, so ``ErrorToAPIStatus`` turns it into a 500 with no reason and
etcd's own message (``etcdserver: request timed out``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError, resource_expired, unknown_error
from k8sbook.core.trace import Trace
from k8sbook.storage import etcd as etcdapi
from k8sbook.storage.etcd import CompactedError, Compare, DeleteRange, Etcd, EtcdError, Put

PATH = "kube-apiserver->etcd"
PROTOCOL = "gRPC (etcd v3, mTLS)"
COMPACT_REV_KEY = "compact_rev_key"
#: ``--etcd-compaction-interval`` default.
COMPACTION_INTERVAL = 300.0


def encode(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    stored = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return json.dumps(stored, sort_keys=True, separators=(",", ":"))


def decode(kv: etcdapi.KeyValue) -> dict[str, Any]:
    obj = json.loads(kv.value)
    obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
    return obj


class Storage:
    """The apiserver's etcd client, with the trace in between."""

    def __init__(self, etcd: Etcd, clock: Clock, trace: Trace) -> None:
        self.etcd = etcd
        self.clock = clock
        self.trace = trace
        self._compact_version = 0
        self._compact_candidate = 0

    def _record(self, verb: str, key: str, result: str) -> None:
        self.trace.record(self.clock.now(), "kube-apiserver", "etcd", PATH, PROTOCOL, verb,
                          key, "", result)

    def _call(self, verb: str, key: str, fn: Callable[[], Any],
              result: Callable[[Any], str]) -> Any:
        try:
            out = fn()
        except CompactedError as err:
            self._record(verb, key, "compacted")
            raise resource_expired("The resourceVersion for the provided list is too old.") \
                from err
        except EtcdError as err:
            self._record(verb, key, str(err))
            raise unknown_error(str(err)) from err
        self._record(verb, key, result(out))
        return out

    # -- reads -----------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        return self.etcd.revision

    def get(self, key: str) -> dict[str, Any] | None:
        resp = self._call("Range", key, lambda: self.etcd.range(key),
                          lambda r: f"{r.count} kv @rev {r.revision}")
        return decode(resp.kvs[0]) if resp.kvs else None

    def list(self, prefix: str, revision: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Every object under ``prefix`` at ``revision`` (0: latest) and the list's revision."""
        resp = self._call("Range", prefix,
                          lambda: self.etcd.range(prefix, etcdapi.prefix_end(prefix),
                                                  revision=revision),
                          lambda r: f"{r.count} kvs @rev {revision or r.revision}")
        return [decode(kv) for kv in resp.kvs], revision or resp.revision

    # -- writes ----------------------------------------------------------------------------
    def create(self, key: str, obj: dict[str, Any], lease_ttl: int = 0) -> dict[str, Any] | None:
        """Write ``obj`` if ``key`` is free; None if it exists already."""
        lease = 0
        if lease_ttl:
            lease = self._call("LeaseGrant", key, lambda: self.etcd.lease_grant(lease_ttl),
                               lambda lid: f"ttl {lease_ttl}s")
        value = encode(obj)
        resp = self._call("Txn", key,
                          lambda: self.etcd.txn([Compare(key, "MOD", "=", 0)],
                                                [Put(key, value, lease)], []),
                          lambda r: f"rev {r.revision}" if r.succeeded else "compare failed")
        if not resp.succeeded:
            return None
        return {**json.loads(value), "metadata": {**json.loads(value)["metadata"],
                                                  "resourceVersion": str(resp.revision)}}

    def update(self, key: str, obj: dict[str, Any], expected_mod_revision: int) -> \
            dict[str, Any] | None:
        """Compare-and-swap: write only if the key is still at ``expected_mod_revision``."""
        value = encode(obj)
        resp = self._call("Txn", key,
                          lambda: self.etcd.txn([Compare(key, "MOD", "=", expected_mod_revision)],
                                                [Put(key, value)], []),
                          lambda r: f"rev {r.revision}" if r.succeeded else "compare failed")
        if not resp.succeeded:
            return None
        out = json.loads(value)
        out["metadata"]["resourceVersion"] = str(resp.revision)
        return out

    def delete(self, key: str, expected_mod_revision: int) -> int | None:
        """Delete if unchanged; returns the deletion's revision, None if it changed."""
        resp = self._call("Txn", key,
                          lambda: self.etcd.txn([Compare(key, "MOD", "=", expected_mod_revision)],
                                                [DeleteRange(key)], []),
                          lambda r: f"rev {r.revision}" if r.succeeded else "compare failed")
        return resp.revision if resp.succeeded else None

    # -- watch -----------------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int,
              callback: Callable[[list[etcdapi.Event]], None]) -> etcdapi.WatchHandle:
        return self._call("Watch", prefix,
                          lambda: self.etcd.watch(prefix, etcdapi.prefix_end(prefix),
                                                  start_revision, callback),
                          lambda h: f"from rev {start_revision}")

    # -- compaction ------------------------------------------------------------------------
    def start_compactor(self, interval: float = COMPACTION_INTERVAL,
                        on_compact: Callable[[int], None] | None = None) -> None:
        """Every ``interval``, compact to the revision seen one interval earlier."""
        def tick() -> None:
            try:
                self.compact_once(on_compact)
            except StatusError:
                pass  # the real compactor logs and tries again next interval
            self.clock.call_later(interval, tick, label="apiserver compactor")

        self.clock.call_later(interval, tick, label="apiserver compactor")

    def compact_once(self, on_compact: Callable[[int], None] | None = None) -> int:
        """One round of ``compact.go``: claim the round with a txn, then compact."""
        target = self._compact_candidate
        current = self.etcd.revision
        resp = self._call(
            "Txn", COMPACT_REV_KEY,
            lambda: self.etcd.txn([Compare(COMPACT_REV_KEY, "VERSION", "=",
                                           self._compact_version)],
                                  [Put(COMPACT_REV_KEY, str(current))],
                                  [etcdapi.Range(COMPACT_REV_KEY)]),
            lambda r: "claimed" if r.succeeded else "lost")
        if resp.succeeded:
            self._compact_version += 1
        self._compact_candidate = resp.revision
        if target and resp.succeeded and target > self.etcd.compact_revision:
            self.compact(target, on_compact)
        return target

    def compact(self, revision: int, on_compact: Callable[[int], None] | None = None) -> None:
        self._call("Compact", "", lambda: self.etcd.compact(revision),
                   lambda _: f"to rev {revision}")
        if on_compact:
            on_compact(revision)
