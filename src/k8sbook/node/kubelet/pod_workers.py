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

from collections.abc import Callable
from random import Random
from typing import TYPE_CHECKING, Any

from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.network import DialError
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.core.clock import Clock
from k8sbook.node.cri import RPCError
from k8sbook.node.kubelet.config import BACKOFF_PERIOD, SYNC_FREQUENCY
from k8sbook.node.kubelet.types import PodRecord

if TYPE_CHECKING:
    from k8sbook.node.kubelet.kuberuntime import RuntimeManager
    from k8sbook.node.kubelet.status_manager import StatusManager

__all__ = ["PodRecord", "PodWorkers"]


class PodWorkers:
    """``podWorkers``: it receives what it uses (upstream, ``newPodWorkers`` gets the
    kubelet as its ``podSyncer``; here the syncer is the runtime manager plus the status
    manager, and ``running`` says whether the kubelet process still runs)."""

    def __init__(self, *, clock: Clock, queue: RateLimitingQueue, instance: str,
                 rand: Random, pod_informer: SharedIndexInformer,
                 records: dict[str, PodRecord], runtime_manager: RuntimeManager,
                 status_manager: StatusManager, running: Callable[[], bool]) -> None:
        self.clock = clock
        self.queue = queue
        self.instance = instance
        self.rand = rand
        self.pod_informer = pod_informer
        self.records = records
        self.runtime_manager = runtime_manager
        self.status_manager = status_manager
        self.running = running
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
        self.queue.add(f"{meta['namespace']}/{meta['name']}")

    def requeue(self, key: str, delay: float) -> None:
        """One wake-up time per pod: a new one replaces the old (``workQueue.Enqueue``)."""
        old = self.timers.pop(key, None)
        if old is not None:
            old.cancel()
        self.timers[key] = self.clock.call_later(
            delay, lambda: self.queue.add(key), f"{self.instance} pod worker {key}")

    def jittered_backoff(self) -> float:
        """``wait.Jitter(backOffPeriod, 0.5)``."""
        return BACKOFF_PERIOD * (1 + 0.5 * self.rand.random())

    def stop(self) -> None:
        for t in self.timers.values():
            t.cancel()
        self.timers.clear()

    def sync(self, key: Any) -> None:
        if not self.running():
            return
        pod = self.pod_informer.get(key)
        rec = self.records.get(key)
        if pod is None:
            if rec is not None:
                self.runtime_manager.remove_pod(rec)
            return
        uid = pod["metadata"]["uid"]
        if rec is None or rec.uid != uid:
            if rec is not None:
                self.runtime_manager.remove_pod(rec)
            rec = self.records[key] = PodRecord(uid, key, start_time=self.clock.timestamp())
        try:
            if pod["metadata"].get("deletionTimestamp"):
                self.runtime_manager.terminate(pod, rec)
                return
            if rec.terminated or pod["status"].get("phase") in ("Succeeded", "Failed"):
                return
            failed = self.runtime_manager.sync_pod(pod, rec)
            self.status_manager.write(pod, rec)
        except (DialError, RPCError):
            failed = True
        self.requeue(key, self.jittered_backoff() if failed else SYNC_FREQUENCY)
