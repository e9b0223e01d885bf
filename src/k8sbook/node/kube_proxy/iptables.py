"""kube-proxy's iptables mode: the rules it writes, and a packet through them.

Mirrors ``pkg/proxy/iptables/proxier.go`` (``syncProxyRules``): the ``filter`` and ``nat``
tables with ``KUBE-SERVICES``, one ``KUBE-SVC-<hash>`` chain per service port, one
``KUBE-SEP-<hash>`` chain per endpoint (``-m statistic --mode random --probability`` 1/n,
1/(n-1) ... 1/2, then an unconditional last rule), ``KUBE-NODEPORTS`` -> ``KUBE-EXT-<hash>``,
``KUBE-MARK-MASQ`` and ``KUBE-POSTROUTING``, and ``REJECT`` rules in ``filter`` for a service
with no usable endpoints. :func:`walk_iptables` plays the kernel's part: it parses the
``iptables-save`` text back and runs a new connection through it rule by rule, evaluating
exactly the matches and targets kube-proxy writes.
"""

from __future__ import annotations

import functools
import random
import shlex
from dataclasses import dataclass

from k8sbook.node.kube_proxy.model import (
    MASQ_MARK,
    Endpoint,
    ServicePort,
    endpoint_chain,
    external_chain,
    service_chain,
    usable_endpoints,
)
from k8sbook.node.kube_proxy.walk import Packet, PacketWalk, in_cidr


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
            ok, i = in_cidr(pkt.dst, args[i + 1]), i + 2
        elif a == "-s":
            ok, i = in_cidr(pkt.src, args[i + 1]), i + 2
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
