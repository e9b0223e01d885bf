"""The kubelet's settings and their defaults: ``KubeletConfiguration`` (kubelet.config.k8s.io
/v1beta1) as kubeadm writes it, and the constants of ``pkg/kubelet`` the model uses.

Mirrors ``pkg/kubelet/apis/config`` and ``staging/src/k8s.io/kubelet/config/v1beta1``
(v1.35.0) for the fields below; ``clusterDNS`` is kubeadm's (the tenth address of the Service
range, 10.96.0.10) and ``clusterDomain`` kubeadm's ``cluster.local``.
"""

from __future__ import annotations

from k8sbook.node.dns import CLUSTER_DOMAIN, kubeadm_cluster_dns

KUBELET_VERSION = "v1.35.0"
#: ``port``: the kubelet's HTTPS server
KUBELET_PORT = 10250
NODE_LEASE_NAMESPACE = "kube-node-lease"
#: ``nodeLeaseDurationSeconds``
LEASE_DURATION = 40
#: the lease controller renews every quarter of the duration (``renewIntervalFraction``)
LEASE_RENEW_INTERVAL = LEASE_DURATION * 0.25
#: ``nodeStatusUpdateFrequency`` and ``nodeStatusReportFrequency``
NODE_STATUS_UPDATE_FREQUENCY = 10.0
NODE_STATUS_REPORT_FREQUENCY = 300.0
#: the generic PLEG's relist period
PLEG_RELIST_PERIOD = 1.0
#: ``syncFrequency``: every pod is re-synced at least this often
SYNC_FREQUENCY = 60.0
#: ``backOffPeriod`` in kubelet.go: the first step of the image and crash-loop back-offs, and
#: how long a pod worker waits after a failed sync (with jitter factor 0.5)
BACKOFF_PERIOD = 10.0
#: ``MaxContainerBackOff`` (``pkg/kubelet/container``): both back-offs stop doubling here
MAX_CONTAINER_BACKOFF = 300.0
#: kubeadm's ``networking.podSubnet`` example (flannel's default); each node gets a /24
CLUSTER_CIDR = "10.244.0.0/16"
#: ``clusterDNS`` and ``clusterDomain`` as kubeadm configures them
CLUSTER_DNS = kubeadm_cluster_dns()
DEFAULT_CLUSTER_DOMAIN = CLUSTER_DOMAIN
#: ``resolvConf``: the node's resolver file the kubelet reads for ``dnsPolicy: Default``
RESOLV_CONF = "/etc/resolv.conf"
#: the ClusterIP of Service ``default/kubernetes`` (the first address of the Service range),
#: which the kubelet puts in every container's ``KUBERNETES_SERVICE_HOST``
KUBERNETES_SERVICE_HOST = "10.96.0.1"
KUBERNETES_SERVICE_PORT = 443
#: where the kubelet keeps each pod's directory (``--root-dir``)
ROOT_DIR = "/var/lib/kubelet"
