"""containerd's pod sandbox controller: network namespace, CNI, the sandbox's files, pause.

Mirrors containerd's ``internal/cri/server/podsandbox`` (the ``podsandbox`` controller behind
``RunPodSandbox``, ``StopPodSandbox``, ``RemovePodSandbox``, ``PodSandboxStatus``):

* running a sandbox creates a network namespace, executes the CNI plugin to attach it (path
  ``container-runtime->cni-plugin``, :mod:`k8sbook.node.cni`), writes the sandbox's
  ``hostname`` and ``resolv.conf`` (from the ``DNSConfig`` the kubelet sent; the node's own
  ``/etc/resolv.conf`` when it sent none) under ``SANDBOXES_DIR/<id>/``, and starts the
  sandbox's ``pause`` container through runc. If the CNI plugin fails, the sandbox is torn
  down again and the call fails with ``failed to setup network for sandbox``;
* stopping it kills the pause container and executes the CNI plugin's ``DEL``; removing it
  deletes the pause container and the sandbox's files.

The runtime service (:mod:`k8sbook.node.container_runtime`) stops and removes the sandbox's
containers first, as containerd's CRI service does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from k8sbook.client.network import DialError, Network
from k8sbook.core.clock import Clock
from k8sbook.core.ids import IdGenerator
from k8sbook.node import shell
from k8sbook.node.cni import CNIError, CNIRequest, exec_plugin
from k8sbook.node.containerd_images import ImageService
from k8sbook.node.containerd_store import SANDBOX_NOTREADY, SANDBOX_READY, SANDBOXES_DIR, Sandbox
from k8sbook.node.cri import RPCError
from k8sbook.node.dns import DNSConfig, format_resolv_conf

SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"


class SandboxController:
    """One containerd's pod sandboxes. ``oci(verb, id, bundle=..., signal=...)`` executes
    runc; ``filesystem`` is the node's disk."""

    def __init__(self, instance: str, node: str, network: Network, clock: Clock,
                 ids: IdGenerator, new_id: Callable[[], str], filesystem: dict[str, str],
                 images: ImageService, oci: Callable[..., Any], cni_type: str) -> None:
        self.instance = instance
        self.node = node
        self.network = network
        self.clock = clock
        self.ids = ids
        self.new_id = new_id
        self.filesystem = filesystem
        self.images = images
        self.oci = oci
        self.cni_type = cni_type
        self.sandboxes: dict[str, Sandbox] = {}

    def run(self, config: dict[str, Any]) -> str:
        meta = config["metadata"]
        sid = self.new_id()
        netns = f"/var/run/netns/cni-{self.ids.uid()}"
        self.images.pull_image(SANDBOX_IMAGE)
        try:
            result = exec_plugin(self.network, self.instance, self.node, self.cni_type,
                                 CNIRequest("ADD", sid, netns))
        except (CNIError, DialError) as err:
            # containerd's deferred clean-up: the namespace goes, nothing is left behind
            msg = err.msg if isinstance(err, CNIError) else str(err)
            raise RPCError("Unknown", f'failed to setup network for sandbox "{sid}": '
                                           f'plugin type="{self.cni_type}" name="'
                                           f'k8s-pod-network" failed (add): {msg}') from None
        ip = result["ips"][0]["address"].split("/")[0]
        hostname = config.get("hostname", meta["name"])
        root = f"{SANDBOXES_DIR}/{sid}"
        self.filesystem[f"{root}/hostname"] = hostname + "\n"
        dns = config.get("dnsConfig")
        # interned: the pods of a namespace get the same text, kept once
        self.filesystem[f"{root}/resolv.conf"] = sys.intern(format_resolv_conf(DNSConfig(
            list(dns.get("servers", [])), list(dns.get("searches", [])),
            list(dns.get("options", []))))) if dns else \
            self.filesystem.get("/etc/resolv.conf", "")
        pause = shell.Process(files=lambda _: None, hostname=hostname)
        self.oci("create", sid, bundle=pause)
        self.oci("start", sid)
        self.sandboxes[sid] = Sandbox(sid, meta["name"], meta["namespace"], meta["uid"],
                                      meta.get("attempt", 0), netns, ip, SANDBOX_READY,
                                      self.clock.now(), hostname,
                                      config.get("logDirectory", ""))
        return sid

    def get(self, sid: str) -> Sandbox:
        if sid not in self.sandboxes:
            raise RPCError("NotFound", f'an error occurred when try to find sandbox "{sid}":'
                                            " not found")
        return self.sandboxes[sid]

    def stop(self, sid: str) -> None:
        """Kill the pause container and detach the network (its containers are stopped)."""
        sb = self.get(sid)
        if sb.state == SANDBOX_READY:
            self.oci("kill", sid, signal="SIGKILL")
            try:
                exec_plugin(self.network, self.instance, self.node, self.cni_type,
                            CNIRequest("DEL", sid, sb.netns))
            except (CNIError, DialError):
                pass  # containerd logs it; the namespace is removed anyway
            sb.state = SANDBOX_NOTREADY

    def remove(self, sid: str) -> None:
        """Delete a stopped sandbox (its containers are removed) and its files."""
        self.oci("delete", sid)
        for name in ("hostname", "resolv.conf"):
            self.filesystem.pop(f"{SANDBOXES_DIR}/{sid}/{name}", None)
        del self.sandboxes[sid]

    def status(self, sid: str) -> dict[str, Any]:
        sb = self.get(sid)
        return {"id": sb.id, "state": sb.state, "createdAt": sb.created_at,
                "network": {"ip": sb.ip if sb.state == SANDBOX_READY else ""},
                "metadata": {"name": sb.name, "namespace": sb.namespace, "uid": sb.uid,
                             "attempt": sb.attempt}}

    def list(self) -> list[dict[str, Any]]:
        return [{"id": s.id, "state": s.state, "metadata": {"uid": s.uid, "name": s.name,
                                                            "namespace": s.namespace}}
                for s in sorted(self.sandboxes.values(), key=lambda s: (s.created_at, s.id))]
