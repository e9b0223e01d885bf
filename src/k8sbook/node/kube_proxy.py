"""kube-proxy: watch Services and EndpointSlices, write kernel rules, carry no traffic.

Mirrors ``pkg/proxy`` (``config`` informers, ``servicechangetracker``/``endpointschangetracker``,
``topology.go``'s ``CategorizeEndpoints``) and the rule writers of two modes:

* ``pkg/proxy/iptables/proxier.go``: the ``filter`` and ``nat`` tables with ``KUBE-SERVICES``,
  one ``KUBE-SVC-<hash>`` chain per service port, one ``KUBE-SEP-<hash>`` chain per endpoint
  (``-m statistic --mode random --probability`` 1/n, 1/(n-1) ... 1/2, then an unconditional
  last rule), ``KUBE-NODEPORTS`` → ``KUBE-EXT-<hash>``, ``KUBE-MARK-MASQ`` and
  ``KUBE-POSTROUTING``, and ``REJECT`` rules in ``filter`` for a service with no usable
  endpoints. Chain hashes are the real ones: the first 16 characters of base32(sha256(service
  port name + protocol [+ endpoint])).
* ``pkg/proxy/nftables/proxier.go``: the table ``ip kube-proxy`` with the ``service-ips`` and
  ``service-nodeports`` verdict maps, one ``service-<hash8>-<ns>/<svc>/<proto>/<port>`` chain per
  service port whose ``numgen random mod n`` vmap picks an ``endpoint-...`` chain, and the
  ``no-endpoint-services`` map that sends traffic for a service without endpoints to
  ``reject-chain``.

kube-proxy reads everything from kube-apiserver (as ``system:kube-proxy``, ClusterRole
``system:node-proxier``): it never talks to the kubelet, and once the rules are written it is
not on the data path at all. :func:`walk_iptables` and :func:`walk_nftables` play the
kernel's part: they parse the rendered text back and run a new connection through it, rule by
rule, returning where the packet ends up (DNAT to one endpoint, chosen by the ``statistic``
matches or ``numgen`` with a seeded random generator, REJECT or DROP) and whether it is
masqueraded. They evaluate exactly the matches and statements kube-proxy writes, nothing more.

Simplified: IPv4 only, ClusterIP and NodePort Services (no LoadBalancer, externalIPs, session
affinity, ``Local`` traffic policies or topology hints), ``--cluster-cidr`` local detection,
no health-check node ports, no conntrack. The ``iptables-save`` text shows the chains
kube-proxy owns (not the kubelet's ``KUBE-FIREWALL`` nor other software's rules), builtin
chains first and user chains in name order, as legacy ``iptables-save`` prints them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import random
import shlex
from dataclasses import dataclass, field
from typing import Any

from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.rest import Client

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


def _q(text: str) -> str:
    """How ``iptables-save`` prints a comment: quoted only if it needs to be."""
    return text if text and all(c.isalnum() or c in "/:._-" for c in text) else f'"{text}"'


# -- the iptables mode ---------------------------------------------------------------------
def render_iptables(ports: list[ServicePort], endpoints: dict[tuple[str, str], list[Endpoint]],
                    *, cluster_cidr: str) -> str:
    """The ``filter`` and ``nat`` tables as ``iptables-save`` shows them after a sync."""
    f_chains = ["KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS",
                "KUBE-PROXY-FIREWALL", "KUBE-SERVICES"]
    f_rules: dict[str, list[str]] = {c: [] for c in ("INPUT", "FORWARD", "OUTPUT", *f_chains)}
    new = "-m conntrack --ctstate NEW"
    f_rules["INPUT"] += [
        f'{new} -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        (f'{new} -m comment --comment "kubernetes externally-visible service portals" '
        '-j KUBE-EXTERNAL-SERVICES')]
    f_rules["FORWARD"] += [
        f'{new} -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        f'{new} -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        (f'{new} -m comment --comment "kubernetes externally-visible service portals" '
        '-j KUBE-EXTERNAL-SERVICES')]
    f_rules["OUTPUT"] += [
        f'{new} -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        f'{new} -m comment --comment "kubernetes service portals" -j KUBE-SERVICES']
    f_rules["KUBE-FORWARD"] += [
        "-m conntrack --ctstate INVALID -j DROP",
        (f'-m comment --comment "kubernetes forwarding rules" -m mark --mark '
        f'{MASQ_MARK}/{MASQ_MARK} -j ACCEPT'),
        ('-m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate '
        'RELATED,ESTABLISHED -j ACCEPT')]

    n_rules: dict[str, list[str]] = {c: [] for c in (
        "PREROUTING", "INPUT", "OUTPUT", "POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODEPORTS",
        "KUBE-POSTROUTING", "KUBE-SERVICES")}
    n_rules["PREROUTING"].append('-m comment --comment "kubernetes service portals" '
                                 '-j KUBE-SERVICES')
    n_rules["OUTPUT"].append('-m comment --comment "kubernetes service portals" '
                             '-j KUBE-SERVICES')
    n_rules["POSTROUTING"].append('-m comment --comment "kubernetes postrouting rules" '
                                  '-j KUBE-POSTROUTING')
    n_rules["KUBE-MARK-MASQ"].append(f"-j MARK --or-mark {MASQ_MARK}")
    n_rules["KUBE-POSTROUTING"] += [
        f"-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-j MARK --xor-mark {MASQ_MARK}",
        ('-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
        '--random-fully')]
    for sp in ports:
        proto, spn = sp.proto, sp.spn
        match = f"-m {proto} -p {proto}"
        eps = usable_endpoints(endpoints.get((spn, sp.protocol), []))
        if not eps:
            f_rules["KUBE-SERVICES"].append(
                f'-m comment --comment "{spn} has no endpoints" {match} -d {sp.cluster_ip}/32 '
                f'--dport {sp.port} -j REJECT')
            if sp.node_port:
                f_rules["KUBE-EXTERNAL-SERVICES"].append(
                    f'-m comment --comment "{spn} has no endpoints" -m addrtype --dst-type '
                    f'LOCAL {match} --dport {sp.node_port} -j REJECT')
            continue
        svc_chain = service_chain(spn, proto)
        n_rules["KUBE-SERVICES"].append(
            f'-m comment --comment "{spn} cluster IP" {match} -d {sp.cluster_ip}/32 '
            f'--dport {sp.port} -j {svc_chain}')
        chain = n_rules.setdefault(svc_chain, [])
        chain.append(f'-m comment --comment "{spn} cluster IP" {match} -d {sp.cluster_ip}/32 '
                     f'--dport {sp.port} ! -s {cluster_cidr} -j KUBE-MARK-MASQ')
        if sp.node_port:
            ext = external_chain(spn, proto)
            n_rules["KUBE-NODEPORTS"].append(
                f"-m comment --comment {_q(spn)} {match} --dport {sp.node_port} -j {ext}")
            n_rules[ext] = [
                (f'-m comment --comment "masquerade traffic for {spn} external destinations" '
                "-j KUBE-MARK-MASQ"),
                f"-j {svc_chain}"]
        n = len(eps)
        for i, ep in enumerate(eps):
            sep = endpoint_chain(spn, proto, str(ep))
            stat = (f" -m statistic --mode random --probability {1.0 / (n - i):0.10f}"
                    if i < n - 1 else "")
            chain.append(f'-m comment --comment "{spn} -> {ep}"{stat} -j {sep}')
            n_rules[sep] = [
                f"-m comment --comment {_q(spn)} -s {ep.ip} -j KUBE-MARK-MASQ",
                f"-m comment --comment {_q(spn)} {match} -j DNAT --to-destination {ep}"]
    n_rules["KUBE-SERVICES"].append(
        '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule '
        'in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')

    def table(name: str, builtins: list[str], rules: dict[str, list[str]]) -> list[str]:
        users = sorted(c for c in rules if c not in builtins)
        lines = [f"*{name}"]
        lines += [f":{c} ACCEPT [0:0]" for c in builtins]
        lines += [f":{c} - [0:0]" for c in users]
        for c in builtins + users:
            lines += [f"-A {c} {r}" for r in rules[c]]
        return lines + ["COMMIT"]

    out = table("filter", ["INPUT", "FORWARD", "OUTPUT"], f_rules)
    out += table("nat", ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"], n_rules)
    return "\n".join(out) + "\n"


# -- the nftables mode ---------------------------------------------------------------------
def render_nftables(ports: list[ServicePort], endpoints: dict[tuple[str, str], list[Endpoint]],
                    *, cluster_cidr: str, service_cidr: str, node_ips: list[str]) -> str:
    """The transaction kube-proxy's nftables mode hands to ``nft`` for table ``ip
    kube-proxy`` (``nft list table ip kube-proxy`` shows the same content, nested)."""
    lines = [
        'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
        'add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }',
        ('add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept '
        'NodePort traffic" ; }'),
        ('add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : '
        'verdict ; comment "vmap to drop or reject packets to service nodeports with no '
        'endpoints" ; }'),
        ('add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . '
        'inet_service : verdict ; comment "vmap to drop or reject packets to services with no '
        'endpoints" ; }'),
        ('add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : '
        'verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }'),
        ('add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; '
        'comment "NodePort traffic" ; }'),
        "add chain ip kube-proxy cluster-ips-check",
        "add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }",
        "add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }",
        "add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }",
        "add chain ip kube-proxy mark-for-masquerade",
        "add chain ip kube-proxy masquerading",
        "add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }",
        "add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }",
        "add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }",
        "add chain ip kube-proxy nodeport-endpoints-check",
        ('add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / '
        '@no-endpoint-nodeports" ; }'),
        "add chain ip kube-proxy services",
        "add chain ip kube-proxy service-endpoints-check",
        ('add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject '
        'traffic to invalid ports of ClusterIPs"'),
        (f"add rule ip kube-proxy cluster-ips-check ip daddr {{ {service_cidr} }} drop comment "
        '"Drop traffic to unallocated ClusterIPs"'),
        "add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check",
        "add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check",
        "add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check",
        "add rule ip kube-proxy filter-input ct state new jump service-endpoints-check",
        "add rule ip kube-proxy filter-output ct state new jump service-endpoints-check",
        "add rule ip kube-proxy filter-output ct state new jump cluster-ips-check",
        f"add rule ip kube-proxy mark-for-masquerade mark set mark or {MASQ_MARK}",
        f"add rule ip kube-proxy masquerading mark and {MASQ_MARK} == 0 return",
        f"add rule ip kube-proxy masquerading mark set mark xor {MASQ_MARK}",
        "add rule ip kube-proxy masquerading masquerade fully-random",
        "add rule ip kube-proxy nat-output jump services",
        "add rule ip kube-proxy nat-postrouting jump masquerading",
        "add rule ip kube-proxy nat-prerouting jump services",
        ("add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . "
        "th dport vmap @no-endpoint-nodeports"),
        "add rule ip kube-proxy reject-chain reject",
        "add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips",
        ("add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap "
        "@service-nodeports"),
        ("add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap "
        "@no-endpoint-services"),
    ]
    for ip in node_ips:
        lines.append(f"add element ip kube-proxy nodeport-ips {{ {ip} }}")
    for sp in ports:
        proto, spn = sp.proto, sp.spn
        base = hash_and_truncate(f"{sp.namespace}/{sp.name}/{proto}/{sp.port_name}")
        eps = usable_endpoints(endpoints.get((spn, sp.protocol), []))
        lines.append("")
        lines.append(f"# {sp.namespace}/{sp.name}")
        lines.append(f"add element ip kube-proxy cluster-ips {{ {sp.cluster_ip} }}")
        key = f"{sp.cluster_ip} . {proto} . {sp.port}"
        if not eps:
            lines.append(f'add element ip kube-proxy no-endpoint-services {{ {key} comment '
                         f'"{spn}" : goto reject-chain }}')
            if sp.node_port:
                lines.append(f'add element ip kube-proxy no-endpoint-nodeports {{ {proto} . '
                             f'{sp.node_port} comment "{spn}" : goto reject-chain }}')
            continue
        svc = f"service-{base}"
        lines.append(f"add chain ip kube-proxy {svc}")
        lines.append(f"add rule ip kube-proxy {svc} ip daddr {sp.cluster_ip} ip saddr != "
                     f"{cluster_cidr} jump mark-for-masquerade")
        ep_chains = []
        for ep in eps:
            ep_base = hash_and_truncate(f"{sp.namespace}/{sp.name}/{proto}/{sp.port_name}__"
                                        f"{ep.ip}/{ep.port}")
            ep_chains.append((f"endpoint-{ep_base}", ep))
        vmap = " , ".join(f"{i} : goto {c}" for i, (c, _) in enumerate(ep_chains))
        lines.append(f"add rule ip kube-proxy {svc} numgen random mod {len(eps)} vmap "
                     f"{{ {vmap} }}")
        if sp.node_port:
            ext = f"external-{base}"
            lines.append(f"add chain ip kube-proxy {ext}")
            lines.append(f"add rule ip kube-proxy {ext} jump mark-for-masquerade")
            lines.append(f"add rule ip kube-proxy {ext} goto {svc}")
        for chain, ep in sorted(ep_chains):
            lines.append(f"add chain ip kube-proxy {chain}")
            lines.append(f"add rule ip kube-proxy {chain} ip saddr {ep.ip} jump "
                         "mark-for-masquerade")
            lines.append(f"add rule ip kube-proxy {chain} meta l4proto {proto} dnat to {ep}")
        lines.append(f"add element ip kube-proxy service-ips {{ {key} : goto {svc} }}")
        if sp.node_port:
            lines.append(f"add element ip kube-proxy service-nodeports {{ {proto} . "
                         f"{sp.node_port} : goto external-{base} }}")
    return "\n".join(lines) + "\n"


# -- the kernel's part: a packet through the iptables rules --------------------------------
@dataclass(frozen=True)
class Rule:
    table: str
    chain: str
    text: str
    args: tuple[str, ...]


@functools.lru_cache(maxsize=32)
def parse_iptables_save(text: str) -> dict[tuple[str, str], list[Rule]]:
    """``iptables-save`` text -> (table, chain) -> rules in order (cached: do not mutate)."""
    out: dict[tuple[str, str], list[Rule]] = {}
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            out.setdefault((table, line[1:].split()[0]), [])
        elif line.startswith("-A "):
            args = tuple(shlex.split(line))
            out.setdefault((table, args[1]), []).append(Rule(table, args[1], line, args[2:]))
    return out


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
def _in(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)


def _matches(args: tuple[str, ...], pkt: Packet, local_ips: set[str],
             rng: random.Random) -> tuple[bool, int]:
    """Evaluate a rule's matches; return (matched, index of ``-j``)."""
    i, negate = 0, False
    while i < len(args):
        a = args[i]
        if a == "-j":
            return True, i
        if a == "!":
            negate, i = True, i + 1
            continue
        ok = True
        if a == "-m":
            i += 2  # module names; their options follow
            continue
        if a == "--comment":
            i += 2
            continue
        if a == "-p":
            ok, i = args[i + 1] == pkt.proto, i + 2
        elif a == "-d":
            ok, i = _in(pkt.dst, args[i + 1]), i + 2
        elif a == "-s":
            ok, i = _in(pkt.src, args[i + 1]), i + 2
        elif a == "--dport":
            ok, i = int(args[i + 1]) == pkt.dport, i + 2
        elif a == "--dst-type":
            ok, i = (pkt.dst in local_ips) == (args[i + 1] == "LOCAL"), i + 2
        elif a == "--ctstate":
            ok, i = "NEW" in args[i + 1].split(","), i + 2  # every walk is a new connection
        elif a == "--mark":
            value, mask = (int(x, 16) for x in args[i + 1].split("/"))
            ok, i = (pkt.mark & mask) == value, i + 2
        elif a in ("--mode",):
            i += 2
            continue
        elif a == "--probability":
            ok, i = rng.random() < float(args[i + 1]), i + 2
        else:
            raise ValueError(f"the model's iptables cannot evaluate {a!r}")
        if ok == negate:
            return False, -1
        negate = False
    return True, len(args)


