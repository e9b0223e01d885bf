"""The stub resolver in a pod: its ``/etc/resolv.conf``, and UDP queries to the nameservers.

Mirrors glibc's resolver (``resolv/res_query.c`` ``__res_context_search`` and
``resolv/res_send.c`` ``__res_context_send``/``send_dg``), the library behind
``getaddrinfo`` in most container images:

* the search list (``res_search``): a name with fewer dots than ``ndots`` is tried with each
  search domain first, then as is; a name with at least ``ndots`` dots as is first; an
  absolute name (trailing dot) only as is. It stops at the first answer;
* each query is sent over UDP to the nameservers in order, up to ``attempts`` rounds
  (``options attempts:n``, default 2, at most 5); a nameserver that does not answer within
  its timeout (``options timeout:n``, default 5 s, at most 30; ``send_dg`` waits
  ``timeout << i`` divided by the number of servers for the ``i``-th server after the first)
  or that refuses the datagram (ICMP port unreachable) is "no answer", and the next one is
  tried.

The resolver is a component of the pod: it dials ``Address.udp(<nameserver>, 53)`` from the
pod's IP through its node (``via``), so the node's netfilter rules (kube-proxy's) pick the
CoreDNS pod that gets each datagram; the fabric records each one on ``pod->coredns``.

Simplified: UDP only (no TCP retry of a truncated answer), no ``rotate``, no
``single-request``, A and AAAA are not sent in parallel, and the model has no conntrack, so a
retry is DNATed afresh (on a real node, a retry from the same socket follows the conntrack
entry of the first datagram). The model's clock does not move during a call: the time a
lookup spent waiting is reported (:attr:`Lookup.waited`), not slept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdatatype

from k8sbook.client.network import Address, DialError, Network
from k8sbook.node.dns import DNSConfig

DNS_PORT = 53
#: glibc's ``RES_TIMEOUT`` and ``RES_DFLRETRY``; ``RES_MAXRETRANS`` and ``RES_MAXRETRY``
DEFAULT_TIMEOUT, DEFAULT_ATTEMPTS = 5, 2
MAX_TIMEOUT, MAX_ATTEMPTS = 30, 5
PROTOCOL = "DNS/UDP"


def parse_resolv_conf(text: str) -> DNSConfig:
    cfg = DNSConfig()
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "nameserver":
            cfg.servers.append(words[1])
        elif words[0] == "search":
            cfg.searches = words[1:]
        elif words[0] == "options":
            cfg.options = words[1:]
    return cfg


def option(cfg: DNSConfig, name: str, default: int) -> int:
    """The value of ``options <name>:<n>`` (the last one wins, as glibc reads them)."""
    value = default
    for o in cfg.options:
        if o.startswith(f"{name}:"):
            value = int(o.split(":", 1)[1])
    return value


def ndots(cfg: DNSConfig) -> int:
    return min(option(cfg, "ndots", 1), 15)  # RES_MAXNDOTS


def timeout(cfg: DNSConfig) -> int:
    return min(option(cfg, "timeout", DEFAULT_TIMEOUT), MAX_TIMEOUT)


def attempts(cfg: DNSConfig) -> int:
    return min(option(cfg, "attempts", DEFAULT_ATTEMPTS), MAX_ATTEMPTS)


def candidates(name: str, cfg: DNSConfig) -> list[str]:
    """glibc's ``res_search`` order: an absolute name as is; a name with fewer than ``ndots``
    dots with every search domain first, then as is; otherwise as is first, then searched."""
    if name.endswith("."):
        return [name]
    searched = [f"{name}.{s}." for s in cfg.searches]
    if name.count(".") >= ndots(cfg):
        return [f"{name}.", *searched]
    return [*searched, f"{name}."]


def describe(wire: bytes) -> str:
    """A query as the trace shows it: ``name TYPE``."""
    try:
        q = dns.message.from_wire(wire).question[0]
        return f"{q.name} {dns.rdatatype.to_text(q.rdtype)}"
    except Exception:  # noqa: BLE001 - a malformed query has no question to show
        return f"({len(wire)} bytes, malformed)"


def describe_reply(reply: bytes | None) -> str:
    if reply is None:
        return "no answer"
    m = dns.message.from_wire(reply)
    n = sum(len(rr) for rr in m.answer)
    return f"{dns.rcode.to_text(m.rcode())}, {n} answer{'s' if n != 1 else ''}"


@dataclass
class Send:
    """One datagram: to which nameserver, what came of it, and how long the resolver waited."""

    server: str
    outcome: str  # "answer", "no answer" (timed out / dropped), "refused"
    waited: float = 0.0


@dataclass
class Attempt:
    """One query (one name, one type) and its result after every datagram it took."""

    qname: str
    qtype: str
    server: str  # the nameserver that answered ("" if none did)
    rcode: str  # NOERROR, NXDOMAIN ... or TIMEOUT when no nameserver answered
    answers: list[str]
    sends: list[Send] = field(default_factory=list)

    @property
    def waited(self) -> float:
        return sum(s.waited for s in self.sends)


@dataclass
class Lookup:
    name: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def answer(self) -> list[str]:
        return self.attempts[-1].answers if self.attempts else []

    @property
    def found(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].rcode == "NOERROR" and \
            bool(self.answer)

    @property
    def waited(self) -> float:
        return sum(a.waited for a in self.attempts)


class StubResolver:
    """The resolver library of one pod: ``StubResolver(network, "client", "10.244.0.5",
    "node-a", resolv_conf_text, id_source=ids.random)``."""

    def __init__(self, network: Network, pod_name: str, pod_ip: str, node: str,
                 resolv_conf_text: str, *, id_source: Callable[[], float]) -> None:
        self.network = network
        self.pod_name = pod_name
        self.pod_ip = pod_ip
        self.node = node
        self.instance = f"pod/{pod_name}"
        self.cfg = parse_resolv_conf(resolv_conf_text)
        self.id_source = id_source

    def exchange(self, wire: bytes, server: str, *, wait: float | None = None) -> bytes | None:
        """Send one datagram to ``server``:53 from the pod; the reply, or None when none
        came within ``wait`` seconds. Raises :class:`DialError` if it was refused."""
        reply: bytes | None = self.network.dial(
            self.instance, Address.udp(server, DNS_PORT), wire, protocol=PROTOCOL,
            verb="QUERY", resource=describe(wire), result=describe_reply, via=self.node,
            source_ip=self.pod_ip, timeout=wait if wait is not None else timeout(self.cfg))
        return reply

    def _wait(self, index: int) -> float:
        """``send_dg``'s timeout for the ``index``-th nameserver."""
        seconds = timeout(self.cfg) << index
        if index > 0:
            seconds //= len(self.cfg.servers)
        return float(max(seconds, 1))

    def query(self, qname: str, qtype: str = "A") -> Attempt:
        """``res_send``: every nameserver in turn, ``attempts`` rounds, until one answers."""
        q = dns.message.make_query(qname, qtype)
        q.id = int(self.id_source() * 65536)
        wire = q.to_wire()
        out = Attempt(qname, qtype, "", "TIMEOUT", [])
        for _ in range(attempts(self.cfg)):
            for i, server in enumerate(self.cfg.servers):
                wait = self._wait(i)
                try:
                    reply = self.exchange(wire, server, wait=wait)
                except DialError as err:
                    if err.kind == "timeout":
                        out.sends.append(Send(server, "no answer", wait))
                    else:  # ICMP unreachable: the next server at once
                        out.sends.append(Send(server, "refused"))
                    continue
                if reply is None:
                    out.sends.append(Send(server, "no answer", wait))
                    continue
                r = dns.message.from_wire(reply)
                if r.id != q.id:  # not our answer: glibc keeps waiting, then gives up
                    out.sends.append(Send(server, "no answer", wait))
                    continue
                out.sends.append(Send(server, "answer"))
                out.server, out.rcode = server, dns.rcode.to_text(r.rcode())
                out.answers = [f"{rr.name} {rr.ttl} IN {dns.rdatatype.to_text(rr.rdtype)} "
                               f"{item}" for rr in r.answer for item in rr]
                return out
        return out

    def lookup(self, name: str, qtype: str = "A") -> Lookup:
        """``res_search``: try the candidates in order, stop at the first answer. A query no
        nameserver answered (``TRY_AGAIN``) ends the search too, as in glibc; NXDOMAIN and an
        empty answer go on to the next candidate."""
        out = Lookup(name)
        for qname in candidates(name, self.cfg):
            attempt = self.query(qname, qtype)
            out.attempts.append(attempt)
            if (attempt.rcode == "NOERROR" and attempt.answers) or attempt.rcode == "TIMEOUT":
                break
        return out
