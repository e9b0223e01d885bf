"""The CNI plugin a container runtime runs to give each pod sandbox its network.

Mirrors the Container Network Interface (``containernetworking/cni``, spec 1.0) and the
reference plugins ``bridge`` with ``host-local`` IPAM (``containernetworking/plugins``): the
runtime (not the kubelet) executes the plugin binary with ``CNI_COMMAND=ADD`` or ``DEL``, the
container id, the network namespace path and the interface name in environment variables and
the network configuration as JSON on stdin; ``ADD`` answers a result naming the interfaces and
the IP addresses it configured. ``host-local`` hands out addresses from the node's pod CIDR:
the first address is the bridge's gateway, allocation starts at the second, and it continues
after the last address it reserved (it does not reuse a freed address at once).

The plugin is "installed" on the node: it listens on ``Address.exec(node,
"/opt/cni/bin/bridge")`` (:meth:`BridgePlugin.install`), and the runtime executes it by
dialling that address with a :class:`CNIRequest` (:func:`exec_plugin`); the network records
each execution on the path ``container-runtime->cni-plugin``. An error result travels back as
:class:`CNIError`.

Simplified: no real interfaces or routes; a failure is injected with :meth:`fail_add`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from k8sbook.client.network import Address, Network

CNI_VERSION = "1.0.0"
PROTOCOL = "exec (CNI 1.0: env + JSON on stdin)"
NETWORK_NAME = "k8s-pod-network"
#: where container runtimes look for plugin binaries (containerd's ``bin_dir`` default)
CNI_BIN_DIR = "/opt/cni/bin"


@dataclass(frozen=True)
class CNIRequest:
    """One execution: ``CNI_COMMAND``, ``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME``."""

    command: str
    container_id: str
    netns: str
    ifname: str = "eth0"


def plugin_address(node: str, type_: str) -> Address:
    return Address.exec(node, f"{CNI_BIN_DIR}/{type_}")


def _result(reply: Any) -> str:
    if isinstance(reply, dict) and reply.get("ips"):
        return str(reply["ips"][0]["address"]).split("/")[0]
    return str(reply)


def _error(exc: Exception) -> str:
    return f"error: {exc.msg}" if isinstance(exc, CNIError) else str(exc)


def exec_plugin(network: Network, src: str, node: str, type_: str,
                request: CNIRequest) -> Any:
    """What a runtime does to run plugin ``type_`` on ``node`` (libcni's ``ExecPlugin``)."""
    return network.dial(src, plugin_address(node, type_), request, protocol=PROTOCOL,
                        verb=request.command, resource=f"sandbox {request.container_id[:13]}",
                        result=_result, error=_error)


class CNIError(Exception):
    """A plugin's error result (``{"code": ..., "msg": ...}`` on stdout, non-zero exit)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class BridgePlugin:
    """``bridge`` + ``host-local`` on one node: ADD allocates an IP, DEL releases it."""

    type = "bridge"

    def __init__(self, node: str, pod_cidr: str, network: Network) -> None:
        self.node = node
        self.subnet = ipaddress.IPv4Network(pod_cidr)
        self.gateway = str(self.subnet.network_address + 1)
        self.network = network
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

    @property
    def instance(self) -> str:
        return f"cni-plugin/{self.node}"

    def install(self) -> BridgePlugin:
        """Put the binary in ``/opt/cni/bin``: from now on the runtime can execute it."""
        self.network.listen(plugin_address(self.node, self.type), self.instance, self.handle,
                            protocol=PROTOCOL)
        return self

    def handle(self, req: CNIRequest) -> Any:
        if req.command == "ADD":
            return self.add(req.container_id, req.netns, req.ifname)
        if req.command == "DEL":
            ip = self.delete(req.container_id, req.netns, req.ifname)
            return f"released {ip}" if ip else "nothing to release"
        raise CNIError(4, f"unknown CNI_COMMAND {req.command}")

    def add(self, container_id: str, netns: str, ifname: str = "eth0") -> dict[str, Any]:
        """``CNI_COMMAND=ADD``: attach ``netns`` to the bridge; return the CNI result."""
        if self._fail is not None:
            raise CNIError(11, self._fail)
        ip: str | None = self.allocations.get(container_id)
        if ip is None:
            ip = self._allocate(container_id)
            if ip is None:
                msg = f"failed to allocate for range 0: no IP addresses available in range " \
                      f"set: {self.subnet.network_address + 2}-{self.subnet.broadcast_address - 1}"
                raise CNIError(11, msg)
        return {"cniVersion": CNI_VERSION,
                "interfaces": [{"name": "cni0"}, {"name": ifname, "sandbox": netns}],
                "ips": [{"address": f"{ip}/{self.subnet.prefixlen}", "gateway": self.gateway,
                         "interface": 1}]}

    def delete(self, container_id: str, netns: str, ifname: str = "eth0") -> str | None:
        """``CNI_COMMAND=DEL``: release the address; deleting twice is not an error."""
        return self.allocations.pop(container_id, None)

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