def _run_chain(rules: dict[tuple[str, str], list[Rule]], table: str, chain: str, pkt: Packet,
               local_ips: set[str], rng: random.Random, steps: list[str]) -> str:
    """Traverse ``chain``; return a terminal verdict, or "" to fall through to the caller."""
    for rule in rules.get((table, chain), []):
        ok, j = _matches(rule.args, pkt, local_ips, rng)
        if not ok or j >= len(rule.args):
            continue
        target, rest = rule.args[j + 1], rule.args[j + 2:]
        steps.append(f"{table:<6} {rule.text}")
        if target == "RETURN":
            return ""
        if target == "MARK":
            op, value = rest[0], int(rest[1], 16)
            pkt.mark = pkt.mark | value if op == "--or-mark" else pkt.mark ^ value
            continue
        if target == "DNAT":
            pkt.dnat = rest[1]
            return "DNAT"
        if target in ("REJECT", "DROP", "ACCEPT"):
            return target
        if target == "MASQUERADE":
            pkt.masquerade = True
            return "ACCEPT"
        verdict = _run_chain(rules, table, target, pkt, local_ips, rng, steps)
        if verdict:
            return verdict
    return ""


def walk_iptables(rules_text: str, *, src: str, dst: str, dport: int, proto: str = "tcp",
                  local_ips: list[str] | tuple[str, ...] = (), seed: int = 0,
                  rng: random.Random | None = None) -> PacketWalk:
    """Send the first packet of a new connection from ``src`` (a pod IP) to ``dst:dport``
    through the rules: nat PREROUTING, then filter FORWARD (or INPUT if the destination is
    this node), then nat POSTROUTING, as netfilter does for traffic from a pod."""
    rules = parse_iptables_save(rules_text)
    rng = rng or random.Random(seed)
    pkt = Packet(src, dst, dport, proto.lower())
    walk = PacketWalk(pkt)
    local = set(local_ips)
    v = _run_chain(rules, "nat", "PREROUTING", pkt, local, rng, walk.steps)
    view = Packet(src, pkt.dnat.rsplit(":", 1)[0] if pkt.dnat else dst,
                  int(pkt.dnat.rsplit(":", 1)[1]) if pkt.dnat else dport, pkt.proto, pkt.mark)
    hook = "INPUT" if view.dst in local else "FORWARD"
    fv = _run_chain(rules, "filter", hook, view, local, rng, walk.steps)
    if fv in ("REJECT", "DROP"):
        walk.verdict = fv
        return walk
    pkt.mark = view.mark
    _run_chain(rules, "nat", "POSTROUTING", pkt, local, rng, walk.steps)
    walk.verdict = f"DNAT {pkt.dnat}" if v == "DNAT" else "ACCEPT"
    return walk


