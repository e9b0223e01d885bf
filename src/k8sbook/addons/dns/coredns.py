"""CoreDNS's ``kubernetes`` plugin: Services, EndpointSlices and Namespaces in, DNS answers out.

Mirrors CoreDNS (``github.com/coredns/coredns``, ``plugin/kubernetes``): it lists and watches
Services, EndpointSlices and Namespaces as the service account ``kube-system:coredns`` and
answers A, AAAA, SRV and PTR for ``cluster.local`` the way the Kubernetes DNS specification
(https://github.com/kubernetes/dns/blob/master/docs/specification.md) and CoreDNS do (a
ClusterIP Service's name gives its ClusterIP; a headless Service's name gives the addresses of
its ready endpoints, each also named ``<hostname or dashed-IP>.<svc>.<ns>.svc.cluster.local``;
SRV targets weighted 100 / n; NXDOMAIN with the zone's SOA for a missing name; TTL 5).
Messages are real DNS messages parsed and built with ``dnspython``; a malformed query gets
FORMERR, as the ``miekg/dns`` server CoreDNS is built on answers it (its ``serveDNS`` and
default ``MsgAcceptFunc``: a response is ignored, a message shorter than a header is dropped,
an opcode other than QUERY or NOTIFY gets NOTIMP).

The server listens on ``Address.udp(<pod IP>, 53)`` in the network fabric; its handler takes
the query's wire bytes and returns the reply's (``None``: no reply is sent).

Simplified: IPv4 only (so AAAA questions get an empty NOERROR answer), no ``pods`` mode, no
``cache`` or ``loadbalance`` plugin (records keep a fixed order), the plugin's default TTL of
5 s (kubeadm's Corefile sets ``ttl 30``), UDP only (no TCP fallback); names outside the cluster
zone go to the model's ``forward`` upstream, a fixed table (empty by default: every such name
is NXDOMAIN).
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.reversename
import dns.rrset

from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.network import Address, Network
from k8sbook.client.rest import Client
from k8sbook.core.clock import EPOCH
from k8sbook.node.dns import CLUSTER_DOMAIN

Obj = dict[str, Any]
#: the kubernetes plugin's default ``ttl``
TTL = 5
DNS_PORT = 53


def _rcode_name(msg: dns.message.Message) -> str:
    return dns.rcode.to_text(msg.rcode())


def dashed(ip: str) -> str:
    return ip.replace(".", "-")


class CoreDNS:
    """One CoreDNS replica (``coredns/<pod>``), serving UDP on its pod IP, port 53.

    Build it with ``Cluster.add_coredns(pod_name, pod_ip)`` (which gives it the client of
    the service account ``kube-system:coredns``), or ``CoreDNS(client, network, pod_name,
    pod_ip).start()``. It answers the DNS wire messages that reach ``Address.udp(pod_ip,
    53)``: a pod's resolver sends them to the ``kube-dns`` ClusterIP and its node's rules
    DNAT them here."""

    def __init__(self, client: Client, network: Network, pod_name: str, pod_ip: str, *,
                 zone: str = CLUSTER_DOMAIN, ttl: int = TTL,
                 upstream: dict[str, str] | None = None) -> None:
        self.client = client
        self.network = network
        self.pod_name = pod_name
        self.pod_ip = pod_ip
        self.address = Address.udp(pod_ip, DNS_PORT)
        self.zone = zone.rstrip(".")
        self.ttl = ttl
        self.upstream = dict(upstream or {})
        self.instance = f"coredns/{pod_name}"
        self.services = SharedIndexInformer(self.client, "services")
        self.slices = SharedIndexInformer(self.client, "endpointslices")
        self.namespaces = SharedIndexInformer(self.client, "namespaces")
        self.modified = 0
        for inf in (self.services, self.slices, self.namespaces):
            inf.add_event_handler(lambda o: self._touch(), lambda a, b: self._touch(),
                                  lambda o: self._touch())
        #: every query served: (qname, qtype, rcode)
        self.log: list[tuple[str, str, str]] = []

    def start(self) -> CoreDNS:
        """List and watch, then bind ``:53`` (the ``dns`` server block's listener)."""
        for inf in (self.services, self.slices, self.namespaces):
            inf.run()
        self.network.listen(self.address, self.instance, self.handle, protocol="DNS/UDP")
        return self

    def stop(self) -> None:
        """The process ends: its socket closes (queries DNATed here go unanswered)."""
        self.network.close(self.address)
        for inf in (self.services, self.slices, self.namespaces):
            inf.stop()

    def _touch(self) -> None:
        self.modified = int(EPOCH.timestamp() + self.client.clock.now())

    # -- the data -------------------------------------------------------------------------
    def soa(self) -> dns.rrset.RRset:
        z = self.zone
        return dns.rrset.from_text(f"{z}.", self.ttl, "IN", "SOA",
                                   f"ns.dns.{z}. hostmaster.{z}. {self.modified} 7200 1800 "
                                   f"86400 {self.ttl}")

    def _service(self, ns: str, name: str) -> Obj | None:
        return self.services.get(f"{ns}/{name}")

    def _ready_endpoints(self, ns: str, name: str) -> list[tuple[str, str, list[Obj]]]:
        """(ip, hostname, slice ports) for each ready endpoint of the Service."""
        out = []
        for es in self.slices.lister(ns):
            labels = es["metadata"].get("labels") or {}
            if labels.get("kubernetes.io/service-name") != name:
                continue
            if es.get("addressType") != "IPv4":
                continue
            for ep in es.get("endpoints") or []:
                if not (ep.get("conditions") or {}).get("ready", True):
                    continue
                ip = ep["addresses"][0]
                out.append((ip, ep.get("hostname") or dashed(ip), es.get("ports") or []))
        return sorted(out, key=lambda t: ipaddress.ip_address(t[0]))

    def _namespace_exists(self, ns: str) -> bool:
        return self.namespaces.get(ns) is not None

    # -- answering ------------------------------------------------------------------------
    def handle(self, wire: bytes) -> bytes | None:
        """Serve one UDP message; ``None`` means no reply is sent."""
        if len(wire) < 12:
            return None  # not even a header: nothing to answer
        msg_id, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", wire[:12])
        if flags & 0x8000:
            return None  # a response, not a query: ignored (MsgIgnore)
        opcode = (flags >> 11) & 0xF
        reject: int | None = None
        if opcode not in (dns.opcode.QUERY, dns.opcode.NOTIFY):
            reject = dns.rcode.NOTIMP
        elif qd != 1 or an > 1 or ns > 1 or ar > 2:
            reject = dns.rcode.FORMERR
        query = None
        if reject is None:
            try:
                query = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                reject = dns.rcode.FORMERR
        if reject is not None or query is None:
            err = dns.message.Message(id=msg_id)
            # miekg/dns keeps the request's header bits, sets QR, clears AA, and keeps the
            # opcode only for NOTIMP (SetRcodeFormatError resets it to QUERY otherwise)
            err.flags = dns.flags.QR | (flags & dns.flags.RD)
            if reject == dns.rcode.NOTIMP:
                err.set_opcode(opcode)
            err.set_rcode(dns.rcode.Rcode(reject if reject is not None else dns.rcode.FORMERR))
            self.log.append(("", "", dns.rcode.to_text(err.rcode())))
            return err.to_wire()
        # records in a fixed order: dnspython shuffles them by default, and the model runs
        # without CoreDNS's loadbalance plugin (which rotates them)
        return self.answer(query).to_wire(want_shuffle=False)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        resp = dns.message.make_response(query)
        q = query.question[0]
        qname, qtype = q.name.to_text().lower(), q.rdtype
        zone = f"{self.zone}."
        if qname.endswith(".in-addr.arpa."):
            self._ptr(resp, qname)
        elif qname == zone or qname.endswith("." + zone):
            resp.flags |= dns.flags.AA
            self._in_zone(resp, qname, qtype)
        else:
            target = self.upstream.get(qname)  # the forward plugin's upstream
            if target and qtype == dns.rdatatype.A:
                resp.answer.append(dns.rrset.from_text(qname, 30, "IN", "A", target))
            elif not target:
                resp.set_rcode(dns.rcode.NXDOMAIN)
            resp.flags |= dns.flags.RA
        self.log.append((qname, dns.rdatatype.to_text(qtype), _rcode_name(resp)))
        return resp

    def _nx(self, resp: dns.message.Message) -> None:
        resp.set_rcode(dns.rcode.NXDOMAIN)
        resp.authority.append(self.soa())

    def _nodata(self, resp: dns.message.Message) -> None:
        resp.authority.append(self.soa())

    def _in_zone(self, resp: dns.message.Message, qname: str, qtype: int) -> None:
        zone = f"{self.zone}."
        labels = qname[: -len(zone)].rstrip(".").split(".") if qname != zone else []
        if qname == zone:
            if qtype == dns.rdatatype.SOA:
                resp.answer.append(self.soa())
            else:
                self._nodata(resp)
            return
        # <...>.<ns>.svc.<zone>
        if len(labels) < 2 or labels[-1] != "svc":
            return self._nx(resp)
        ns = labels[-2]
        rest = labels[:-2]
        if not rest:  # <ns>.svc.<zone>: an empty non-terminal if the namespace exists
            return self._nodata(resp) if self._namespace_exists(ns) else self._nx(resp)
        if len(rest) == 3 and rest[0].startswith("_") and rest[1].startswith("_"):
            return self._srv(resp, qname, ns, rest[2], rest[0][1:], rest[1][1:].upper(),
                             qtype)
        svc_name = rest[-1]
        svc = self._service(ns, svc_name)
        if svc is None or len(rest) > 2:
            return self._nx(resp)
        headless = svc["spec"].get("clusterIP") == "None"
        if len(rest) == 2:  # <hostname>.<svc>.<ns>.svc: one endpoint of a headless Service
            hits = [ip for ip, host, _ in self._ready_endpoints(ns, svc_name)
                    if host == rest[0]] if headless else []
            if not hits:
                return self._nx(resp)
            return self._addresses(resp, qname, qtype, hits)
        if headless:
            ips = [ip for ip, _, _ in self._ready_endpoints(ns, svc_name)]
            if not ips:
                return self._nx(resp)
            return self._addresses(resp, qname, qtype, ips)
        if svc["spec"].get("type") == "ExternalName":
            resp.answer.append(dns.rrset.from_text(qname, self.ttl, "IN", "CNAME",
                                                   svc["spec"]["externalName"].rstrip(".") +
                                                   "."))
            return None
        return self._addresses(resp, qname, qtype, [svc["spec"]["clusterIP"]])

    def _addresses(self, resp: dns.message.Message, qname: str, qtype: int,
                   ips: list[str]) -> None:
        if qtype == dns.rdatatype.A:
            resp.answer.append(dns.rrset.from_text_list(qname, self.ttl, "IN", "A", ips))
        else:
            self._nodata(resp)  # AAAA (IPv4-only cluster), MX, TXT ...: the name exists

    def _srv(self, resp: dns.message.Message, qname: str, ns: str, svc_name: str,
             port_name: str, proto: str, qtype: int) -> None:
        svc = self._service(ns, svc_name)
        if svc is None or proto not in ("TCP", "UDP", "SCTP"):
            return self._nx(resp)
        base = f"{svc_name}.{ns}.svc.{self.zone}."
        if svc["spec"].get("clusterIP") != "None":
            ports = [p for p in svc["spec"].get("ports", [])
                     if p.get("name") == port_name and p.get("protocol", "TCP") == proto]
            if not ports:
                return self._nx(resp)
            if qtype != dns.rdatatype.SRV:
                return self._nodata(resp)
            resp.answer.append(dns.rrset.from_text(qname, self.ttl, "IN", "SRV",
                                                   f"0 100 {ports[0]['port']} {base}"))
            resp.additional.append(dns.rrset.from_text(base, self.ttl, "IN", "A",
                                                       svc["spec"]["clusterIP"]))
            return None
        targets = []
        for ip, host, ports in self._ready_endpoints(ns, svc_name):
            for p in ports:
                if p.get("name") == port_name and p.get("protocol", "TCP") == proto:
                    targets.append((f"{host}.{base}", ip, p["port"]))
        if not targets:
            return self._nx(resp)
        if qtype != dns.rdatatype.SRV:
            return self._nodata(resp)
        weight = 100 // len(targets)
        resp.answer.append(dns.rrset.from_text_list(
            qname, self.ttl, "IN", "SRV", [f"0 {weight} {port} {t}" for t, _, port in targets]))
        for t, ip, _ in targets:
            resp.additional.append(dns.rrset.from_text(t, self.ttl, "IN", "A", ip))
        return None

    def _ptr(self, resp: dns.message.Message, qname: str) -> None:
        resp.flags |= dns.flags.AA
        try:
            ip = dns.reversename.to_address(dns.name.from_text(qname))
        except (dns.exception.SyntaxError, ValueError):
            return self._nx(resp)
        for svc in self.services.lister():
            meta = svc["metadata"]
            if svc["spec"].get("clusterIP") == ip:
                target = f"{meta['name']}.{meta['namespace']}.svc.{self.zone}."
                resp.answer.append(dns.rrset.from_text(qname, self.ttl, "IN", "PTR", target))
                return None
            if svc["spec"].get("clusterIP") == "None":
                for eip, host, _ in self._ready_endpoints(meta["namespace"], meta["name"]):
                    if eip == ip:
                        target = f"{host}.{meta['name']}.{meta['namespace']}.svc.{self.zone}."
                        resp.answer.append(dns.rrset.from_text(qname, self.ttl, "IN", "PTR",
                                                               target))
                        return None
        return self._nx(resp)
