"""What kube-proxy knows: Service ports and their endpoints, and the chain names it derives.

Mirrors ``pkg/proxy`` (``servicechangetracker.go``'s ``newServiceInfo``,
``endpointschangetracker.go``, ``topology.go``'s ``CategorizeEndpoints``) and the chain-name
hashes of ``pkg/proxy/iptables/proxier.go`` (``portProtoHash``,
``servicePortEndpointChainName``) and ``pkg/proxy/nftables/proxier.go`` (``hashAndTruncate``).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

MASQ_MARK = "0x4000"
#: ``--iptables-min-sync-period`` / ``--nftables-min-sync-period`` default
MIN_SYNC_PERIOD = 1.0
LABEL_SERVICE_NAME = "kubernetes.io/service-name"


# -- names ---------------------------------------------------------------------------------
def _b32(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """``portProtoHash``: base32(sha256(name + protocol))[:16]."""
    return _b32(service_port_name + protocol)[:16]


def service_chain(spn: str, protocol: str) -> str:
    return "KUBE-SVC-" + port_proto_hash(spn, protocol)


def external_chain(spn: str, protocol: str) -> str:
    return "KUBE-EXT-" + port_proto_hash(spn, protocol)


def endpoint_chain(spn: str, protocol: str, endpoint: str) -> str:
    """``servicePortEndpointChainName``: base32(sha256(name + protocol + "ip:port"))[:16]."""
    return "KUBE-SEP-" + _b32(spn + protocol + endpoint)[:16]


def hash_and_truncate(name: str) -> str:
    """nftables' ``hashAndTruncate``: base32(sha256(name))[:8] + "-" + name."""
    return _b32(name)[:8] + "-" + name


# -- what kube-proxy knows -----------------------------------------------------------------
@dataclass(frozen=True)
class ServicePort:
    """One port of one Service: ``proxy.ServicePortName`` plus what the rules need."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # TCP, UDP, SCTP
    cluster_ip: str
    port: int
    node_port: int = 0

    @property
    def spn(self) -> str:
        """``ServicePortName.String()``: ``ns/name:port`` (``ns/name`` if the port is unnamed)."""
        return f"{self.namespace}/{self.name}" + (f":{self.port_name}" if self.port_name else "")

    @property
    def proto(self) -> str:
        return self.protocol.lower()


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    ready: bool
    serving: bool
    terminating: bool
    node_name: str = ""
    target: str = ""  # namespace/name of the Pod behind it

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


def service_ports(services: list[Obj]) -> list[ServicePort]:
    """``newServiceInfo`` for every port of every Service kube-proxy handles: not headless,
    not ExternalName."""
    out = []
    for svc in services:
        spec = svc.get("spec", {})
        ip = spec.get("clusterIP", "")
        if not ip or ip == "None" or spec.get("type") == "ExternalName":
            continue
        for p in spec.get("ports", []) or []:
            out.append(ServicePort(svc["metadata"]["namespace"], svc["metadata"]["name"],
                                   p.get("name", ""), p.get("protocol", "TCP"), ip,
                                   int(p["port"]), int(p.get("nodePort", 0) or 0)))
    return sorted(out, key=lambda sp: (sp.spn, sp.protocol))


def endpoints_by_port(slices: list[Obj]) -> dict[tuple[str, str], list[Endpoint]]:
    """(service port name, protocol) -> endpoints, from every slice of every Service."""
    out: dict[tuple[str, str], list[Endpoint]] = {}
    for es in slices:
        svc = (es["metadata"].get("labels") or {}).get(LABEL_SERVICE_NAME)
        if not svc or es.get("addressType") != "IPv4":
            continue
        ns = es["metadata"]["namespace"]
        for port in es.get("ports") or []:
            pname = port.get("name") or ""
            spn = f"{ns}/{svc}" + (f":{pname}" if pname else "")
            for ep in es.get("endpoints") or []:
                cond = ep.get("conditions") or {}
                ready = cond.get("ready", True)
                ref = ep.get("targetRef") or {}
                out.setdefault((spn, port.get("protocol", "TCP")), []).append(Endpoint(
                    ep["addresses"][0], int(port["port"]), bool(ready),
                    bool(cond.get("serving", ready)), bool(cond.get("terminating", False)),
                    ep.get("nodeName", ""),
                    f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""))
    return {key: sorted(set(eps), key=lambda e: (ipaddress.ip_address(e.ip), e.port))
            for key, eps in out.items()}


def usable_endpoints(endpoints: list[Endpoint]) -> list[Endpoint]:
    """``CategorizeEndpoints`` for the Cluster traffic policy: the ready endpoints, or, when
    none is ready, the serving-and-terminating ones (so connections drain gracefully)."""
    ready = [e for e in endpoints if e.ready]
    if ready:
        return ready
    return [e for e in endpoints if e.serving and e.terminating]
