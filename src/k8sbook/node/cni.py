"""The CNI plugin a container runtime runs to give each pod sandbox its network.

Mirrors the Container Network Interface (``containernetworking/cni``, spec 1.0) and the
reference plugins ``bridge`` with ``host-local`` IPAM (``containernetworking/plugins``): the
runtime (not the kubelet) executes the plugin binary with ``CNI_COMMAND=ADD`` or ``DEL``, the
container id, the network namespace path and the interface name in environment variables and
the network configuration as JSON on stdin; ``ADD`` answers a result naming the interfaces and
the IP addresses it configured. ``host-local`` hands out addresses from the node's pod CIDR:
the first address is the bridge's gateway, allocation starts at the second, and it continues
after the last address it reserved (it does not reuse a freed address at once).

Simplified: no real interfaces or routes; a failure is injected with :meth:`fail_add`. Every
call is traced on the path ``container-runtime->cni-plugin``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from k8sbook.core.clock import Clock
from k8sbook.core.trace import Trace

CNI_VERSION = "1.0.0"
PROTOCOL = "exec (CNI 1.0: env + JSON on stdin)"
NETWORK_NAME = "k8s-pod-network"


class CNIError(Exception):
    """A plugin's error result (``{"code": ..., "msg": ...}`` on stdout, non-zero exit)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class BridgePlugin:
    """``bridge`` + ``host-local`` on one node: ADD allocates an IP, DEL releases it."""

    type = "bridge"

    def __init__(self, node: str, pod_cidr: str, clock: Clock, trace: Trace) -> None:
        self.node = node
        self.subnet = ipaddress.ip_network(pod_cidr)
        self.gateway = str(self.subnet.network_address + 1)
        self.clock = clock
        self.trace = trace
        #: container id -> allocated address (host-local keeps one file per address)
        self.allocations: dict[str, str] = {}
        self._last = self.subnet.network_address + 1
        self._fail: str | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The network configuration list the runtime finds in ``/etc/cni/net.d``."""
        return {"cniVersion": CNI_VERSION, "name": NETWORK_NAME,
                "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": True,
                             "ipMasq": True,
                             "ipam": {"type": "host-local",
                                      "ranges": [[{"subnet": str(self.subnet)}]],
                                      "routes": [{"dst": "0.0.0.0/0"}]}}]}

    def fail_add(self, msg: str | None) -> None:
        """Make every following ADD fail with ``msg`` (``None`` heals the plugin)."""
        self._fail = msg

    def _record(self, verb: str, container_id: str, result: str) -> None:
        self.trace.record(self.clock.now(), f"container-runtime/{self.node}",
                          f"cni-plugin/{self.node}", "container-runtime->cni-plugin", PROTOCOL,
                          verb, f"sandbox {container_id[:13]}", "", result)

    def add(self, container_id: str, netns: str, ifname: str = "eth0") -> dict[str, Any]:
        """``CNI_COMMAND=ADD``: attach ``netns`` to the bridge; return the CNI result."""
        if self._fail is not None:
            self._record("ADD", container_id, f"error: {self._fail}")
            raise CNIError(11, self._fail)
        if container_id in self.allocations:
            ip = self.allocations[container_id]
        else:
            ip = self._allocate(container_id)
            if ip is None:
                msg = f"failed to allocate for range 0: no IP addresses available in range " \
                      f"set: {self.subnet.network_address + 2}-{self.subnet.broadcast_address - 1}"
                self._record("ADD", container_id, f"error: {msg}")
                raise CNIError(11, msg)
        self._record("ADD", container_id, ip)
        return {"cniVersion": CNI_VERSION,
                "interfaces": [{"name": "cni0"}, {"name": ifname, "sandbox": netns}],
                "ips": [{"address": f"{ip}/{self.subnet.prefixlen}", "gateway": self.gateway,
                         "interface": 1}]}

    def delete(self, container_id: str, netns: str, ifname: str = "eth0") -> None:
        """``CNI_COMMAND=DEL``: release the address; deleting twice is not an error."""
        ip = self.allocations.pop(container_id, None)
        self._record("DEL", container_id, f"released {ip}" if ip else "nothing to release")

    def _allocate(self, container_id: str) -> str | None:
        used = set(self.allocations.values())
        first = self.subnet.network_address + 2
        last = self.subnet.broadcast_address - 1
        candidate = self._last
        for _ in range(self.subnet.num_addresses):
            candidate = candidate + 1 if candidate < last else first
            if str(candidate) not in used:
                self._last = candidate
                self.allocations[container_id] = str(candidate)
                return str(candidate)
        return None
