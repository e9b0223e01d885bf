"""The egress selector: how kube-apiserver reaches the cluster network.

Mirrors ``k8s.io/apiserver/pkg/server/egressselector`` (v1.35) and its configuration file
(``--egress-selector-config-file``, ``EgressSelectorConfiguration`` of
``apiserver.k8s.io/v1beta1``). Without it the apiserver dials kubelets, pods and services
directly. With an ``egressSelections`` entry named ``cluster`` whose connection is
``proxyProtocol: GRPC`` over ``transport.uds.udsName`` (the documented
``/etc/kubernetes/konnectivity-server/konnectivity-server.socket``), every such dial goes to the
konnectivity-server over that Unix socket instead (path ``kube-apiserver->konnectivity-server``):
a single-use gRPC stream per connection, on which a ``DIAL_REQ`` for the real destination is
answered by ``DIAL_RSP``, the bytes travel as ``DATA`` and ``CLOSE_REQ``/``CLOSE_RSP`` end it
(:mod:`k8sbook.apiserver.konnectivity_client`); the server relays each packet down the tunnel
an agent opened from the node. TLS to the destination is end to end, so
``--kubelet-certificate-authority`` still checks the kubelet's certificate through the
tunnel. ``controlplane`` and ``etcd`` egress
stay direct. The kubelet client (logs, exec, port-forward), ``pods/proxy`` and the aggregator's
calls to extension API servers dial through it; simplified: admission webhooks still dial
directly.

What travels is a :class:`TunnelDial`: the destination and the request for it. A refused dial
comes back as a :class:`~k8sbook.client.address.DialError` with the tunnel's reason.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from k8sbook.apiserver import konnectivity_client
from k8sbook.client.network import Address, DialError, Network, Verify

#: the socket of the documented set-up
UDS_NAME = "/etc/kubernetes/konnectivity-server/konnectivity-server.socket"
CONTROL_PLANE_NODE = "control-plane"
PROTOCOL = "gRPC (konnectivity proxy) over a Unix socket"


@dataclass(frozen=True)
class TunnelDial:
    """``DIAL_REQ`` as the apiserver's konnectivity client sends it, with what to send then."""

    address: Address
    request: Any
    protocol: str
    verb: str
    resource: str
    timeout: float | None = None
    #: what the apiserver's TLS client trusts at the far end (end-to-end TLS)
    verify: Verify | None = None


def configuration(uds_name: str = UDS_NAME) -> dict[str, Any]:
    """The ``EgressSelectorConfiguration`` of the documented Konnectivity set-up."""
    return {"apiVersion": "apiserver.k8s.io/v1beta1", "kind": "EgressSelectorConfiguration",
            "egressSelections": [{"name": "cluster", "connection": {
                "proxyProtocol": "GRPC", "transport": {"uds": {"udsName": uds_name}}}}]}


class EgressSelector:
    """``EgressSelector.Lookup(cluster)``: a dialer for the cluster network."""

    def __init__(self, network: Network, config: dict[str, Any] | None = None, *,
                 rand: random.Random | None = None) -> None:
        self.network = network
        #: where the konnectivity client's dial ids (``rand.Int63()``) come from
        self.rand = rand or random.Random("egress")
        self.uds: str | None = None
        if config is not None:
            self.configure(config)

    def configure(self, config: dict[str, Any] | None) -> None:
        self.uds = None
        for sel in (config or {}).get("egressSelections", []):
            conn = sel.get("connection") or {}
            if sel.get("name") == "cluster" and conn.get("proxyProtocol") == "GRPC":
                self.uds = ((conn.get("transport") or {}).get("uds") or {}).get("udsName")

    def dial(self, address: Address, request: Any, *, protocol: str, verb: str, resource: str,
             result: Any, timeout: float | None = None, verify: Any = None) -> Any:
        """Dial ``address`` in the cluster network, directly or through the proxy."""
        if self.uds is None:
            return self.network.dial("kube-apiserver", address, request, protocol=protocol,
                                     verb=verb, resource=resource, result=result,
                                     timeout=timeout, verify=verify)
        tunnel = Address.unix(CONTROL_PLANE_NODE, self.uds)
        reply = konnectivity_client.proxy(
            self.network, tunnel, TunnelDial(address, request, protocol, verb, resource,
                                             timeout, verify),
            self.rand, protocol=PROTOCOL)
        if isinstance(reply, DialError):
            raise reply
        return reply
