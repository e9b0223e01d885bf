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

The package: :mod:`.model` (what kube-proxy knows), :mod:`.iptables` and :mod:`.nftables`
(the rule writers and the kernel's walk through their output), :mod:`.walk` (the packet),
:mod:`.proxier` (the process, which installs the node's rules in the network fabric).

kube-proxy reads everything from kube-apiserver (as ``system:kube-proxy``, ClusterRole
``system:node-proxier``): it never talks to the kubelet, and once the rules are written it is
not on the data path at all: the fabric runs each new connection that leaves the node
through the rules (:meth:`KubeProxy.translate`). :func:`walk_iptables` and
:func:`walk_nftables` play the kernel's part: they parse the rendered text back and run a new connection through it, rule by
rule, returning where the packet ends up (DNAT to one endpoint, chosen by the ``statistic``
matches or ``numgen`` with a seeded random generator, REJECT or DROP) and whether it is
masqueraded. They evaluate exactly the matches and statements kube-proxy writes, nothing more.

Simplified: IPv4 only, ClusterIP and NodePort Services (no LoadBalancer, externalIPs, session
affinity, ``Local`` traffic policies or topology hints), ``--cluster-cidr`` local detection,
no health-check node ports, no conntrack. The ``iptables-save`` text shows the chains
kube-proxy owns (not the kubelet's ``KUBE-FIREWALL`` nor other software's rules), builtin
chains first and user chains in name order, as legacy ``iptables-save`` prints them.
"""

from k8sbook.node.kube_proxy.iptables import (
    Rule,
    parse_iptables_save,
    render_iptables,
    walk_iptables,
)
from k8sbook.node.kube_proxy.model import (
    LABEL_SERVICE_NAME,
    MASQ_MARK,
    MIN_SYNC_PERIOD,
    Endpoint,
    ServicePort,
    endpoint_chain,
    endpoints_by_port,
    external_chain,
    hash_and_truncate,
    port_proto_hash,
    service_chain,
    service_ports,
    usable_endpoints,
)
from k8sbook.node.kube_proxy.nftables import NftTable, parse_nft, render_nftables, walk_nftables
from k8sbook.node.kube_proxy.proxier import KubeProxy
from k8sbook.node.kube_proxy.walk import Packet, PacketWalk, in_cidr

__all__ = ["LABEL_SERVICE_NAME", "MASQ_MARK", "MIN_SYNC_PERIOD", "Endpoint", "KubeProxy",
           "NftTable", "Packet", "PacketWalk", "Rule", "ServicePort", "endpoint_chain",
           "endpoints_by_port", "external_chain", "hash_and_truncate", "in_cidr",
           "parse_iptables_save", "parse_nft", "port_proto_hash", "render_iptables",
           "render_nftables", "service_chain", "service_ports", "usable_endpoints",
           "walk_iptables", "walk_nftables"]
