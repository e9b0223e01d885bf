"""The kube-proxy process of one node: informers in, the node's netfilter rules out.

Mirrors ``cmd/kube-proxy`` and the ``Proxier`` of ``pkg/proxy/iptables`` /
``pkg/proxy/nftables``: informers on Services and EndpointSlices (``pkg/proxy/config``) feed a
``BoundedFrequencyRunner`` that calls ``syncProxyRules`` at most once per
``--iptables-min-sync-period`` / ``--nftables-min-sync-period`` (default 1 s); each sync
renders the whole ruleset and hands it to the kernel (``iptables-restore`` / ``nft -f``).

In the model, handing the rules to the kernel is :meth:`KubeProxy.install`: the node's
translator in the network fabric (``Network.set_translator``) runs every new connection that
leaves the node through the rendered rules (:func:`~k8sbook.node.kube_proxy.iptables.walk_iptables`
or :func:`~k8sbook.node.kube_proxy.nftables.walk_nftables`) and returns the DNATed address,
or refuses the connection as the ``REJECT`` rule does (``connect: connection refused``).
kube-proxy itself is never on the data path: the fabric records the connection on the path
of whoever dialled it (``pod->pod``), and the reply is the backend's own.
"""

from __future__ import annotations

import random

from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.network import Address, DialError, Network, Translation, timed_out
from k8sbook.client.rest import Client
from k8sbook.node.kube_proxy.iptables import render_iptables, walk_iptables
from k8sbook.node.kube_proxy.model import (
    MIN_SYNC_PERIOD,
    Endpoint,
    ServicePort,
    endpoints_by_port,
    service_ports,
    usable_endpoints,
)
from k8sbook.node.kube_proxy.nftables import render_nftables, walk_nftables
from k8sbook.node.kube_proxy.walk import PacketWalk

#: how many packet walks a proxy keeps for observers (the kernel keeps none: this stands in
#: for ``nft monitor trace`` / the ``TRACE`` target)
WALKS_KEPT = 64


class KubeProxy:
    """One node's kube-proxy. Build it with ``Cluster.add_kube_proxy(node)``, or
    ``KubeProxy(client, network, "node-a", node_ip="192.168.0.10").start()``."""

    def __init__(self, client: Client, network: Network, node_name: str, *, node_ip: str,
                 mode: str = "iptables", cluster_cidr: str = "10.244.0.0/16",
                 service_cidr: str = "10.96.0.0/12",
                 min_sync_period: float = MIN_SYNC_PERIOD,
                 rng: random.Random | None = None) -> None:
        if mode not in ("iptables", "nftables"):
            raise ValueError(f"unsupported proxy mode {mode!r} (the model has iptables and "
                             "nftables)")
        self.client = client
        self.network = network
        self.node_name = node_name
        self.node_ip = node_ip
        self.mode = mode
        self.cluster_cidr = cluster_cidr
        self.service_cidr = service_cidr
        self.min_sync_period = min_sync_period
        #: the kernel's random source for ``statistic``/``numgen`` (seeded: deterministic)
        self.rng = rng or random.Random(node_name)
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
        #: the latest packets the node's rules handled, newest last
        self.walks: list[PacketWalk] = []

    def start(self) -> KubeProxy:
        for inf in (self.node, self.services, self.slices):
            inf.run()
        self.install()
        return self

    def stop(self) -> None:
        """The process ends. Its rules stay in the kernel (as on a real node), so Services
        keep working with the last rules written until something flushes them."""
        for inf in (self.node, self.services, self.slices):
            inf.stop()

    # -- the rules -------------------------------------------------------------------------
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

    @property
    def rules(self) -> str:
        """The ruleset of this proxy's mode, as last written."""
        return self.iptables_save if self.mode == "iptables" else self.nft_ruleset

    # -- the kernel's part -----------------------------------------------------------------
    def install(self) -> None:
        """Hand the rules to the node's kernel: install the node's translator."""
        self.network.set_translator(self.node_name, self.translate)

    def uninstall(self) -> None:
        """Flush the rules (``kube-proxy --cleanup``): Service VIPs stop answering."""
        self.network.set_translator(self.node_name, None)

    def walk(self, src: str, dst: str, dport: int, proto: str = "tcp", *,
             rng: random.Random | None = None) -> PacketWalk:
        """Run one new connection from ``src`` to ``dst:dport`` through the current rules
        (nothing is sent; see :meth:`translate` for what the fabric does)."""
        walker = walk_iptables if self.mode == "iptables" else walk_nftables
        return walker(self.rules, src=src, dst=dst, dport=dport, proto=proto,
                      local_ips=[self.node_ip], rng=rng or self.rng)

    def translate(self, source_ip: str, address: Address) -> Translation:
        """The node's netfilter hook: where a new connection from ``source_ip`` to
        ``address`` goes. ``REJECT`` refuses it (ICMP port unreachable: ``connect:
        connection refused``); ``DROP`` lets it time out; ``DNAT`` rewrites the
        destination; a packet no rule touches goes on unchanged."""
        if address.transport not in ("tcp", "udp"):
            return Translation(address)
        walk = self.walk(source_ip or self.node_ip, address.host, address.port,
                         address.transport)
        self.walks.append(walk)
        del self.walks[:-WALKS_KEPT]
        if walk.verdict == "REJECT":
            raise DialError("rejected", address,
                            f"dial {address.transport} {address}: connect: connection refused")
        if walk.verdict == "DROP":
            raise timed_out(address)
        if not walk.packet.dnat:
            return Translation(address)
        host, port = walk.packet.dnat.rsplit(":", 1)
        note = f"DNAT to {walk.packet.dnat}"
        if walk.packet.masquerade:
            note += ", masqueraded"
        return Translation(Address(host, int(port), address.transport), note)

    def pod_behind(self, endpoint: str) -> str:
        """The Pod name behind ``ip:port``, from the EndpointSlices' targetRefs."""
        for eps in endpoints_by_port(self.slices.lister()).values():
            for e in eps:
                if str(e) == endpoint and e.target:
                    return e.target.split("/", 1)[1]
        return ""
