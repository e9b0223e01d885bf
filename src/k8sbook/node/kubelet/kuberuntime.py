"""``SyncPod`` against the CRI: sandbox, images, containers, restarts, deletion.

Mirrors ``pkg/kubelet/kuberuntime`` (``kuberuntime_manager.go`` ``SyncPod`` and
``killPodWithSyncResult``, ``kuberuntime_container.go`` ``startContainer``,
``kuberuntime_sandbox.go`` ``generatePodSandboxConfig``), the image manager's
``EnsureImageExists`` (``pkg/kubelet/images``) with its per-image back-off, and the crash-loop
back-off of ``doBackOff`` (v1.35.0). Every runtime call goes through the kubelet's
:class:`~k8sbook.node.cri.CRIClient`, i.e. over the CRI socket.

The sandbox config carries the pod's DNS configuration (``DNSConfig``: what the runtime writes
as the container's ``/etc/resolv.conf``) from :meth:`Kubelet.pod_dns_config`; the container
config carries the environment and mounts of :mod:`k8sbook.node.kubelet.kubelet_pods`.

Simplified: no init containers, no startup probes, no image pull secrets; a deleted pod's
containers are removed at once (no container garbage collector).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.client.events import EventRecorder
from k8sbook.client.in_cluster import TOKEN_PATH
from k8sbook.client.rest import Client
from k8sbook.core.clock import Clock
from k8sbook.node.container_runtime import (
    CONTAINER_EXITED,
    CONTAINER_RUNNING,
    SANDBOX_READY,
    normalize_image,
)
from k8sbook.node.cri import CRIClient, RPCError
from k8sbook.node.dns import DNSConfig
from k8sbook.node.kubelet.backoff import Backoff, duration
from k8sbook.node.kubelet.kubelet_pods import hosts_file, make_environment_variables, pod_dir
from k8sbook.node.kubelet.prober import ProberManager
from k8sbook.node.kubelet.status_manager import StatusManager
from k8sbook.node.kubelet.types import PodRecord, ProbeState
from k8sbook.node.kubelet.volume_manager import VolumeManager

Obj = dict[str, Any]
TOKEN_DIR = TOKEN_PATH.rsplit("/", 1)[0]


class RuntimeManager:
    """``kubeGenericRuntimeManager`` for one kubelet.

    Like ``NewKubeGenericRuntimeManager`` it receives what it uses: the runtime service (the
    CRI client), the recorder, the clock, the back-offs (``imageBackOff``, the kubelet's
    ``backOff`` for crash loops), the managers it calls (volumes, probes, status), the API
    client (a deleted pod's final DELETE), the node's disk under ``root_dir`` (the pod's
    hosts file), the master Service for the environment, ``pod_dns_config`` (the kubelet's
    ``GetPodDNS``), the pod records and the set of images it learned of."""

    def __init__(self, *, cri: CRIClient, client: Client, clock: Clock,
                 recorder: EventRecorder, image_backoff: Backoff, crash_backoff: Backoff,
                 volumes: VolumeManager, prober: ProberManager,
                 status_manager: StatusManager, filesystem: dict[str, str], root_dir: str,
                 kubernetes_service: tuple[str, int],
                 pod_dns_config: Callable[[Obj], DNSConfig],
                 records: dict[str, PodRecord], images: set[str]) -> None:
        self.cri = cri
        self.client = client
        self.clock = clock
        self.recorder = recorder
        self.image_backoff = image_backoff
        self.crash_backoff = crash_backoff
        self.volumes = volumes
        self.prober = prober
        self.status_manager = status_manager
        self.filesystem = filesystem
        self.root_dir = root_dir
        self.kubernetes_service = kubernetes_service
        self.pod_dns_config = pod_dns_config
        self.records = records
        self.images = images

    def sync_pod(self, pod: Obj, rec: PodRecord) -> bool:
        """``SyncPod``: returns True when something failed and the pod must be retried."""
        meta, spec = pod["metadata"], pod["spec"]
        if not self.volumes.mount_volumes(pod, rec):
            return True
        sandbox_ready = rec.sandbox_id and (rec.sandbox is None or
                                            rec.sandbox.get("state") == SANDBOX_READY)
        if not sandbox_ready:
            if rec.sandbox_id:  # the old sandbox died: kill what is left, start over
                self.kill_sandbox(rec)
            attempt = rec.sandbox_attempt + 1
            dns = self.pod_dns_config(pod)
            config = {"metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                   "uid": meta["uid"], "attempt": attempt},
                      "hostname": spec.get("hostname") or meta["name"],
                      "dnsConfig": {"servers": list(dns.servers),
                                    "searches": list(dns.searches),
                                    "options": list(dns.options)},
                      "logDirectory":
                      f"/var/log/pods/{meta['namespace']}_{meta['name']}_{meta['uid']}"}
            try:
                rec.sandbox_id = self.cri.run_pod_sandbox(config)
            except RPCError as err:
                rec.sandbox_error = str(err)
                self.recorder.event(pod, "Warning", "FailedCreatePodSandBox",
                                    f"Failed to create pod sandbox: {err}")
                return True
            rec.sandbox_error = ""
            rec.sandbox_attempt = attempt
            rec.sandbox = self.cri.pod_sandbox_status(rec.sandbox_id)
            rec.container_ids.clear()
            rec.containers.clear()
            self._ensure_hosts_file(pod, rec)
        failed = False
        for c in spec["containers"]:
            name = c["name"]
            cid = rec.container_ids.get(name)
            if cid is None:
                failed |= not self.start_container(pod, rec, c, attempt=0)
                continue
            status = rec.containers.get(name)
            if status is None or status["id"] != cid:
                continue  # started, not yet seen by the PLEG
            if status["state"] == CONTAINER_RUNNING:
                probe = rec.probes.get(("liveness", name))
                if probe is not None and not probe.result:
                    self.recorder.event(pod, "Normal", "Killing",
                                        f"Container {name} failed liveness probe, will be "
                                        "restarted")
                    self.cri.stop_container(cid, spec.get("terminationGracePeriodSeconds", 30))
                    probe.result, probe.failures = True, 0
                continue
            if status["state"] != CONTAINER_EXITED:
                continue
            policy = spec.get("restartPolicy", "Always")
            if policy == "Never" or (policy == "OnFailure" and status["exitCode"] == 0):
                continue
            failed |= not self.restart_container(pod, rec, c, status)
        return failed

    def _ensure_hosts_file(self, pod: Obj, rec: PodRecord) -> None:
        """``ensureHostsFile``: the pod's ``/etc/hosts``, with its IP and hostname."""
        if pod["spec"].get("hostNetwork"):
            return
        ip = (rec.sandbox or {}).get("network", {}).get("ip", "")
        name = pod["spec"].get("hostname") or pod["metadata"]["name"]
        self.filesystem[f"{pod_dir(self.root_dir, rec.uid)}/etc-hosts"] = hosts_file(
            [ip] if ip else [], name, pod["spec"].get("subdomain", ""))

    def backoff_key(self, pod: Obj, c: Obj) -> str:
        meta = pod["metadata"]
        return f"{meta['name']}_{meta['namespace']}_{meta['uid']}_{c['name']}"

    def restart_container(self, pod: Obj, rec: PodRecord, c: Obj, status: Obj) -> bool:
        """``doBackOff`` then start the next attempt; False while in CrashLoopBackOff."""
        key = self.backoff_key(pod, c)
        now = self.clock.now()
        meta = pod["metadata"]
        if self.crash_backoff.in_backoff_since(key, status["finishedAt"], now):
            delay = int(self.crash_backoff.get(key))
            msg = (f"back-off {duration(delay)} restarting failed container={c['name']} "
                   f"pod={meta['name']}_{meta['namespace']}({meta['uid']})")
            rec.waiting[c["name"]] = ("CrashLoopBackOff", msg)
            self.recorder.event(pod, "Warning", "BackOff",
                                f"Back-off restarting failed container {c['name']} in pod "
                                f"{meta['name']}_{meta['namespace']}({meta['uid']})")
            return False
        self.crash_backoff.next(key, now)
        return self.start_container(pod, rec, c, attempt=status["metadata"]["attempt"] + 1)

    def ensure_image(self, pod: Obj, rec: PodRecord, c: Obj) -> bool:
        """The image manager's ``EnsureImageExists`` with its per-image back-off."""
        image, name = c["image"], c["name"]
        policy = c.get("imagePullPolicy", "IfNotPresent")
        if policy != "Always" and self.cri.image_status(image) is not None:
            self.images.add(normalize_image(image))
            self.recorder.event(pod, "Normal", "Pulled",
                                f'Container image "{image}" already present on machine')
            return True
        if policy == "Never":
            msg = (f'Container image "{image}" is not present with pull policy of Never')
            rec.waiting[name] = ("ErrImageNeverPull", msg)
            self.recorder.event(pod, "Warning", "ErrImageNeverPull", msg)
            return False
        key = f"{rec.uid}_{normalize_image(image)}"
        now = self.clock.now()
        if self.image_backoff.in_backoff_since_update(key, now):
            msg = f'Back-off pulling image "{image}"'
            rec.waiting[name] = ("ImagePullBackOff", msg)
            self.recorder.event(pod, "Normal", "BackOff", msg)
            self.recorder.event(pod, "Warning", "Failed", "Error: ImagePullBackOff")
            return False
        self.recorder.event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        try:
            self.cri.pull_image(image)
        except RPCError as err:
            self.image_backoff.next(key, now)
            msg = f'Failed to pull image "{image}": {err}'
            rec.waiting[name] = ("ErrImagePull", str(err))
            self.recorder.event(pod, "Warning", "Failed", msg)
            self.recorder.event(pod, "Warning", "Failed", "Error: ErrImagePull")
            return False
        self.images.add(normalize_image(image))
        self.recorder.event(pod, "Normal", "Pulled",
                            f'Successfully pulled image "{image}" in 0s (0s including waiting)')
        return True

    def container_config(self, pod: Obj, rec: PodRecord, c: Obj, attempt: int) -> Obj:
        """``generateContainerConfig``: command, env, mounts, ports, log path."""
        name = c["name"]
        mounts = []
        if not pod["spec"].get("hostNetwork"):
            mounts.append({"containerPath": "/etc/hosts", "readonly": False,
                           "hostPath": f"{pod_dir(self.root_dir, rec.uid)}/etc-hosts"})
        if rec.token_dir:
            mounts.append({"containerPath": TOKEN_DIR, "hostPath": rec.token_dir,
                           "readonly": True})
        for vm in c.get("volumeMounts") or []:
            mounted = rec.mounted.get(vm["name"])
            host = mounted[2] if mounted is not None else rec.projected.get(vm["name"])
            if host is not None:
                mounts.append({"containerPath": vm["mountPath"], "hostPath": host,
                               "readonly": bool(vm.get("readOnly"))})
        config: Obj = {"metadata": {"name": name, "attempt": attempt},
                       "image": {"image": c["image"]}, "command": c.get("command", []),
                       "args": c.get("args", []),
                       "envs": make_environment_variables(c, self.kubernetes_service, pod),
                       "mounts": mounts,
                       "ports": [p["containerPort"] for p in c.get("ports", [])],
                       "logPath": f"{name}/{attempt}.log"}
        # Stdin, StdinOnce and Tty from the container's spec (proto3: unset when false)
        for field, key in (("stdin", "stdin"), ("stdinOnce", "stdinOnce"), ("tty", "tty")):
            if c.get(field):
                config[key] = True
        return config

    def start_container(self, pod: Obj, rec: PodRecord, c: Obj, attempt: int) -> bool:
        """``startContainer``: image, CreateContainer, StartContainer, then its probes."""
        name = c["name"]
        if not self.ensure_image(pod, rec, c):
            return False
        try:
            cid = self.cri.create_container(rec.sandbox_id,
                                            self.container_config(pod, rec, c, attempt))
        except RPCError as err:
            rec.waiting[name] = ("CreateContainerError", str(err))
            self.recorder.event(pod, "Warning", "Failed", f"Error: {err}")
            return False
        self.recorder.event(pod, "Normal", "Created", f"Created container: {name}")
        try:
            self.cri.start_container(cid)
        except RPCError as err:
            rec.waiting[name] = ("RunContainerError", str(err))
            self.recorder.event(pod, "Warning", "Failed", f"Error: {err}")
            return False
        self.recorder.event(pod, "Normal", "Started", f"Started container {name}")
        old = rec.containers.get(name)
        if old is not None:
            rec.previous[name] = old
        rec.container_ids[name] = cid
        rec.attempts[name] = attempt
        rec.waiting.pop(name, None)
        for kind in ("readiness", "liveness"):
            probe = c.get(f"{kind}Probe")
            if probe:
                state = ProbeState(kind, name, probe, result=(kind == "liveness"))
                rec.probes[(kind, name)] = state
                self.prober.start(pod, rec, state, cid)
        return True

    # -- deletion --------------------------------------------------------------------------
    def _running_ids(self, rec: PodRecord) -> list[tuple[str, str]]:
        """(name, id) of the pod's newest containers not known (from the PLEG cache) to
        have exited."""
        out = []
        for name, cid in sorted(rec.container_ids.items()):
            status = rec.containers.get(name)
            if status is None or status["id"] != cid or status["state"] != CONTAINER_EXITED:
                out.append((name, cid))
        return out

    def kill_sandbox(self, rec: PodRecord) -> None:
        for _, cid in self._running_ids(rec):
            self.cri.stop_container(cid, 0)
        if rec.sandbox_id:
            self.cri.stop_pod_sandbox(rec.sandbox_id)

    def terminate(self, pod: Obj, rec: PodRecord) -> None:
        """A pod being deleted: stop containers (grace period), the sandbox, then delete."""
        meta = pod["metadata"]
        if not rec.terminated:
            grace = int(meta.get("deletionGracePeriodSeconds", 30))
            for name, cid in self._running_ids(rec):
                self.recorder.event(pod, "Normal", "Killing", f"Stopping container {name}")
                self.cri.stop_container(cid, grace)
            if rec.sandbox_id:
                self.cri.stop_pod_sandbox(rec.sandbox_id)
            self.volumes.unmount_volumes(rec)
            rec.terminated = True
            self.refresh(rec)
        self.status_manager.write(pod, rec)
        self.client.delete("pods", meta["name"], meta["namespace"], gracePeriodSeconds=0,
                           preconditions={"uid": meta["uid"]})

    def remove_pod(self, rec: PodRecord) -> None:
        """The pod is gone from the API: remove its containers and sandbox (the GC's job)."""
        self.records.pop(rec.key, None)
        self.prober.forget(rec)
        self.volumes.forget(rec)
        if rec.sandbox_id:
            try:
                for c in self.cri.list_containers():
                    if c["podSandboxId"] == rec.sandbox_id:
                        self.cri.remove_container(c["id"])
                self.cri.remove_pod_sandbox(rec.sandbox_id)
            except RPCError:
                pass  # the garbage collector tries again later

    # -- the pod cache ---------------------------------------------------------------------
    def refresh(self, rec: PodRecord) -> None:
        """``GetPodStatus``: the sandbox's and each newest container's status, via the CRI."""
        if rec.sandbox_id:
            try:
                rec.sandbox = self.cri.pod_sandbox_status(rec.sandbox_id)
            except RPCError as err:
                if err.code != "NotFound":
                    raise
        for name, cid in sorted(rec.container_ids.items()):
            try:
                rec.containers[name] = self.cri.container_status(cid)
            except RPCError as err:
                if err.code != "NotFound":
                    raise

