"""What runs on every node: the kubelet, the container runtime behind CRI, CNI and CSI
plugins, and kube-proxy.

Mirrors ``pkg/kubelet`` (split along its own packages), ``k8s.io/cri-api`` with containerd
and runc, the CNI spec's bridge and host-local plugins, the CSI Node service, and
``pkg/proxy`` (iptables and nftables).
"""
