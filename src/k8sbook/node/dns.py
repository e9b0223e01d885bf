"""The kubelet's DNS configuration for a pod: what goes into the container's resolv.conf.

Mirrors ``pkg/kubelet/network/dns/dns.go`` (``GetPodDNS``): by ``dnsPolicy`` the kubelet gives
the runtime a nameserver list, a search list and options, in the ``DNSConfig`` of
``RunPodSandbox``'s ``PodSandboxConfig``. ``ClusterFirst`` (the default; for a ``hostNetwork``
pod it falls back to ``Default``) and ``ClusterFirstWithHostNet`` use the kubelet's
``clusterDNS`` (the ClusterIP of the Service ``kube-system/kube-dns``), the searches
``<ns>.svc.<domain> svc.<domain> <domain>`` followed by the node's own, and
``options ndots:5``; ``Default`` copies the node's resolv.conf; ``None`` starts empty;
``spec.dnsConfig`` is then merged in. :func:`format_resolv_conf` is the text containerd writes
into the container (search, then nameserver, then options).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

CLUSTER_DOMAIN = "cluster.local"
#: ``defaultDNSOptions`` in the kubelet
DEFAULT_OPTIONS = ["ndots:5"]
#: glibc / the kubelet's limits
MAX_NAMESERVERS = 3


def kubeadm_cluster_dns(service_cidr: str = "10.96.0.0/12") -> str:
    """kubeadm's ``GetDNSIP``: the tenth address of the Service range (10.96.0.10)."""
    return str(ipaddress.ip_network(service_cidr).network_address + 10)


# -- the kubelet's part ---------------------------------------------------------------------
@dataclass
class DNSConfig:
    """``runtimeapi.DNSConfig``: what the kubelet hands the container runtime."""

    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def _unique(items: list[str]) -> list[str]:
    out: list[str] = []
    for i in items:
        if i not in out:
            out.append(i)
    return out


def pod_dns_type(pod: Obj) -> str:
    """``getPodDNSType``: "cluster", "host" or "none"."""
    spec = pod.get("spec", {})
    policy = spec.get("dnsPolicy", "ClusterFirst")
    if policy == "ClusterFirstWithHostNet":
        return "cluster"
    if policy == "ClusterFirst":
        return "host" if spec.get("hostNetwork") else "cluster"
    if policy == "None":
        return "none"
    if policy == "Default":
        return "host"
    raise ValueError(f"unsupported dnsPolicy {policy!r}")


def dns_config(pod: Obj, cluster_dns: list[str], cluster_domain: str = CLUSTER_DOMAIN, *,
               host: DNSConfig | None = None) -> DNSConfig:
    """``GetPodDNS``: the pod's nameservers, searches and options, by ``dnsPolicy``, with
    ``spec.dnsConfig`` merged in. ``host`` is the node's resolv.conf (``--resolv-conf``)."""
    host = host or DNSConfig()
    kind = pod_dns_type(pod)
    if kind == "cluster" and not cluster_dns:
        kind = "host"  # the kubelet warns "MissingClusterDNS" and falls back to Default
    if kind == "cluster":
        ns = pod["metadata"].get("namespace", "default")
        searches = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain] \
            if cluster_domain else []
        cfg = DNSConfig(list(cluster_dns), _unique(searches + host.searches),
                        list(DEFAULT_OPTIONS))
    elif kind == "host":
        cfg = DNSConfig(list(host.servers), list(host.searches), list(host.options))
    else:
        cfg = DNSConfig()
    extra = pod.get("spec", {}).get("dnsConfig") or {}
    if extra:
        cfg.servers = _unique(cfg.servers + list(extra.get("nameservers") or []))
        cfg.searches = _unique(cfg.searches + list(extra.get("searches") or []))
        opts = {o.split(":", 1)[0]: o for o in cfg.options}
        for o in extra.get("options") or []:
            opts[o["name"]] = o["name"] + (f":{o['value']}" if o.get("value") else "")
        cfg.options = list(opts.values())
    return cfg


def format_resolv_conf(cfg: DNSConfig) -> str:
    """resolv.conf text in the order containerd writes it."""
    lines = []
    if cfg.searches:
        lines.append("search " + " ".join(cfg.searches))
    lines += [f"nameserver {s}" for s in cfg.servers]
    if cfg.options:
        lines.append("options " + " ".join(cfg.options))
    return "\n".join(lines) + "\n"


def resolv_conf(pod: Obj, cluster_dns: str | list[str], cluster_domain: str = CLUSTER_DOMAIN,
                *, host: DNSConfig | None = None) -> str:
    """The ``/etc/resolv.conf`` a container of ``pod`` sees."""
    servers = [cluster_dns] if isinstance(cluster_dns, str) else list(cluster_dns)
    return format_resolv_conf(dns_config(pod, servers, cluster_domain, host=host))


def parse_resolv_conf(text: str) -> DNSConfig:
    """``parseResolvConf``: the nameservers, searches and options of a resolv.conf."""
    cfg = DNSConfig()
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            cfg.servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            cfg.searches = [s for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            cfg.options = fields[1:]
    return cfg
