"""The kernel's side shared by both modes: a packet, and where its walk through the rules ended.

Mirrors what netfilter keeps for the first packet of a new connection (its addresses, the
``skb`` mark kube-proxy's ``KUBE-MARK-MASQ`` sets, the DNAT target); ``in_cidr`` is the
``-s``/``-d`` / ``ip saddr``/``ip daddr`` prefix match.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field


@dataclass
class Packet:
    src: str
    dst: str
    dport: int
    proto: str = "tcp"
    mark: int = 0
    dnat: str = ""
    masquerade: bool = False


@dataclass
class PacketWalk:
    """Where a new connection went: every rule that matched, and the verdict."""

    packet: Packet
    steps: list[str] = field(default_factory=list)
    verdict: str = ""  # "DNAT <ip:port>", "REJECT", "ACCEPT"

    @property
    def refused(self) -> bool:
        return self.verdict == "REJECT"

    @property
    def destination(self) -> str:
        return self.packet.dnat or f"{self.packet.dst}:{self.packet.dport}"


@functools.lru_cache(maxsize=4096)
def in_cidr(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
