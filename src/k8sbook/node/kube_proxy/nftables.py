"""kube-proxy's nftables mode: the transaction it hands to ``nft``, and a packet through it.

Mirrors ``pkg/proxy/nftables/proxier.go``: the table ``ip kube-proxy`` with the
``service-ips`` and ``service-nodeports`` verdict maps, one
``service-<hash8>-<ns>/<svc>/<proto>/<port>`` chain per service port whose ``numgen random
mod n`` vmap picks an ``endpoint-...`` chain, and the ``no-endpoint-services`` map that sends
traffic for a service without endpoints to ``reject-chain``. :func:`walk_nftables` parses the
transaction back and runs a new connection through the base chains.
"""

from __future__ import annotations

import functools
import random
import shlex
from dataclasses import dataclass, field

from k8sbook.node.kube_proxy.model import (
    MASQ_MARK,
    Endpoint,
    ServicePort,
    hash_and_truncate,
    usable_endpoints,
)
from k8sbook.node.kube_proxy.walk import Packet, PacketWalk, in_cidr


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
    return any(in_cidr(value, item) for item in items)


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
                ok, j = in_cidr(value, t[j + 1]), j + 3
            else:
                ok, j = in_cidr(value, t[j]), j + 1
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
            bits = int(t[i + 4], 16)
            pkt.mark = pkt.mark | bits if t[i + 3] == "or" else pkt.mark ^ bits
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
