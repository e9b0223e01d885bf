"""The Konnectivity protocol, and kube-apiserver's end of it.

Mirrors ``sigs.k8s.io/apiserver-network-proxy/konnectivity-client`` v0.34.0, the version
kube-apiserver v1.35 vendors: ``proto/client/client.proto`` (the messages) and ``pkg/client``
(``CreateSingleUseGrpcTunnel``, ``grpcTunnel.DialContext``, ``conn``). The agents' service,
``proto/agent/agent.proto``, sends the same ``Packet`` messages over ``AgentService.Connect``.

**The messages.** A gRPC stream (``ProxyService.Proxy`` from the apiserver,
``AgentService.Connect`` from an agent) carries ``Packet``\\ s: a ``type`` (field 1, enum
``PacketType``: ``DIAL_REQ`` 0, ``DIAL_RSP`` 1, ``CLOSE_REQ`` 2, ``CLOSE_RSP`` 3, ``DATA`` 4,
``DIAL_CLS`` 5, ``DRAIN`` 6) and one payload of a ``oneof``: ``dialRequest`` 2 (``protocol`` 1,
``address`` 2, ``random`` 3), ``dialResponse`` 3 (``error`` 1, ``connectID`` 2, ``random`` 3),
``data`` 4 (``connectID`` 1, ``error`` 2, ``data`` 3), ``closeRequest`` 5 (``connectID`` 1),
``closeResponse`` 6 (``error`` 1, ``connectID`` 2), ``closeDial`` 7 (``random`` 1), ``drain`` 8
(empty). The field numbers are upstream's; the descriptors are built here with the
``protobuf`` library (proto3), which encodes them: :func:`encode`, :func:`decode`.

**One dial.** With the egress selector in ``GRPC`` mode the apiserver opens a new gRPC stream
over the Unix socket for each connection it needs (a single-use tunnel). It sends ``DIAL_REQ``
with ``protocol: tcp``, the destination ``address`` and a ``random`` dial id
(``rand.Int63()``, here from the apiserver's seeded generator); the server answers
``DIAL_RSP`` with the same ``random`` and the agent's ``connectID`` (or an ``error``, which
``DialContext`` returns as the dial's error: ``No agent available`` when no agent can take
it). Then the bytes of the connection travel as ``DATA`` packets with that ``connectID``, and
closing it is ``CLOSE_REQ``, answered by ``CLOSE_RSP``. A ``CLOSE_RSP`` that comes first (the
agent went away) ends the connection: the reader gets end of file, which the apiserver's HTTP
client reports as ``EOF``. A ``DIAL_RSP`` that never comes ends the dial when the request's
context does (the kubelet client's timeout): the client sends ``DIAL_CLS`` and fails with
``dial timeout, context`` (``dial timeout, backstop`` after 30 s without a deadline); the
model's calls take no virtual time, so it gives up at once.

Simplified: a ``DATA`` packet carries the first line of the HTTP message where upstream it
carries TLS records (the model does not encrypt), and the Python request and reply travel
beside it; the connection is closed after one request rather than kept in net/http's pool.
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from k8sbook.client.network import Address, Connection, DialError, Network

__all__ = [
    "AGENT_METHOD",
    "PACKET_TYPES",
    "PROXY_METHOD",
    "Frame",
    "TunnelStream",
    "decode",
    "encode",
    "packet",
    "proxy",
]

#: ``PacketType`` in number order
PACKET_TYPES = ("DIAL_REQ", "DIAL_RSP", "CLOSE_REQ", "CLOSE_RSP", "DATA", "DIAL_CLS", "DRAIN")
#: the gRPC methods: the apiserver's stream to the server, and an agent's
PROXY_METHOD = "/ProxyService/Proxy"
AGENT_METHOD = "/AgentService/Connect"
#: (payload field of ``Packet``, its number, its message) for each packet type
_PAYLOADS = {"DIAL_REQ": ("dialRequest", 2, "DialRequest"),
             "DIAL_RSP": ("dialResponse", 3, "DialResponse"),
             "DATA": ("data", 4, "Data"),
             "CLOSE_REQ": ("closeRequest", 5, "CloseRequest"),
             "CLOSE_RSP": ("closeResponse", 6, "CloseResponse"),
             "DIAL_CLS": ("closeDial", 7, "CloseDial"),
             "DRAIN": ("drain", 8, "Drain")}
_F = descriptor_pb2.FieldDescriptorProto
_MESSAGES: dict[str, list[tuple[str, int, int]]] = {
    "DialRequest": [("protocol", 1, _F.TYPE_STRING), ("address", 2, _F.TYPE_STRING),
                    ("random", 3, _F.TYPE_INT64)],
    "DialResponse": [("error", 1, _F.TYPE_STRING), ("connectID", 2, _F.TYPE_INT64),
                     ("random", 3, _F.TYPE_INT64)],
    "CloseRequest": [("connectID", 1, _F.TYPE_INT64)],
    "CloseResponse": [("error", 1, _F.TYPE_STRING), ("connectID", 2, _F.TYPE_INT64)],
    "CloseDial": [("random", 1, _F.TYPE_INT64)],
    "Drain": [],
    "Data": [("connectID", 1, _F.TYPE_INT64), ("error", 2, _F.TYPE_STRING),
             ("data", 3, _F.TYPE_BYTES)],
}


@cache
def _classes() -> dict[str, type[Message]]:
    """``client.proto`` as a ``FileDescriptorProto`` in a pool of its own."""
    fd = descriptor_pb2.FileDescriptorProto(name="konnectivity-client/proto/client/client.proto",
                                            syntax="proto3")
    enum = fd.enum_type.add(name="PacketType")
    for number, name in enumerate(PACKET_TYPES):
        enum.value.add(name=name, number=number)
    pkt = fd.message_type.add(name="Packet")
    pkt.field.add(name="type", number=1, type=_F.TYPE_ENUM, type_name=".PacketType",
                  label=_F.LABEL_OPTIONAL)
    pkt.oneof_decl.add(name="payload")
    for fname, number, msg in _PAYLOADS.values():
        pkt.field.add(name=fname, number=number, type=_F.TYPE_MESSAGE, type_name=f".{msg}",
                      label=_F.LABEL_OPTIONAL, oneof_index=0)
    for msg, fields in _MESSAGES.items():
        m = fd.message_type.add(name=msg)
        for fname, number, ftype in fields:
            m.field.add(name=fname, number=number, type=ftype, label=_F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
            for name in ("Packet", *_MESSAGES)}


def packet(kind: str, **fields: Any) -> Message:
    """A ``Packet`` of type ``kind`` whose payload has ``fields``."""
    classes = _classes()
    fname, _, msg = _PAYLOADS[kind]
    out = classes["Packet"](type=PACKET_TYPES.index(kind))
    getattr(out, fname).CopyFrom(classes[msg](**fields))
    return out


def encode(pkt: Message) -> bytes:
    return pkt.SerializeToString(deterministic=True)


def decode(data: bytes) -> Message:
    out = _classes()["Packet"]()
    out.ParseFromString(data)
    return out


def kind_of(pkt: Message) -> str:
    return PACKET_TYPES[int(pkt.type)]


def payload_of(pkt: Message) -> Message:
    return getattr(pkt, _PAYLOADS[kind_of(pkt)][0])


@dataclass
class Frame:
    """One packet as it crosses a stream, with the Python object the model lets travel
    beside a ``DATA`` packet's bytes (the HTTP request or reply)."""

    packet: Message
    body: Any = None

    @property
    def kind(self) -> str:
        return kind_of(self.packet)

    @property
    def payload(self) -> Message:
        return payload_of(self.packet)

    def describe(self) -> tuple[str, str, str, str]:
        """(verb, resource, name, result) for the trace: the packet type, the destination
        or what the data is, the dial or connection id, and the error if any."""
        p, kind = self.payload, self.kind
        if kind == "DIAL_REQ":
            return kind, p.address, f"random={p.random}", ""
        if kind == "DIAL_RSP":
            return (kind, "", f"random={p.random}",
                    p.error if p.error else f"connectID={p.connectID}")
        if kind == "DATA":
            return (kind, p.data.decode(errors="replace"), f"connectID={p.connectID}",
                    p.error or f"{len(encode(self.packet))} bytes")
        if kind in ("CLOSE_REQ", "CLOSE_RSP"):
            return kind, "", f"connectID={p.connectID}", getattr(p, "error", "")
        if kind == "DIAL_CLS":
            return kind, "", f"random={p.random}", ""
        return kind, "", "", ""

    def record(self, conn: Connection, *, upward: bool) -> None:
        """Put this packet on the trace of ``conn``'s path, in the direction it travels."""
        verb, resource, name, result = self.describe()
        payload = encode(self.packet)
        if upward:
            conn.send(verb, resource, name, result, payload)
        else:
            conn.deliver(verb, resource, name, result, payload)