# -- the kernel's part in nftables mode ----------------------------------------------------
@dataclass
class NftTable:
    """The ``ip kube-proxy`` table parsed back from the transaction text."""

    sets: dict[str, list[str]] = field(default_factory=dict)
    maps: dict[str, dict[str, str]] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)


_PREFIX = "ip kube-proxy "


@functools.lru_cache(maxsize=32)
def parse_nft(text: str) -> NftTable:
    table = NftTable()
    for line in text.splitlines():
        if line.startswith(f"add set {_PREFIX}"):
            table.sets.setdefault(line.split()[4], [])
        elif line.startswith(f"add map {_PREFIX}"):
            table.maps.setdefault(line.split()[4], {})
        elif line.startswith(f"add chain {_PREFIX}"):
            table.chains.setdefault(line.split()[4], [])
        elif line.startswith(f"add rule {_PREFIX}"):
            name, rule = line[len(f"add rule {_PREFIX}"):].split(" ", 1)
            table.chains.setdefault(name, []).append(rule)
        elif line.startswith(f"add element {_PREFIX}"):
            name, body = line[len(f"add element {_PREFIX}"):].split(" ", 1)
            body = body.strip()[1:-1].strip()  # { ... }
            if " : " in body:
                key, verdict = body.rsplit(" : ", 1)
                key = key.split(" comment ", 1)[0].strip()
                table.maps.setdefault(name, {})[key] = verdict.strip()
            else:
                table.sets.setdefault(name, []).append(body)
    return table


