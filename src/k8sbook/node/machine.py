"""A node's machine: its disk, and the binaries and daemons besides the kubelet.

Kubernetes has no such package: this is what a node's operating system and its image hold
before the kubelet starts (what kubeadm's prerequisites install): containerd with its CRI
socket, ``runc`` in ``/usr/bin``, the CNI plugin in ``/opt/cni/bin`` with its configuration,
and the machine's ``/etc/resolv.conf``. :class:`Machine` builds and starts them on the
network; the composition root (:meth:`k8sbook.cluster.Cluster.add_kubelet`) hands the disk
to the kubelet, which reaches the rest only through their sockets and paths.
"""

from __future__ import annotations

from k8sbook.client.network import Network
from k8sbook.core.clock import Clock
from k8sbook.core.ids import IdGenerator
from k8sbook.node.cni import BridgePlugin
from k8sbook.node.container_runtime import ContainerRuntime, Registry
from k8sbook.node.runc import Runc

#: the machine's resolver: the model's machine network has its router and DNS at .1
HOST_RESOLV_CONF = "nameserver 192.168.0.1\n"


class Machine:
    def __init__(self, name: str, network: Network, clock: Clock, ids: IdGenerator,
                 pod_cidr: str, *, registry: Registry | None = None) -> None:
        self.name = name
        #: the node's disk: path -> contents
        self.filesystem: dict[str, str] = {"/etc/resolv.conf": HOST_RESOLV_CONF}
        self.cni = BridgePlugin(name, pod_cidr, network).install()
        self.runc = Runc(name, network).install()
        self.runtime = ContainerRuntime(name, network, clock, ids, filesystem=self.filesystem,
                                        registry=registry, cni_type=self.cni.type).start()
