"""Konnectivity: a tunnel the nodes open, so the control plane can reach them.

Mirrors kubernetes-sigs/apiserver-network-proxy (``cmd/server``, ``cmd/agent``,
``pkg/server``, ``pkg/agent``) as the Kubernetes task "Set up Konnectivity service" deploys it:

- **konnectivity-server** runs beside kube-apiserver on the control-plane host. It listens on
  the Unix socket ``/etc/kubernetes/konnectivity-server/konnectivity-server.socket`` for the
  apiserver (``--uds-name``, ``--mode=grpc``; path ``kube-apiserver->konnectivity-server``) and
  on ``:8132`` for agents (``--agent-port``; ``--admin-port=8133`` and ``--health-port=8134``
  are not modelled). An agent presents a service-account token; the server checks it with a
  TokenReview for the audience ``system:konnectivity-server`` (``--authentication-audience``)
  on its own connection to the apiserver (``--kubeconfig``; path
  ``konnectivity-server->kube-apiserver``), and accepts only the ServiceAccount
  ``kube-system/konnectivity-agent`` (``--agent-namespace``, ``--agent-service-account``).
- **konnectivity-agent** runs on every node (the documented DaemonSet) and *dials out* to the
  server (``--proxy-server-host``, ``--proxy-server-port=8132``; path
  ``konnectivity-agent->konnectivity-server``), with its projected token (audience
  ``system:konnectivity-server``) and its identifiers (``--agent-identifiers`` with the node's
  IP and host name). The connection stays open; if it breaks the agent dials again
  (``--sync-interval``, here every 5 s).
- **A dial through the tunnel** (``pkg/server/server.go``, ``pkg/agent/client.go``, the packets
  of :mod:`k8sbook.apiserver.konnectivity_client`). The apiserver opens a ``Proxy`` stream on
  the socket and sends ``DIAL_REQ`` for, say, ``192.168.0.10:10250``. The server picks a
  connected agent by destination host (``--proxy-strategies=destHost,default``: the agent
  whose identifiers name that host, else the first agent), keeps the dial pending under its
  ``random`` id and sends the ``DIAL_REQ`` down that agent's stream. The agent opens the TCP
  connection from the node (path ``konnectivity-agent->kubelet``), numbers it with the next
  ``connectID`` (1, 2, ... per agent) and answers ``DIAL_RSP`` (or ``DIAL_RSP`` with the dial's
  error); the server relays it to the apiserver and files the connection as established.
  ``DATA`` packets then go both ways (the agent writes what it gets to the kubelet and sends
  back what the kubelet answers), and the apiserver's ``CLOSE_REQ`` is answered by the agent's
  ``CLOSE_RSP``. Every packet is on the trace, on the stream it travels: the apiserver's
  (``kube-apiserver->konnectivity-server``) or the agent's
  (``konnectivity-agent->konnectivity-server``, which the agent opened).
- **Failures.** With no agent connected the server answers ``DIAL_RSP`` with the error ``No
  agent available`` (``ErrNotFound``), and the apiserver's request fails with it. If an
  agent's stream breaks, the server drops it and sends ``CLOSE_RSP`` to the apiserver for
  every connection established through it (the deferred clean-up of ``serveRecvBackend``): a
  request in flight ends with ``EOF``. A dial still pending when the agent goes gets no
  ``DIAL_RSP`` at all (upstream does not close pending dials then); the apiserver gives it up
  with ``DIAL_CLS``, which removes it. The agent dials the server again.

Simplified: the agents' tokens are signed in-process (a kubelet would request them for the
DaemonSet's pods); the model keeps one stream per dial on the apiserver's side, as the
egress selector's single-use tunnels do, and DATA carries the HTTP message's first line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.apiserver.egress_selector import CONTROL_PLANE_NODE, UDS_NAME, TunnelDial
from k8sbook.apiserver.konnectivity_client import (
    AGENT_METHOD,
    Frame,
    TunnelStream,
    http_line,
    packet,
)
from k8sbook.client.network import Address, Connection, DialError, Network
from k8sbook.client.rest import Client
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError

AGENT_PORT = 8132
AUDIENCE = "system:konnectivity-server"
AGENT_NAMESPACE, AGENT_SERVICE_ACCOUNT = "kube-system", "konnectivity-agent"
AGENT_PROTOCOL = "gRPC over TLS (konnectivity agent tunnel)"
SYNC_INTERVAL = 5.0
#: the server's client certificate CN in the documented set-up
SERVER_USER = "system:konnectivity-server"


def manifests() -> list[dict[str, Any]]:
    """What the task applies besides the two programs: the server's binding to
    ``system:auth-delegator`` (so it may send TokenReviews) and the agents' ServiceAccount."""
    rbac = "rbac.authorization.k8s.io"
    return [{"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": SERVER_USER},
             "roleRef": {"apiGroup": rbac, "kind": "ClusterRole",
                         "name": "system:auth-delegator"},
             "subjects": [{"apiGroup": rbac, "kind": "User", "name": SERVER_USER}]},
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": AGENT_SERVICE_ACCOUNT, "namespace": AGENT_NAMESPACE}}]


