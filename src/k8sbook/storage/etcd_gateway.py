"""The wire side of :class:`~k8sbook.storage.etcd_client.RealEtcd`: etcd's v3 API as JSON over
HTTP, through the gRPC gateway every etcd member serves on its client port.

Mirrors ``go.etcd.io/etcd/api/v3/etcdserverpb/gw`` (the grpc-gateway mapping of the ``KV``,
``Watch`` and ``Lease`` services: ``/v3/kv/range``, ``/v3/kv/txn``, ``/v3/watch`` as a
server-streaming POST of newline-delimited JSON, keys and values base64-encoded, 64-bit
numbers as strings) and ``etcdserver/api/v3rpc/rpctypes`` (error texts such as ``etcdserver:
mvcc: required revision has been compacted``).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import queue
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from k8sbook.core.clock import Timer
from k8sbook.storage.etcd_api import (
    CompactedError,
    EtcdError,
    Event,
    FutureRevisionError,
    KeyValue,
    LeaseNotFoundError,
    UnavailableError,
    WatchHandle,
)

#: How long a request (or the wait for a watch event etcd owes us) may take.
REQUEST_TIMEOUT = 5.0
STREAM_TIMEOUT = 10.0

TARGET_FIELD = {"VERSION": "version", "CREATE": "create_revision", "MOD": "mod_revision",
                 "VALUE": "value", "LEASE": "lease"}
RESULT = {"=": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(data: str | None) -> str:
    return base64.b64decode(data).decode() if data else ""


def kv_from(d: dict[str, Any]) -> KeyValue:
    return KeyValue(unb64(d.get("key")), unb64(d.get("value")),
                    int(d.get("create_revision", 0)), int(d.get("mod_revision", 0)),
                    int(d.get("version", 0)), int(d.get("lease", 0)))


def event_from(d: dict[str, Any]) -> Event:
    prev = d.get("prev_kv")
    return Event("DELETE" if d.get("type") == "DELETE" else "PUT", kv_from(d["kv"]),
                 kv_from(prev) if prev else None)


def range_body(key: str, range_end: str | None) -> dict[str, Any]:
    body = {"key": b64(key)}
    if range_end is not None:
        body["range_end"] = b64(range_end)
    return body


def raise_for(error: dict[str, Any], compact_revision: int) -> None:
    """Turn a gateway error body into the same exception the embedded store raises."""
    message = str(error.get("message") or error.get("error") or "")
    if "required revision has been compacted" in message:
        raise CompactedError(compact_revision)
    if "required revision is a future revision" in message:
        raise FutureRevisionError()
    if "requested lease not found" in message:
        raise LeaseNotFoundError()
    if error.get("code") in (4, 14) or "timed out" in message or "no leader" in message:
        raise UnavailableError("request timed out")  # DEADLINE_EXCEEDED, UNAVAILABLE
    raise EtcdError(message)


class Stream:
    """One long-lived ``POST /v3/watch`` (HTTP/1.1, chunked JSON lines) read by a thread."""

    def __init__(self, host: str, port: int, create: dict[str, Any]) -> None:
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
        try:
            self.conn.request("POST", "/v3/watch", json.dumps({"create_request": create}),
                              {"Content-Type": "application/json"})
            self.resp = self.conn.getresponse()
            if self.conn.sock is not None:
                self.conn.sock.settimeout(None)  # a watch may stay silent for ever
        except OSError as err:
            self.conn.close()
            raise UnavailableError() from err
        self.thread = threading.Thread(target=self._read, daemon=True,
                                       name="k8sbook etcd watch reader")
        self.thread.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):  # any failure of the stream ends it
            while line := self.resp.readline():
                if line.strip():
                    self.queue.put(json.loads(line))
        self.queue.put(None)  # the stream ended
        self.conn.close()

    def next(self, timeout: float = STREAM_TIMEOUT) -> dict[str, Any] | None:
        """The next message; None when the stream has ended."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise EtcdError("etcd watch stream: no progress within "
                            f"{timeout:.0f}s") from None

    def close(self) -> None:
        """Hang up; the reader thread sees the end of the stream and closes the socket."""
        try:
            sock = self.conn.sock
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@dataclass(eq=False)
class GatewayWatch:
    """The store's side of one watch: its stream, what it received, what it delivered."""

    handle: WatchHandle
    stream: Stream | None
    synced: int  # every event up to this revision has been delivered
    received: int = 0  # the newest revision seen on the stream
    pending: list[Event] = field(default_factory=list)


@dataclass
class GatewayLease:
    id: int
    ttl: int
    expires_at: float
    timer: Timer | None = None