def _nft_member(value: str, items: list[str]) -> bool:
    return any(_in(value, item) for item in items)


def _nft_rule(rule: str, pkt: Packet, table: NftTable,
              rng: random.Random) -> tuple[str, str] | None:
    """Evaluate one rule; None if it does not match, else (verb, argument)."""
    t = shlex.split(rule)
    i = 0
    while i < len(t):
        w = t[i]
        if w == "comment":
            i += 2
        elif w == "ct":  # ct state new: every walk is a new connection
            i += 3
        elif w == "ip" and t[i + 2] == ".":  # ip daddr . meta l4proto . th dport vmap @map
            verdict = table.maps[t[i + 9][1:]].get(f"{pkt.dst} . {pkt.proto} . {pkt.dport}")
            return tuple(verdict.split(" ", 1)) if verdict else None  # type: ignore[return-value]
        elif w == "ip":
            value = pkt.dst if t[i + 1] == "daddr" else pkt.src
            negate = t[i + 2] == "!="
            j = i + 3 if negate else i + 2
            if t[j].startswith("@"):
                ok, j = _nft_member(value, table.sets.get(t[j][1:], [])), j + 1
            elif t[j] == "{":
                ok, j = _in(value, t[j + 1]), j + 3
            else:
                ok, j = _in(value, t[j]), j + 1
            if ok == negate:
                return None
            i = j
        elif w == "meta" and t[i + 2] == ".":  # meta l4proto . th dport vmap @map
            verdict = table.maps[t[i + 6][1:]].get(f"{pkt.proto} . {pkt.dport}")
            return tuple(verdict.split(" ", 1)) if verdict else None  # type: ignore[return-value]
        elif w == "meta":  # meta l4proto tcp dnat to ip:port
            if t[i + 2] != pkt.proto:
                return None
            return ("dnat", t[i + 5])
        elif w == "numgen":  # numgen random mod n vmap { 0 : goto a , 1 : goto b }
            n = int(t[i + 3])
            body = " ".join(t[i + 6:-1])
            entries = dict(e.strip().split(" : ") for e in body.split(" , "))
            return tuple(entries[str(rng.randrange(n))].split(" ", 1))  # type: ignore[return-value]
        elif w == "mark" and t[i + 1] == "and":  # mark and 0x4000 == 0 return
            if pkt.mark & int(t[i + 2], 16) != int(t[i + 4], 16):
                return None
            i += 5
        elif w == "mark":  # mark set mark or|xor 0x4000
            value = int(t[i + 4], 16)
            pkt.mark = pkt.mark | value if t[i + 3] == "or" else pkt.mark ^ value
            return ("continue", "")
        elif w in ("jump", "goto"):
            return (w, t[i + 1])
        elif w in ("return", "reject", "drop"):
            return (w, "")
        elif w == "masquerade":
            pkt.masquerade = True
            return ("accept", "")
        else:
            raise ValueError(f"the model's nftables cannot evaluate {w!r} in {rule!r}")
    return ("continue", "")