@dataclass
class AgentHello:
    """What an agent sends when it connects (its gRPC metadata: ``agentID``, the token,
    ``agentIdentifiers``) and its end of the stream, which the server sends packets to."""

    agent_id: str
    token: str
    identifiers: dict[str, list[str]]
    agent: KonnectivityAgent


@dataclass
class Backend:
    agent_id: str
    identifiers: dict[str, list[str]]
    conn: Connection
    agent: KonnectivityAgent


@dataclass
class Frontend:
    """``ProxyClientConnection``: one of the apiserver's streams, as the server tracks it."""

    conn: Connection
    stream: TunnelStream
    backend: Backend | None = None
    dial_id: int = 0
    connect_id: int = 0


class FrontendStream:
    """The server's end of one ``Proxy`` stream: what the apiserver's ``Send`` reaches."""

    def __init__(self, server: KonnectivityServer, frontend: Frontend) -> None:
        self.server = server
        self.frontend = frontend

    def send(self, frame: Frame) -> None:
        frame.record(self.frontend.conn, upward=True)
        if not self.frontend.conn.closed:
            self.server.from_frontend(self.frontend, frame)


class BackendStream:
    """The server's end of one agent's ``Connect`` stream: what the agent's ``Send`` reaches."""

    def __init__(self, server: KonnectivityServer, backend: Backend) -> None:
        self.server = server
        self.backend = backend

    def send(self, frame: Frame) -> None:
        frame.record(self.backend.conn, upward=True)
        if not self.backend.conn.closed:
            self.server.from_backend(self.backend, frame)

    def __str__(self) -> str:
        return "connected"


