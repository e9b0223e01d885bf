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
- **A dial through the tunnel.** When the apiserver sends a ``DIAL_REQ`` for, say,
  ``192.168.0.10:10250``, the server picks a connected agent by destination host
  (``--proxy-strategies=destHost,default``: the agent whose identifiers name that host, else the
  first agent), sends the request down that agent's open connection (the messages are on the
  agent's path), and the agent opens the TCP connection to the kubelet from the node itself
  (path ``konnectivity-agent->kubelet``). The answer returns the same way. With no agent
  connected, the dial fails with ``No agent available``.
- **TLS end to end.** The tunnel carries the apiserver's bytes; the TLS handshake inside it is
  the apiserver's, with the kubelet or the extension API server. So the agent's connection is
  checked against what the apiserver trusts (``TunnelDial.verify``:
  ``--kubelet-certificate-authority``, an APIService's ``caBundle``), and a certificate the
  apiserver does not trust fails the call with Go's ``x509`` words although the agent's TCP
  dial succeeded (``DIAL_RSP`` is ``ok``).

Simplified: one gRPC stream per agent carries whole requests and replies rather than
``DIAL_REQ``/``DATA``/``CLOSE_REQ`` packets; the agents' tokens are signed in-process (a
kubelet would request them for the DaemonSet's pods).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.apiserver.egress_selector import CONTROL_PLANE_NODE, UDS_NAME, TunnelDial
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
    """What an agent sends when it connects: its id, token, identifiers and the handler
    for what the server will send down the connection."""

    agent_id: str
    token: str
    identifiers: dict[str, list[str]]
    serve: Callable[[TunnelDial], Any]


@dataclass
class Backend:
    agent_id: str
    identifiers: dict[str, list[str]]
    conn: Connection
    serve: Callable[[TunnelDial], Any]


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

    def start(self) -> KonnectivityServer:
        self.network.listen(Address.unix(CONTROL_PLANE_NODE, self.uds_name),
                            "konnectivity-server", self.serve_apiserver,
                            protocol="gRPC over UDS")
        self.network.listen(Address.tcp(self.host, AGENT_PORT), "konnectivity-server",
                            self.serve_agent, protocol=AGENT_PROTOCOL)
        return self

    # -- agents ------------------------------------------------------------------------------
    def serve_agent(self, request: Any) -> str:
        hello, conn = request
        why = self._authenticate(hello.token)
        if why:
            self.log.append(f"agent {hello.agent_id}: {why}")
            conn.close()
            return f"Unauthenticated: {why}"
        self.backends[hello.agent_id] = Backend(hello.agent_id, hello.identifiers, conn,
                                                hello.serve)
        conn.on_break = lambda: self._forget(hello.agent_id, conn)
        return "connected"

    def _forget(self, agent_id: str, conn: Connection) -> None:
        backend = self.backends.get(agent_id)
        if backend is not None and backend.conn is conn:
            del self.backends[agent_id]

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

    # -- the apiserver's dials ---------------------------------------------------------------
    def pick(self, host: str) -> Backend | None:
        """``destHost``, then ``default``."""
        live = [b for _, b in sorted(self.backends.items()) if not b.conn.closed]
        for b in live:
            if host in b.identifiers.get("ipv4", []) + b.identifiers.get("host", []):
                return b
        return live[0] if live else None

    def serve_apiserver(self, dial: TunnelDial) -> Any:
        backend = self.pick(dial.address.host)
        if backend is None:
            return DialError("refused", dial.address, "No agent available")
        backend.conn.deliver("DIAL_REQ", dial.resource, str(dial.address))
        reply = backend.serve(dial)
        # a failed handshake is not a failed dial: the TCP connection opened, the apiserver's
        # TLS client inside the tunnel refused the certificate
        failed = isinstance(reply, DialError) and reply.kind != "tls"
        backend.conn.deliver("DIAL_RSP", dial.resource, str(dial.address),
                             reply.result if failed else "ok")
        return reply


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
                           {"ipv4": [self.node_ip], "host": [self.node]}, self.serve)
        try:
            conn, self.last_result = self.network.open(
                self.instance, self.server, hello, protocol=AGENT_PROTOCOL, verb="CONNECT",
                resource="agent tunnel", result=str)
        except DialError as err:
            self.last_result = err.result
            self.clock.call_later(SYNC_INTERVAL, self._connect, f"{self.instance} reconnect")
            return
        if conn.closed:  # refused by the server
            self.clock.call_later(SYNC_INTERVAL, self._connect, f"{self.instance} reconnect")
            return
        self.conn = conn
        conn.on_break = self._broken(conn)

    def _broken(self, conn: Connection) -> Callable[[], None]:
        server_side = conn.on_break

        def on_break() -> None:
            if server_side is not None:
                server_side()
            self.clock.call_later(SYNC_INTERVAL, self._connect, f"{self.instance} reconnect")
        return on_break

    def serve(self, dial: TunnelDial) -> Any:
        """Open the connection the server asked for, from this node."""
        try:
            return self.network.dial(self.instance, dial.address, dial.request,
                                     protocol=dial.protocol, verb=dial.verb,
                                     resource=dial.resource, timeout=dial.timeout,
                                     verify=dial.verify,  # the apiserver's TLS, end to end
                                     result=lambda r: r.result() if hasattr(r, "result")
                                     else str(r))
        except DialError as err:
            return err
