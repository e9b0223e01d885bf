"""The pod workers: one sync at a time per pod, with its next wake-up.

Mirrors ``pkg/kubelet/pod_workers.go`` and the pod config source's change filter
(``pkg/kubelet/config``, ``checkAndUpdatePod``), v1.35.0: an informer on ``pods`` with the
field selector ``spec.nodeName=<node>`` feeds a work queue; each pod is synced
(``SyncPod``, or ``SyncTerminatingPod`` once it has a ``deletionTimestamp``); a sync that
failed is retried after ``backOffPeriod`` with jitter 0.5, a good one after
``syncFrequency`` (1 min).

Simplified: the workers are one work queue with one pending wake-up per pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from k8sbook.client.network import DialError
from k8sbook.node.cri import RPCError
from k8sbook.node.kubelet.config import BACKOFF_PERIOD, SYNC_FREQUENCY

if TYPE_CHECKING:
    from k8sbook.node.kubelet.kubelet import Kubelet
    from k8sbook.node.kubelet.prober import ProbeState


@dataclass
class PodRecord:
    """What the kubelet knows about one pod: its pod cache entry plus sync bookkeeping."""

    uid: str
    key: str
    sandbox_id: str = ""
    sandbox_attempt: int = -1
    sandbox: dict[str, Any] | None = None
    #: container name -> id of its newest container, and that container's status (cache)
    container_ids: dict[str, str] = field(default_factory=dict)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    probes: dict[tuple[str, str], ProbeState] = field(default_factory=dict)
    start_time: str = ""
    last_status: dict[str, Any] | None = None
    terminated: bool = False
    sandbox_error: str = ""
    #: volume name -> (driver, volume handle, target path) of published CSI volumes
    mounted: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: the host directory of the pod's service-account token volume, once written
    token_dir: str = ""
    #: when a TokenRequest last failed because the ServiceAccount does not exist
    token_missing_at: float | None = None


class PodWorkers:
    def __init__(self, kubelet: Kubelet) -> None:
        self.k = kubelet
        self.timers: dict[str, Any] = {}

    def on_pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """The pod config source passes on only changes that matter to the kubelet
        (``checkAndUpdatePod``): spec, labels, annotations, deletion; not status writes."""
        def relevant(p: dict[str, Any]) -> tuple[Any, ...]:
            m = p["metadata"]
            return (p.get("spec"), m.get("labels"), m.get("annotations"),
                    m.get("deletionTimestamp"), m.get("deletionGracePeriodSeconds"), m["uid"])
        if relevant(old) != relevant(new):
            self.enqueue(new)

    def enqueue(self, pod: dict[str, Any] | None) -> None:
        if pod is None:
            return
        meta = pod["metadata"]
        self.k.queue.add(f"{meta['namespace']}/{meta['name']}")

    def requeue(self, key: str, delay: float) -> None:
        """One wake-up time per pod: a new one replaces the old (``workQueue.Enqueue``)."""
        k = self.k
        old = self.timers.pop(key, None)
        if old is not None:
            old.cancel()
        self.timers[key] = k.clock.call_later(
            delay, lambda: k.queue.add(key), f"{k.instance} pod worker {key}")

    def jittered_backoff(self) -> float:
        """``wait.Jitter(backOffPeriod, 0.5)``."""
        return BACKOFF_PERIOD * (1 + 0.5 * self.k.rand.random())

    def stop(self) -> None:
        for t in self.timers.values():
            t.cancel()
        self.timers.clear()

    def sync(self, key: Any) -> None:
        k = self.k
        if not k.running:
            return
        pod = k.pod_informer.get(key)
        rec = k.records.get(key)
        if pod is None:
            if rec is not None:
                k.runtime_manager.remove_pod(rec)
            return
        uid = pod["metadata"]["uid"]
        if rec is None or rec.uid != uid:
            if rec is not None:
                k.runtime_manager.remove_pod(rec)
            rec = k.records[key] = PodRecord(uid, key, start_time=k.clock.timestamp())
        try:
            if pod["metadata"].get("deletionTimestamp"):
                k.runtime_manager.terminate(pod, rec)
                return
            if rec.terminated or pod["status"].get("phase") in ("Succeeded", "Failed"):
                return
            failed = k.runtime_manager.sync_pod(pod, rec)
            k.status_manager.write(pod, rec)
        except (DialError, RPCError):
            failed = True
        self.requeue(key, self.jittered_backoff() if failed else SYNC_FREQUENCY)