@dataclass
class TunnelStream:
    """The apiserver's receiving end of one ``Proxy`` stream: the packets the server sent."""

    received: list[Frame] = field(default_factory=list)

    def receive(self, frame: Frame) -> None:
        self.received.append(frame)

    def take(self, *kinds: str) -> Frame | None:
        """The first packet received of one of ``kinds``, removed; ``None`` if none came."""
        for i, f in enumerate(self.received):
            if f.kind in kinds:
                return self.received.pop(i)
        return None


def http_line(obj: Any) -> bytes:
    """What the model puts in a ``DATA`` packet: the first line of the HTTP message."""
    method, path = getattr(obj, "method", ""), getattr(obj, "path", "")
    if method:
        return f"{method} {path} HTTP/1.1".encode()
    status = getattr(obj, "status", None)
    return f"HTTP/1.1 {status}".encode() if status is not None else b""


def proxy(network: Network, socket: Address, dial: Any, rand: _random.Random, *,
          protocol: str, src: str = "kube-apiserver") -> Any:
    """``CreateSingleUseGrpcTunnel`` + ``DialContext`` + one request + ``Close``: open a
    ``Proxy`` stream to the konnectivity-server on ``socket``, dial ``dial.address`` through
    it, send ``dial.request`` as ``DATA``, read the reply, close. Returns the reply, or a
    :class:`DialError` with the tunnel's words (``No agent available``, the agent's dial
    error, ``EOF``). ``src`` is who opens the stream: the apiserver, or any other process
    that can open the socket (the socket has no authentication of its own)."""
    stream = TunnelStream()
    try:
        conn, server = network.open(src, socket, stream, protocol=protocol,
                                    verb="POST", resource=PROXY_METHOD,
                                    result=lambda r: "stream" if hasattr(r, "send") else str(r))
    except DialError as err:
        return err
    try:
        random = rand.getrandbits(63)  # rand.Int63(): the dial id
        server.send(Frame(packet("DIAL_REQ", protocol="tcp", address=str(dial.address),
                                 random=random), dial))
        rsp = stream.take("DIAL_RSP", "DIAL_CLS")
        if rsp is None:  # no answer will come: give the dial up, and say so with DIAL_CLS
            server.send(Frame(packet("DIAL_CLS", random=random)))
            return DialError("tunnel", dial.address, "dial timeout, context"
                             if dial.timeout is not None else "dial timeout, backstop")
        if rsp.kind == "DIAL_CLS":
            return DialError("tunnel", dial.address, "dial closed")
        if rsp.payload.error:
            return DialError("tunnel", dial.address, rsp.payload.error)
        connect_id = rsp.payload.connectID
        server.send(Frame(packet("DATA", connectID=connect_id, data=http_line(dial.request)),
                          dial.request))
        data = stream.take("DATA", "CLOSE_RSP")
        if data is None or data.kind == "CLOSE_RSP":  # the agent went away: end of file
            return DialError("tunnel", dial.address, "EOF")
        server.send(Frame(packet("CLOSE_REQ", connectID=connect_id)))
        stream.take("CLOSE_RSP")
        return data.body
    finally:
        conn.close()
