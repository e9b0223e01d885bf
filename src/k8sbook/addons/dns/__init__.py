"""Cluster DNS: CoreDNS (the server, :mod:`.coredns`) and a pod's stub resolver
(:mod:`.resolver`).

What the kubelet puts in a container's ``/etc/resolv.conf`` is :mod:`k8sbook.node.dns`'s
(``pkg/kubelet/network/dns``); the resolver reads it back (:func:`parse_resolv_conf`) and sends
its queries to the ``kube-dns`` ClusterIP, which the node's kube-proxy rules DNAT to a CoreDNS
pod listening on UDP 53.
"""

import dns.message
import dns.rcode
import dns.rdatatype
import dns.reversename  # noqa: F401

from k8sbook.addons.dns.coredns import DNS_PORT, TTL, CoreDNS, dashed
from k8sbook.addons.dns.resolver import (
    DEFAULT_ATTEMPTS,
    DEFAULT_TIMEOUT,
    Attempt,
    Lookup,
    Send,
    StubResolver,
    attempts,
    candidates,
    describe,
    describe_reply,
    ndots,
    parse_resolv_conf,
    timeout,
)
from k8sbook.node.dns import (
    CLUSTER_DOMAIN,
    DEFAULT_OPTIONS,
    MAX_NAMESERVERS,
    DNSConfig,
    dns_config,
    format_resolv_conf,
    kubeadm_cluster_dns,
    pod_dns_type,
    resolv_conf,
)

__all__ = ["CLUSTER_DOMAIN", "DEFAULT_ATTEMPTS", "DEFAULT_OPTIONS", "DEFAULT_TIMEOUT",
           "DNS_PORT", "MAX_NAMESERVERS", "TTL", "Attempt", "CoreDNS", "DNSConfig", "Lookup",
           "Send", "StubResolver", "attempts", "candidates", "dashed", "describe",
           "describe_reply", "dns_config", "format_resolv_conf", "kubeadm_cluster_dns",
           "ndots", "parse_resolv_conf", "pod_dns_type", "resolv_conf", "timeout"]
