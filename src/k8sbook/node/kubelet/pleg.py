"""The pod lifecycle event generator: how the kubelet notices what happened in the runtime.

Mirrors ``pkg/kubelet/pleg/generic.go`` (v1.35.0): every second (``relistPeriod``) the kubelet
relists sandboxes and containers over the CRI (``ListPodSandbox``, ``ListContainers``),
compares their states with the previous relist, and for every pod with a change (a container
started or died) refreshes its entry in the pod cache (``GetPodStatus``) and wakes its worker.
No CRI call tells the kubelet that a container died: it finds out here.
"""

from __future__ import annotations

from collections.abc import Callable

from k8sbook.node.cri import CRIClient
from k8sbook.node.kubelet.types import PodRecord


class GenericPLEG:
    """``GenericPLEG``: like ``NewGenericPLEG(runtime, eventChannel, ..., cache, clock)`` it
    receives the runtime (the CRI client), the pod records whose cache entries it refreshes
    (``refresh``, the runtime manager's ``GetPodStatus``) and ``wake`` (its event channel:
    the pod's worker runs)."""

    def __init__(self, *, cri: CRIClient, records: dict[str, PodRecord],
                 refresh: Callable[[PodRecord], None], wake: Callable[[str], None]) -> None:
        self.cri = cri
        self.records = records
        self.refresh = refresh
        self.wake = wake
        #: sandbox/container id -> state at the last relist
        self.relisted: dict[str, str] = {}

    def relist(self) -> None:
        sandboxes = self.cri.list_pod_sandbox()
        containers = self.cri.list_containers()
        now_state = {s["id"]: s["state"] for s in sandboxes}
        now_state.update({c["id"]: c["state"] for c in containers})
        owner = {s["id"]: s["metadata"]["uid"] for s in sandboxes}
        for c in containers:
            owner[c["id"]] = owner.get(c["podSandboxId"], "")
        changed = {owner.get(i, "") for i in set(now_state) | set(self.relisted)
                   if now_state.get(i) != self.relisted.get(i)}
        self.relisted = now_state
        if not changed:
            return  # nothing moved since the last relist: no pod to refresh or wake
        for rec in sorted(self.records.values(), key=lambda r: r.key):
            if rec.uid in changed:
                self.refresh(rec)
                self.wake(rec.key)
