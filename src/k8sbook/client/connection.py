"""What a listen and an open leave behind: a :class:`Listener` on an address, and a
:class:`Connection` that carries a stream (a watch) back to whoever opened it.

Mirrors Go's ``net.Listener`` and ``net.Conn`` as the model's fabric
(:mod:`k8sbook.client.network`, which re-exports both) uses them: a connection's messages are
recorded by the fabric, and a fault that cuts it ends the stream on both sides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from k8sbook.client.address import Address
from k8sbook.core.trace import Message

Handler = Callable[[Any], Any]


class Fabric(Protocol):
    """What a connection needs of the network it runs on."""

    def record_stream(self, conn: Connection, verb: str, resource: str, name: str,
                      result: str, payload: Any = None, upward: bool = False
                      ) -> Message | None: ...

    def forget(self, conn: Connection) -> None: ...


@dataclass
class Listener:
    """A handler bound to an address by ``owner`` (an instance: ``kubelet/node-a``)."""

    address: Address
    owner: str
    handler: Handler
    protocol: str = ""
    closed: bool = False
    #: who issued the serving certificate a TLS listener presents (None: no TLS; "": TLS
    #: but no certificate to present yet)
    certificate: str | None = None
    #: the CA whose client certificates it requires (``ClientAuth: RequireAndVerifyClientCert``
    #: with ``ClientCAs``, etcd's ``--client-cert-auth``); None: no client certificate asked
    client_ca: str | None = None


@dataclass(eq=False)
class Connection:
    """An open connection that carries a stream (a watch) from ``dst`` back to ``src``."""

    network: Fabric
    src: str
    dst: str
    path: str
    protocol: str
    on_break: Callable[[], None] | None = None
    closed: bool = False
    #: the network cut it (a fault), rather than either end closing it
    broken: bool = False
    #: the fabric's number for it
    key: int = field(default=0, repr=False)

    def deliver(self, verb: str, resource: str = "", name: str = "", result: str = "",
                payload: Any = None) -> Message | None:
        """Record one message the server pushes on this connection (a watch event);
        ``payload`` (the event) gives its size on the wire when the trace counts bytes."""
        return self.network.record_stream(self, verb, resource, name, result, payload)

    def send(self, verb: str, resource: str = "", name: str = "", result: str = "",
             payload: Any = None) -> Message | None:
        """Record one message the dialer sends on this open connection (a frame of a
        bidirectional stream, such as a gRPC stream's)."""
        return self.network.record_stream(self, verb, resource, name, result, payload,
                                          upward=True)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.network.forget(self)

    def cut(self) -> None:
        """The network broke the connection: the stream ends on both sides."""
        if not self.closed:
            self.broken = True
            self.close()
            if self.on_break is not None:
                self.on_break()
