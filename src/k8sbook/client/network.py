"""The model's one network: every connection a component opens is dialled here.

Kubernetes has no such package; what it mirrors is the part of the operating system and of
Go's ``net`` package that every component shares. A component *listens* on an
:class:`Address` (an IP and a TCP or UDP port, a Unix socket path on one node, or a plugin
binary on one node that the runtime executes) with a handler; another component *dials* that
address. The fabric then

* resolves host names (a node's hostname, a cloud endpoint) to IPs, like the machines' DNS;
* passes the packet through the netfilter rules of the node it leaves from, when the dialer
  says which node that is (kube-proxy installs those rules: a Service VIP becomes a pod IP,
  or the packet is rejected);
* applies the faults injected into it, and only here: a partition between two components or
  instances, a one-way firewall (new connections from one to the other), an isolated instance, an address that refuses, drops or answers slowly, and a
  per-address down switch;
* records the message on the trace, at the dial, under the path id of whoever opened the
  connection (``initiator->target`` over component names), and completes it with the result;
* checks, when the dialer asks it to, the serving certificate a TLS listener presents: a
  listener says which authority issued its certificate (``listen(..., certificate=issuer)``)
  and a dialer that verifies (``dial(..., verify=issuer or callable)``) fails with Go's
  ``crypto/tls`` / ``crypto/x509`` text when the issuer is not one it trusts; a TLS listener
  with no certificate yet (``certificate=""``) fails every handshake
  (``remote error: tls: internal error``);
* checks, when a listener requires client certificates (``listen(..., client_ca=issuer)``,
  mutual TLS as etcd's ``--client-cert-auth``), the one the dialer presents
  (``dial(..., client_certificate=issuer)``): another issuer, or none, fails the handshake
  with the alert Go's server sends (``remote error: tls: unknown certificate authority``);
* hands the request to the listener's handler and returns its reply.

Errors are :class:`DialError` with Go's wording (``dial tcp 10.0.0.1:10250: connect:
connection refused``, ``dial tcp 10.0.0.1:10250: i/o timeout``, ``dial unix
/run/containerd/containerd.sock: connect: no such file or directory``); the dialer wraps them
as its own client does (a 500, a 503, an RPC ``Unavailable``).

Streams (a watch) are :class:`Connection` objects: the server pushes events over them and the
fabric records each one on the connection's path; a fault that cuts the connection breaks the
stream at once.

The model is synchronous: latency does not move the clock during a call. An injected latency
counts against the dialer's timeout (a call whose latency reaches its timeout fails with a
timeout) and is recorded in the message's result, so slow paths are visible in traces.

Every operation is a few dictionary lookups: the cost of a message does not grow with the
number of listeners, nodes or connections. The vocabulary (:class:`Address`, :class:`DialError`,
:class:`Translation`) is in :mod:`k8sbook.client.address`, :class:`Listener` and
:class:`Connection` in :mod:`k8sbook.client.connection`; all are importable from here.

This module is over 400 lines: the fabric is one object on purpose, the only place that dials,
listens, injects faults and records the trace, so that nothing else can.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from k8sbook.client.address import (
    Address,
    DialError,
    DialErrorKind,
    Translation,
    Translator,
    Transport,
    Verify,
    client_refused,
    no_certificate,
    refused,
    timed_out,
    untrusted,
)
from k8sbook.client.connection import Connection, Handler, Listener
from k8sbook.core.clock import Clock
from k8sbook.core.trace import Message, Trace, component_of
from k8sbook.core.wire import wire_bytes

NODE_LOCAL = ("unix", "exec")  #: never leave the node: counted with 0 bytes, per path and verb, at ``counts``

__all__ = ["Address", "Connection", "DialError", "DialErrorKind", "Handler", "Listener",
           "Network", "Translation", "Translator", "Transport", "Verify", "client_refused",
           "refused", "timed_out", "untrusted"]

class Network:
    """The fabric: listeners by address, host names, netfilter hooks, faults, the trace."""

    def __init__(self, clock: Clock, trace: Trace) -> None:
        self.clock = clock
        self.trace = trace
        self._listeners: dict[Address, Listener] = {}
        self._hosts: dict[str, str] = {}
        self._translators: dict[str, Translator] = {}
        #: virtual IPs a load balancer answers on: address -> pick(src) -> a backend
        self._vips: dict[Address, Callable[[str], Translation]] = {}
        # faults
        self._isolated: set[str] = set()
        self._partitions: set[frozenset[str]] = set()
        self._firewalled: set[tuple[str, str]] = set()
        self._refusing: set[Address] = set()
        self._dropping: set[Address] = set()
        self._latency: dict[Address, float] = {}
        self._down: set[str] = set()
        #: (path, verb) -> how many more such messages pass before the connection is cut
        self._cut_after: dict[tuple[str, str], int] = {}
        # open connections, by the instances at either end
        self._conns: dict[str, dict[int, Connection]] = {}
        self._next_conn = 0
        # what the route and the injected latency add to a message's result, by message seq
        self._notes: dict[int, tuple[str, float]] = {}
        # who listened on an address last: a refused dial still names the component it was for
        self._last_owner: dict[Address, str] = {}
        # ... and on a host: a port nobody listens on is refused by that host (its pod)
        self._host_owner: dict[tuple[str, str], str] = {}
        # path ids by (src, dst) instance: what path_of computes, once per pair
        self._paths: dict[tuple[str, str], str] = {}

    # -- listening -------------------------------------------------------------------------
    def listen(self, address: Address, owner: str, handler: Handler, *,
               protocol: str = "", certificate: str | None = None,
               client_ca: str | None = None) -> Listener:
        """Bind ``handler`` to ``address`` for ``owner``; ``address already in use`` if taken.
        ``certificate`` names the issuer of the serving certificate a TLS server presents;
        ``client_ca`` the issuer whose client certificates it requires (mutual TLS)."""
        current = self._listeners.get(address)
        if current is not None and not current.closed:
            raise OSError(f"listen {address.transport} {address}: bind: address already in use")
        listener = Listener(address, owner, handler, protocol, certificate=certificate,
                            client_ca=client_ca)
        self._listeners[address] = listener
        self._last_owner[address] = owner
        if address.transport in ("tcp", "udp"):
            self._host_owner[(address.transport, address.host)] = owner
        return listener

    def close(self, address: Address) -> None:
        """The process behind ``address`` stops listening: new dials are refused."""
        listener = self._listeners.pop(address, None)
        if listener is not None:
            listener.closed = True

    def listener(self, address: Address) -> Listener | None:
        listener = self._listeners.get(self.resolve(address))
        return listener if listener is not None and not listener.closed else None

    # -- names and rules ---------------------------------------------------------------------
    def add_host(self, name: str, ip: str) -> None:
        """``name`` resolves to ``ip`` for every dialer (a machine's DNS record)."""
        self._hosts[name] = ip

    def lookup(self, name: str) -> str | None:
        return self._hosts.get(name)

    def resolve(self, address: Address) -> Address:
        if address.transport in ("unix", "exec"):
            return address
        ip = self._hosts.get(address.host)
        return address.with_host(ip) if ip is not None else address

    def set_translator(self, node: str, translate: Translator | None) -> None:
        """Install (or remove) the netfilter rules of ``node`` (what kube-proxy programs)."""
        if translate is None:
            self._translators.pop(node, None)
        else:
            self._translators[node] = translate

    def set_vip(self, address: Address, pick: Callable[[str], Translation] | None) -> None:
        """A load balancer's address: each dial to it goes where ``pick(src)`` says."""
        if pick is None:
            self._vips.pop(address, None)
        else:
            self._vips[address] = pick

    # -- faults ----------------------------------------------------------------------------
    def isolate(self, who: str) -> None:
        """Cut an instance (``kubelet/node-a``) or a whole component off from everything;
        its open connections break at once."""
        self._isolated.add(who)
        self._cut_where(lambda c: self._matches(c.src, who) or self._matches(c.dst, who))

    def is_isolated(self, who: str) -> bool:
        return self._blocked_src(who)

    def rejoin(self, who: str) -> None:
        self._isolated.discard(who)

    def partition(self, a: str, b: str) -> None:
        """No packet between ``a`` and ``b`` (instances or components), both ways."""
        self._partitions.add(frozenset((a, b)))
        self._cut_where(lambda c: self._split(c.src, c.dst))

    def heal(self, a: str | None = None, b: str | None = None) -> None:
        """Heal one partition, or every partition and isolation when called with no names."""
        if a is None:
            self._partitions.clear()
            self._isolated.clear()
            self._firewalled.clear()
            return
        self._partitions.discard(frozenset((a, b or a)))

    def firewall(self, src: str, dst: str, on: bool = True) -> None:
        """New connections from ``src`` to ``dst`` (instances or components) are dropped,
        one way only: what ``dst`` dials towards ``src`` still gets through, and so does
        everything sent back on it (a stateful firewall in front of the nodes)."""
        (self._firewalled.add if on else self._firewalled.discard)((src, dst))

    def cut_after(self, path: str, verb: str, count: int = 1) -> None:
        """The connection carrying the ``count``-th next message with ``verb`` on an open
        connection of ``path`` breaks right after that message (the peer at the far end
        goes away in the middle of a stream). One-shot."""
        self._cut_after[(path, verb)] = count

    def refuse(self, address: Address, on: bool = True) -> None:
        """The host answers ``address`` with a reset (as when nothing listens)."""
        (self._refusing.add if on else self._refusing.discard)(address)

    def drop(self, address: Address, on: bool = True) -> None:
        """Packets to ``address`` vanish: dials time out."""
        (self._dropping.add if on else self._dropping.discard)(address)

    def set_latency(self, address: Address, seconds: float) -> None:
        if seconds <= 0:
            self._latency.pop(address, None)
        else:
            self._latency[address] = seconds

    def set_down(self, host: str | Address, down: bool = True) -> None:
        """A per-address down switch: a host (every port on it) or one address is gone, so
        dials time out, and open connections to it break."""
        key = str(host) if isinstance(host, Address) else host
        if down:
            self._down.add(key)
            owners = {lis.owner for addr, lis in self._listeners.items()
                      if addr.host == key or str(addr) == key}
            self._cut_where(lambda c: c.dst in owners)
        else:
            self._down.discard(key)

    def is_down(self, address: Address) -> bool:
        return address.host in self._down or str(address) in self._down

    # -- dialling --------------------------------------------------------------------------
    def dial(self, src: str, address: Address, request: Any = None, *, protocol: str,
             verb: str, resource: str = "", name: str = "",
             result: Callable[[Any], str] | None = None,
             error: Callable[[Exception], str] | None = None, via: str | None = None,
             source_ip: str = "", timeout: float | None = None,
             verify: Verify | None = None, client_certificate: str | None = None) -> Any:
        """Open a connection from ``src`` to ``address``, send ``request``, return the reply.

        ``via`` names the node the packet leaves from (its netfilter rules apply, seen from
        ``source_ip``). ``result(reply)`` is what the trace shows (default: ``str``); if the
        handler raises, ``error(exc)`` is (default: ``str``) and the exception propagates.
        ``verify`` checks the listener's serving certificate (the issuer the dialer trusts,
        or a predicate over the listener's issuer); unset, any certificate is accepted, as
        with Go's ``InsecureSkipVerify``. ``client_certificate`` names the issuer of the client
        certificate the dialer presents, for a listener that requires one.
        """
        listener, msg = self._connect(src, address, protocol=protocol, verb=verb,
                                      resource=resource, name=name, via=via,
                                      source_ip=source_ip, timeout=timeout, verify=verify,
                                      payload=request, client_certificate=client_certificate)
        try:
            reply = listener.handler(request)
        except Exception as exc:
            if msg is not None:  # the result is text for the trace: made only to be recorded
                self._complete(msg, error(exc) if error is not None else str(exc))
            raise
        if self.trace.counting and address.transport not in NODE_LOCAL:  # the reply's bytes
            self.trace.tally(self._path(src, listener.owner), verb, wire_bytes(reply), 0,
                             resource)
        if msg is not None:
            self._complete(msg, result(reply) if result is not None else str(reply))
        return reply

    def open(self, src: str, address: Address, request: Any = None, *, protocol: str,
             verb: str, resource: str = "", name: str = "",
             result: Callable[[Any], str] | None = None, stream_protocol: str = "",
             via: str | None = None, source_ip: str = "",
             on_open: Callable[[Connection], None] | None = None,
             verify: Verify | None = None,
             client_certificate: str | None = None) -> tuple[Connection, Any]:
        """Like :meth:`dial`, but the connection stays open for a stream: the handler gets
        ``(request, connection)`` and the server pushes on the connection. ``on_open`` sees
        the connection before the request is sent."""
        listener, msg = self._connect(src, address, protocol=protocol, verb=verb,
                                      resource=resource, name=name, via=via,
                                      source_ip=source_ip, timeout=None, verify=verify,
                                      payload=request, client_certificate=client_certificate)
        conn = Connection(self, src, listener.owner, self._path(src, listener.owner),
                          stream_protocol or protocol)
        self._next_conn += 1
        conn.key = self._next_conn
        for end in (src, listener.owner):
            self._conns.setdefault(end, {})[conn.key] = conn
        if on_open is not None:
            on_open(conn)
        reply = listener.handler((request, conn))
        if msg is not None:
            self._complete(msg, result(reply) if result is not None else str(reply))
        return conn, reply

    def tcp_connect(self, src: str, address: Address, *, via: str | None = None,
                    source_ip: str = "", timeout: float | None = None) -> None:
        """The TCP handshake alone: raises the :class:`DialError` a dial to ``address``
        would (refused, timed out, no such host), and records nothing, since a handshake
        carries no message; what the dialer then sends is recorded when it is sent."""
        target = self._route(src, address, via, source_ip)
        if isinstance(target, Translation):
            target = target.address
        listener = self._listeners.get(target)
        owner = listener.owner if listener is not None and not listener.closed else ""
        self._check(src, owner, target, timeout)

    @staticmethod
    def path_of(src: str, dst: str) -> str:
        return f"{component_of(src)}->{component_of(dst)}"

    def _path(self, src: str, dst: str) -> str:
        """:meth:`path_of`, remembered per pair of instances."""
        path = self._paths.get((src, dst))
        if path is None:
            path = self._paths[(src, dst)] = self.path_of(src, dst)
        return path

    def _connect(self, src: str, address: Address, *, protocol: str, verb: str,
                 resource: str, name: str, via: str | None, source_ip: str,
                 timeout: float | None, verify: Verify | None = None, payload: Any = None,
                 client_certificate: str | None = None) -> tuple[Listener, Message | None]:
        note = ""
        try:
            target = self._route(src, address, via, source_ip)
            if isinstance(target, Translation):
                note, target = target.note, target.address
            listener = self._listeners.get(target)
            owner = listener.owner if listener is not None and not listener.closed else ""
            self._check(src, owner, target, timeout)
            assert listener is not None  # else _check refused the dial
            if listener.certificate == "":
                raise no_certificate(target)
            if verify is not None:
                cert = listener.certificate
                trusted = verify(cert) if callable(verify) else cert == verify
                if cert is None or not trusted:
                    raise untrusted(target, cert)
            if listener.client_ca is not None and client_certificate != listener.client_ca:
                raise client_refused(target, client_certificate)
        except DialError as err:
            dst = self._owner_hint(err.address)
            self._record(src, dst, protocol, verb, resource, name,
                         f"{note}, {err.result}" if note else err.result)
            raise
        latency = self._latency.get(target, 0.0) if self._latency else 0.0
        local = address.transport in NODE_LOCAL
        msg = self._record(src, owner, protocol, verb, resource, name, "",
                           None if local else payload, local=local)
        if msg is not None and (note or latency):
            self._notes[msg.seq] = (note, latency)  # shown when the result comes
        return listener, msg

    def _route(self, src: str, address: Address, via: str | None,
               source_ip: str) -> Address | Translation:
        if address.transport in ("unix", "exec"):
            return address
        host = address.host
        if not _is_ip(host):
            ip = self._hosts.get(host)
            if ip is None:
                raise DialError("no such host", address,
                                f"dial {address.transport}: lookup {host}: no such host")
            address = address.with_host(ip)
        if self._vips and address in self._vips:
            return self._vips[address](src)
        if via is not None:
            translate = self._translators.get(via)
            if translate is not None:
                out = translate(source_ip, address)
                if out.address != address or out.note:
                    return out
        return address

    def _check(self, src: str, owner: str, target: Address, timeout: float | None) -> None:
        # each fault is looked at only when one of its kind is injected: with none, a dial
        # costs a few truth tests (the same answers: an empty set holds nothing)
        if self._down and self.is_down(target) or self._dropping and target in self._dropping:
            raise timed_out(target)
        if self._isolated or self._partitions or self._firewalled:
            if owner and (self._blocked(src, owner) or self._firewalled and any(
                    self._matches(src, a) and self._matches(owner, b)
                    for a, b in self._firewalled)):
                raise timed_out(target)
            if self._blocked_src(src):
                raise timed_out(target)
        if not owner or self._refusing and target in self._refusing:
            raise refused(target)
        if timeout is not None and self._latency and self._latency.get(target, 0.0) >= timeout:
            raise timed_out(target)

    def _owner_hint(self, address: Address) -> str:
        owner = self._last_owner.get(address)
        if owner is None:
            owner = self._host_owner.get((address.transport, address.host), str(address))
        return owner

    @staticmethod
    def _matches(instance: str, who: str) -> bool:
        return instance == who or component_of(instance) == who

    def _blocked_src(self, src: str) -> bool:
        return src in self._isolated or component_of(src) in self._isolated

    def _blocked(self, src: str, dst: str) -> bool:
        iso = self._isolated
        if iso and (src in iso or dst in iso or component_of(src) in iso
                    or component_of(dst) in iso):
            return True
        return bool(self._partitions) and self._split(src, dst)

    def _split(self, a: str, b: str) -> bool:
        parts = self._partitions
        if not parts:
            return False
        ca, cb = component_of(a), component_of(b)
        return any(frozenset(pair) in parts for pair in ((a, b), (ca, b), (a, cb), (ca, cb)))

    def _cut_where(self, pred: Callable[[Connection], bool]) -> None:
        doomed = {c.key: c for conns in self._conns.values() for c in conns.values()
                  if pred(c)}
        for key in sorted(doomed):
            doomed[key].cut()

    def forget(self, conn: Connection) -> None:
        for end in (conn.src, conn.dst):
            conns = self._conns.get(end)
            if conns is not None:
                conns.pop(conn.key, None)
                if not conns:
                    del self._conns[end]

    def connections(self, instance: str) -> list[Connection]:
        """The open connections of ``instance``, oldest first."""
        return [c for _, c in sorted(self._conns.get(instance, {}).items())]

    # -- the trace -------------------------------------------------------------------------
    def _record(self, src: str, dst: str, protocol: str, verb: str, resource: str, name: str,
                result: str, payload: Any = None, local: bool = False) -> Message | None:
        trace = self.trace
        if trace.counting:
            # a call that stays on its node (CRI, CNI, OCI) names a sandbox, a container or
            # an image as its "resource": counted per path and verb only, or every container
            # would keep keys of its own (nothing reads those calls per resource)
            trace.tally(self._path(src, dst), verb, wire_bytes(payload), 1,
                        "" if local else resource)
            return None
        return trace.record(self.clock.now(), src, dst, self._path(src, dst), protocol, verb,
                            resource, name, result)

    def _complete(self, msg: Message | None, result: str) -> None:
        if msg is None:
            return
        if not self._notes:  # no route note and no latency: the result as it is
            self.trace.complete(msg, result)
            return
        note, latency = self._notes.pop(msg.seq, ("", 0.0))
        parts = [p for p in (note, result) if p]
        if latency:
            parts.append(f"+{latency:g}s")
        self.trace.complete(msg, ", ".join(parts))

    def record_stream(self, conn: Connection, verb: str, resource: str, name: str,
                      result: str, payload: Any = None, upward: bool = False
                      ) -> Message | None:
        """A message on an open connection: one the server pushes (a watch event, the
        close), or with ``upward`` one the dialer sends on a bidirectional stream (a gRPC
        stream's frames). A :meth:`cut_after` fault breaks the connection right after it."""
        src, dst = (conn.src, conn.dst) if upward else (conn.dst, conn.src)
        if self.trace.counting:
            self.trace.tally(conn.path, verb, wire_bytes(payload), 1, resource)
            msg = None
        else:
            msg = self.trace.record(self.clock.now(), src, dst, conn.path, conn.protocol,
                                    verb, resource, name, result)
        if self._cut_after:
            key = (conn.path, verb)
            left = self._cut_after.get(key)
            if left is not None:
                if left <= 1:
                    del self._cut_after[key]
                    conn.cut()
                else:
                    self._cut_after[key] = left - 1
        return msg


@functools.lru_cache(maxsize=1 << 16)
def _is_ip(host: str) -> bool:
    parts = host.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return True
    return ":" in host  # IPv6