@dataclass
class KonnectivityServer:
    """The proxy server, as ``konnectivity-server``."""

    client: Client
    network: Network
    host: str = "192.168.0.2"
    uds_name: str = UDS_NAME
    backends: dict[str, Backend] = field(default_factory=dict)
    #: what the server logs about agents it refused
    log: list[str] = field(default_factory=list)
    #: ``PendingDial``: dial id -> the frontend waiting for its ``DIAL_RSP``
    pending: dict[int, Frontend] = field(default_factory=dict)
    #: ``established``: (agent id, connectID) -> frontend
    established: dict[tuple[str, int], Frontend] = field(default_factory=dict)

    def start(self) -> KonnectivityServer:
        self.network.listen(Address.unix(CONTROL_PLANE_NODE, self.uds_name),
                            "konnectivity-server", self.serve_apiserver,
                            protocol="gRPC over UDS")
        self.network.listen(Address.tcp(self.host, AGENT_PORT), "konnectivity-server",
                            self.serve_agent, protocol=AGENT_PROTOCOL)
        return self

    # -- agents ------------------------------------------------------------------------------
    def serve_agent(self, request: Any) -> Any:
        hello, conn = request
        why = self._authenticate(hello.token)
        if why:
            self.log.append(f"agent {hello.agent_id}: {why}")
            conn.close()
            return f"Unauthenticated: {why}"
        backend = Backend(hello.agent_id, hello.identifiers, conn, hello.agent)
        self.backends[hello.agent_id] = backend
        conn.on_break = lambda: self._forget(backend)
        return BackendStream(self, backend)

    def _forget(self, backend: Backend) -> None:
        """The agent's stream ended: drop the backend and close, towards the apiserver,
        every connection established through it."""
        if self.backends.get(backend.agent_id) is backend:
            del self.backends[backend.agent_id]
        for key in sorted(k for k, fe in self.established.items() if fe.backend is backend):
            fe = self.established.pop(key)
            self._to_frontend(fe, Frame(packet("CLOSE_RSP", connectID=key[1])))

    def _authenticate(self, token: str) -> str:
        """``authenticateAgentViaToken``: a TokenReview for our audience, then the account."""
        try:
            review = self.client.create({
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": token, "audiences": [AUDIENCE]}})
        except (StatusError, DialError) as err:
            return f"Failed to authenticate request: {err}"
        status = review.get("status") or {}
        if not status.get("authenticated"):
            return f"lookup failed: {status.get('error', '')}"
        user = status.get("user", {}).get("username", "")
        want = f"system:serviceaccount:{AGENT_NAMESPACE}:{AGENT_SERVICE_ACCOUNT}"
        if user != want:
            return f"{user} is not the agent's service account ({want})"
        return ""

    # -- the apiserver's streams -------------------------------------------------------------
    def pick(self, host: str) -> Backend | None:
        """``destHost``, then ``default``."""
        live = [b for _, b in sorted(self.backends.items()) if not b.conn.closed]
        for b in live:
            if host in b.identifiers.get("ipv4", []) + b.identifiers.get("host", []):
                return b
        return live[0] if live else None

    def serve_apiserver(self, request: Any) -> FrontendStream:
        stream, conn = request
        return FrontendStream(self, Frontend(conn, stream))

    def from_frontend(self, fe: Frontend, frame: Frame) -> None:
        """``serveRecvFrontend``: a packet from the apiserver."""
        kind, p = frame.kind, frame.payload
        if kind == "DIAL_REQ":
            host = p.address.rsplit(":", 1)[0]
            backend = self.pick(host)
            if backend is None:
                self._to_frontend(fe, Frame(packet("DIAL_RSP", random=p.random,
                                                   error="No agent available")))
                return
            fe.backend, fe.dial_id = backend, p.random
            self.pending[p.random] = fe
            self._to_backend(backend, frame)
        elif kind == "DIAL_CLS":  # the apiserver gave the dial up
            self.pending.pop(p.random, None)
        elif fe.backend is not None and kind in ("DATA", "CLOSE_REQ"):
            self._to_backend(fe.backend, frame)

    def from_backend(self, backend: Backend, frame: Frame) -> None:
        """``serveRecvBackend``: a packet from an agent."""
        kind, p = frame.kind, frame.payload
        if kind == "DIAL_RSP":
            fe = self.pending.pop(p.random, None)
            if fe is None:
                return
            if not p.error:
                fe.connect_id = p.connectID
                self.established[(backend.agent_id, p.connectID)] = fe
            self._to_frontend(fe, frame)
        elif kind == "DATA":
            fe = self.established.get((backend.agent_id, p.connectID))
            if fe is not None:
                self._to_frontend(fe, frame)
        elif kind == "CLOSE_RSP":
            fe = self.established.pop((backend.agent_id, p.connectID), None)
            if fe is not None:
                self._to_frontend(fe, frame)

    def _to_frontend(self, fe: Frontend, frame: Frame) -> None:
        if fe.conn.closed:
            return
        frame.record(fe.conn, upward=False)
        fe.stream.receive(frame)

    def _to_backend(self, backend: Backend, frame: Frame) -> None:
        if backend.conn.closed:
            return
        frame.record(backend.conn, upward=False)
        if not backend.conn.closed:  # the stream may break right after the packet
            backend.agent.receive(frame)


class KonnectivityAgent:
    """One node's ``konnectivity-agent``."""

    def __init__(self, instance: str, network: Network, clock: Clock, *, node: str,
                 node_ip: str, token: str, server: Address) -> None:
        self.instance = instance
        self.network = network
        self.clock = clock
        self.node = node
        self.node_ip = node_ip
        self.token = token
        self.server = server
        self.conn: Connection | None = None
        self.last_result = ""
        self.running = False
        self._stream: Any = None
        #: ``nextConnID``: the last connection id given out
        self.next_conn_id = 0
        #: ``connManager``: connectID -> the dial it serves
        self.connections: dict[int, TunnelDial] = {}

    def start(self) -> KonnectivityAgent:
        self.running = True
        self._connect()
        return self

    def stop(self) -> None:
        self.running = False
        if self.conn is not None:
            self.conn.close()

    def _connect(self) -> None:
        if not self.running:
            return
        hello = AgentHello(self.instance, self.token,
                           {"ipv4": [self.node_ip], "host": [self.node]}, self)
        try:
            conn, stream = self.network.open(
                self.instance, self.server, hello, protocol=AGENT_PROTOCOL, verb="POST",
                resource=AGENT_METHOD, result=str)
        except DialError as err:
            self.last_result = err.result
            self.clock.call_later(SYNC_INTERVAL, self._connect, f"{self.instance} reconnect")
            return
        self.last_result = str(stream)
        if conn.closed:  # refused by the server
            self.clock.call_later(SYNC_INTERVAL, self._connect, f"{self.instance} reconnect")
            return
        self.conn, self._stream = conn, stream
        self.connections.clear()
        conn.on_break = self._broken(conn)

    def _broken(self, conn: Connection) -> Callable[[], None]:
        server_side = conn.on_break

        def on_break() -> None:
            if server_side is not None:
                server_side()
            self.connections.clear()
            self.clock.call_later(SYNC_INTERVAL, self._connect, f"{self.instance} reconnect")
        return on_break

    def _send(self, frame: Frame) -> None:
        if self.conn is not None and not self.conn.closed:
            self._stream.send(frame)

    def receive(self, frame: Frame) -> None:
        """A packet from the server (``Serve``)."""
        kind, p = frame.kind, frame.payload
        if kind == "DIAL_REQ":
            dial: TunnelDial = frame.body
            try:
                self.network.tcp_connect(self.instance, dial.address, timeout=dial.timeout)
            except DialError as err:
                self._send(Frame(packet("DIAL_RSP", random=p.random, error=str(err))))
                return
            self.next_conn_id += 1
            self.connections[self.next_conn_id] = dial
            self._send(Frame(packet("DIAL_RSP", random=p.random, connectID=self.next_conn_id)))
        elif kind == "DATA":
            dial = self.connections.get(p.connectID)  # type: ignore[assignment]
            if dial is None:
                return
            reply = self._forward(dial, frame.body)
            self._send(Frame(packet("DATA", connectID=p.connectID, data=http_line(reply)),
                             reply))
        elif kind == "CLOSE_REQ":
            self.connections.pop(p.connectID, None)
            self._send(Frame(packet("CLOSE_RSP", connectID=p.connectID)))

    def _forward(self, dial: TunnelDial, request: Any) -> Any:
        """Write the apiserver's bytes to the connection the agent opened on the node."""
        try:
            return self.network.dial(self.instance, dial.address, request,
                                     protocol=dial.protocol, verb=dial.verb,
                                     resource=dial.resource, timeout=dial.timeout,
                                     verify=dial.verify,
                                     result=lambda r: r.result() if hasattr(r, "result")
                                     else str(r))
        except DialError as err:
            return err