def _nft_chain(table: NftTable, chain: str, pkt: Packet, rng: random.Random,
               steps: list[str]) -> str:
    """Run ``chain``; return a final verdict (dnat, reject, drop, accept) or "" to go on."""
    for rule in table.chains.get(chain, []):
        got = _nft_rule(rule, pkt, table, rng)
        if got is None:
            continue
        verb, arg = got
        steps.append(f"{chain}: {rule}" + (f"  ⇒ {verb} {arg}".rstrip() if verb not in
                                            ("continue",) else ""))
        if verb == "continue":
            continue
        if verb == "return":
            return ""
        if verb == "dnat":
            pkt.dnat = arg
            return "dnat"
        if verb in ("reject", "drop", "accept"):
            return verb
        verdict = _nft_chain(table, arg, pkt, rng, steps)
        if verdict or verb == "goto":
            return verdict
    return ""


def walk_nftables(ruleset: str, *, src: str, dst: str, dport: int, proto: str = "tcp",
                  local_ips: list[str] | tuple[str, ...] = (), seed: int = 0,
                  rng: random.Random | None = None) -> PacketWalk:
    """The nftables counterpart of :func:`walk_iptables`: the base chains that hook
    prerouting (nat), then forward or input (filter), then postrouting (nat)."""
    table = parse_nft(ruleset)
    rng = rng or random.Random(seed)
    pkt = Packet(src, dst, dport, proto.lower())
    walk = PacketWalk(pkt)
    v = _nft_chain(table, "nat-prerouting", pkt, rng, walk.steps)
    view = Packet(src, pkt.dnat.rsplit(":", 1)[0] if pkt.dnat else dst,
                  int(pkt.dnat.rsplit(":", 1)[1]) if pkt.dnat else dport, pkt.proto, pkt.mark)
    # the filter hooks see the packet after DNAT; the lookups key on the original
    # destination only where kube-proxy's rules match it before DNAT (a REJECTed packet was
    # never DNATed, so both are the same then)
    hook = "filter-input" if view.dst in set(local_ips) else "filter-forward"
    fv = _nft_chain(table, hook, view, rng, walk.steps)
    if fv in ("reject", "drop"):
        walk.verdict = fv.upper()
        return walk
    pkt.mark = view.mark
    _nft_chain(table, "nat-postrouting", pkt, rng, walk.steps)
    walk.verdict = f"DNAT {pkt.dnat}" if v == "dnat" else "ACCEPT"
    return walk


