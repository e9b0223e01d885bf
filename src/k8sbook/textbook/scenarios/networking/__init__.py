"""Scenarios of the Service networking part: chapters 10 (Services, :mod:`.services`), 11
(cluster DNS, :mod:`.cluster_dns`) and 12 (Ingress, :mod:`.ingress`), on the common two-node
cluster of :mod:`.common`.

Importing the package registers the three chapters' scenarios; the chapters use the helpers
re-exported here (``from k8sbook.textbook.scenarios import networking as net``).
"""

from k8sbook.textbook.scenarios.networking.cluster_dns import (
    CH11,
    cluster_dns,
    coredns_down,
    coredns_pod,
    dns_story,
    kube_dns_service,
    malformed_query,
    pod_resolver,
    read_resolv_conf,
    start_dns,
)
from k8sbook.textbook.scenarios.networking.common import (
    CONTROL_PLANE_IP,
    COREDNS_IMAGE,
    NODES,
    Net,
    app_pod,
    client_pod,
    is_ready,
    kubernetes_endpointslice,
    last_walk,
    paths_graph,
    pod_get,
    pods_ready,
    select,
    service,
    slice_summary,
    spread,
    start_endpointslices,
    start_network,
    wait_until,
)
from k8sbook.textbook.scenarios.networking.ingress import (
    CH12,
    REQUESTS,
    backend,
    bad_ingress,
    curl,
    fallback_ingress,
    ingress,
    ingress_story,
    shop_ingress,
    tls_secret,
    upstream_failures,
)
from k8sbook.textbook.scenarios.networking.services import (
    CH10,
    nft_excerpt,
    service_story,
    services,
    unready_story,
)

__all__ = ["CH10", "CH11", "CH12", "CONTROL_PLANE_IP", "COREDNS_IMAGE", "NODES", "REQUESTS",
           "Net", "app_pod", "backend", "bad_ingress", "client_pod", "cluster_dns",
           "coredns_down", "coredns_pod", "curl", "dns_story", "fallback_ingress", "ingress",
           "ingress_story", "is_ready", "kube_dns_service", "kubernetes_endpointslice",
           "last_walk", "malformed_query", "nft_excerpt", "paths_graph", "pod_get",
           "pod_resolver", "pods_ready", "read_resolv_conf", "select", "service",
           "service_story", "services", "shop_ingress", "slice_summary", "spread",
           "start_dns", "start_endpointslices", "start_network", "tls_secret",
           "unready_story", "upstream_failures", "wait_until"]