# -- the component -------------------------------------------------------------------------
class KubeProxy:
    """One node's kube-proxy: ``KubeProxy(cluster, "node-a", node_ip="192.168.0.2").start()``."""

    def __init__(self, cluster: Any, node_name: str, *, node_ip: str,
                 mode: str = "iptables", cluster_cidr: str = "10.244.0.0/16",
                 service_cidr: str = "10.96.0.0/12",
                 min_sync_period: float = MIN_SYNC_PERIOD) -> None:
        if mode not in ("iptables", "nftables"):
            raise ValueError(f"unsupported proxy mode {mode!r} (the model has iptables and "
                             "nftables)")
        self.cluster = cluster
        self.node_name = node_name
        self.node_ip = node_ip
        self.mode = mode
        self.cluster_cidr = cluster_cidr
        self.service_cidr = service_cidr
        self.min_sync_period = min_sync_period
        self.client: Client = cluster.client(f"kube-proxy/{node_name}")
        self.services = SharedIndexInformer(self.client, "services")
        self.slices = SharedIndexInformer(self.client, "endpointslices")
        self.node = SharedIndexInformer(self.client, "nodes",
                                        field_selector=f"metadata.name={node_name}")
        for inf in (self.services, self.slices):
            inf.add_event_handler(lambda o: self._changed(), lambda a, b: self._changed(),
                                  lambda o: self._changed())
        self._pending = False
        self._last_sync = -1e9
        #: (time, number of service ports, number of usable endpoints) per sync
        self.syncs: list[tuple[float, int, int]] = []
        self.iptables_save = ""
        self.nft_ruleset = ""

    def start(self) -> KubeProxy:
        for inf in (self.node, self.services, self.slices):
            inf.run()
        return self

    def _changed(self) -> None:
        """The ``BoundedFrequencyRunner``: at most one sync per ``min_sync_period``."""
        if self._pending:
            return
        self._pending = True
        clock = self.client.clock
        delay = max(0.0, self._last_sync + self.min_sync_period - clock.now())
        clock.call_later(delay, self.sync_proxy_rules, label=f"kube-proxy/{self.node_name} sync")

    def state(self) -> tuple[list[ServicePort], dict[tuple[str, str], list[Endpoint]]]:
        return service_ports(self.services.lister()), endpoints_by_port(self.slices.lister())

    def sync_proxy_rules(self) -> None:
        self._pending = False
        self._last_sync = self.client.clock.now()
        ports, eps = self.state()
        self.iptables_save = render_iptables(ports, eps, cluster_cidr=self.cluster_cidr)
        self.nft_ruleset = render_nftables(ports, eps, cluster_cidr=self.cluster_cidr,
                                           service_cidr=self.service_cidr,
                                           node_ips=[self.node_ip])
        usable = sum(len(usable_endpoints(eps.get((p.spn, p.protocol), []))) for p in ports)
        self.syncs.append((round(self._last_sync, 6), len(ports), usable))

    def connect(self, client_pod: Obj, dst: str, dport: int, proto: str = "TCP", *,
                seed: int = 0, rng: random.Random | None = None,
                record: bool = True) -> PacketWalk:
        """A pod on this node opens a connection to ``dst:dport``: the kernel runs the rules
        this kube-proxy wrote; the trace gets one message on ``pod->pod`` (the kernel carries
        it; kube-proxy is not involved)."""
        walker = walk_iptables if self.mode == "iptables" else walk_nftables
        rules = self.iptables_save if self.mode == "iptables" else self.nft_ruleset
        walk = walker(rules, src=client_pod["status"]["podIP"], dst=dst, dport=dport,
                      proto=proto, local_ips=[self.node_ip], seed=seed, rng=rng)
        if record:
            src = f"pod/{client_pod['metadata']['name']}"
            if walk.refused:
                target, result = "pod", "connection refused (REJECT)"
            else:
                target = f"pod/{self.pod_behind(walk.destination) or walk.destination}"
                result = f"DNAT to {walk.destination}" if walk.packet.dnat else "delivered"
            self.cluster.trace.record(self.client.clock.now(), src, target, "pod->pod", proto,
                                      "CONNECT", f"{dst}:{dport}", "", result)
        return walk

    def pod_behind(self, endpoint: str) -> str:
        """The Pod name behind ``ip:port``, from the EndpointSlices' targetRefs."""
        for eps in endpoints_by_port(self.slices.lister()).values():
            for e in eps:
                if str(e) == endpoint and e.target:
                    return e.target.split("/", 1)[1]
        return ""
