"""The disruption controller: it computes every PodDisruptionBudget's status.

Mirrors ``pkg/controller/disruption/disruption.go``: on every change to a PDB or to a pod it
selects, the controller recomputes the budget and writes it through the ``status``
subresource. ``expectedPods`` is the number of pods the budget covers (for an integer
``minAvailable`` the matching pods; for ``maxUnavailable`` or a percentage, the ``replicas``
of the controllers that own them, read from their scale), ``desiredHealthy`` the number that
must stay healthy, ``currentHealthy`` the matching pods that are Ready and not being deleted,
and ``disruptionsAllowed = max(0, currentHealthy - desiredHealthy)``. The condition
``DisruptionAllowed`` says ``SufficientPods`` or ``InsufficientPods``.

This is the number the eviction subresource of kube-apiserver reads and decrements; a budget
with ``disruptionsAllowed: 0`` makes it answer 429 TooManyRequests.

Simplified: owners are ReplicaSets only (no Deployments, StatefulSets, ReplicationControllers
or scale subresources of custom resources); ``disruptedPods`` entries are dropped as soon as
the pod is gone, not after ``DeletionTimeout`` (2 min); no ``unhealthyPodEvictionPolicy``.
"""

from __future__ import annotations

import math
from typing import Any

from k8sbook.api.selectors import selector_matches
from k8sbook.client.informer import (
    SharedIndexInformer,
    final_state,
)
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj, QueueController, controller_of, is_pod_ready

NAME = "disruption-controller"


def _scaled(value: int | str, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if isinstance(value, int):
        return value
    pct = int(value.rstrip("%"))
    x = pct * total / 100
    return math.ceil(x) if round_up else math.floor(x)


class DisruptionController(QueueController):
    def __init__(self, client: Client, pdb_informer: SharedIndexInformer,
                 pod_informer: SharedIndexInformer, rs_informer: SharedIndexInformer) -> None:
        super().__init__(client, "disruption", "controllermanager")
        self.pdb_informer = pdb_informer
        self.pod_informer = pod_informer
        self.rs_informer = rs_informer
        pdb_informer.add_event_handler(self.enqueue, lambda o, n: self.enqueue(n),
                                       lambda p: self.enqueue(final_state(p)))
        pod_informer.add_event_handler(self._pod_changed, lambda o, n: self._pod_changed(n),
                                       lambda p: self._pod_changed(final_state(p)))

    def _pod_changed(self, pod: Obj) -> None:
        for pdb in self.pdbs_for(pod):
            self.enqueue(pdb)

    def pdbs_for(self, pod: Obj) -> list[Obj]:
        ns = pod["metadata"].get("namespace", "")
        return [p for p in self.pdb_informer.indexer.by_index("namespace", ns)
                if p["spec"].get("selector") is not None
                and selector_matches(p["spec"]["selector"], pod["metadata"].get("labels"))]

    def pods_for(self, pdb: Obj) -> list[Obj]:
        ns = pdb["metadata"]["namespace"]
        return [p for p in self.pod_informer.indexer.by_index("namespace", ns)
                if selector_matches(pdb["spec"].get("selector"), p["metadata"].get("labels"))]

    def expected_scale(self, pods: list[Obj]) -> int:
        """``getExpectedScale``: the sum of the owning controllers' ``replicas``."""
        seen: dict[str, int] = {}
        for pod in pods:
            ref = controller_of(pod)
            if not ref or ref.get("kind") != "ReplicaSet":
                raise ValueError(f"found no controllers for pod \"{pod['metadata']['name']}\"")
            rs = self.rs_informer.get(f"{pod['metadata']['namespace']}/{ref['name']}")
            if rs is not None:
                seen[rs["metadata"]["uid"]] = rs["spec"].get("replicas", 1)
        return sum(seen.values())

    def compute(self, pdb: Obj, pods: list[Obj],
                disrupted: dict[str, str] | None = None) -> tuple[int, int, int]:
        """(expectedPods, desiredHealthy, currentHealthy); pods the apiserver has just
        evicted (``disruptedPods``) no longer count as healthy (``countHealthyPods``)."""
        spec = pdb["spec"]
        healthy = sum(1 for p in pods
                      if is_pod_ready(p) and not p["metadata"].get("deletionTimestamp")
                      and p["metadata"]["name"] not in (disrupted or {}))
        if "maxUnavailable" in spec:
            expected = self.expected_scale(pods)
            desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, True))
        elif isinstance(spec.get("minAvailable"), str):
            expected = self.expected_scale(pods)
            desired = _scaled(spec["minAvailable"], expected, True)
        else:
            expected = len(pods)
            desired = spec.get("minAvailable", 0)
        return expected, desired, healthy

    def sync(self, key: Any) -> None:
        pdb = self.pdb_informer.get(key)
        if pdb is None:
            return
        pods = self.pods_for(pdb)
        old = pdb.get("status") or {}
        live = {p["metadata"]["name"] for p in pods
                if not p["metadata"].get("deletionTimestamp")}
        disrupted = {k: v for k, v in (old.get("disruptedPods") or {}).items() if k in live}
        expected, desired, healthy = self.compute(pdb, pods, disrupted)
        allowed = max(0, healthy - desired)
        cond = {"type": "DisruptionAllowed", "status": "True" if allowed > 0 else "False",
                "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                "message": "", "observedGeneration": pdb["metadata"].get("generation", 1)}
        prev = next((c for c in old.get("conditions", []) if c["type"] == "DisruptionAllowed"),
                    None)
        cond["lastTransitionTime"] = prev["lastTransitionTime"] \
            if prev and prev["status"] == cond["status"] else self.client.clock.timestamp()
        status: Obj = {"observedGeneration": pdb["metadata"].get("generation", 1),
                       "expectedPods": expected, "desiredHealthy": desired,
                       "currentHealthy": healthy, "disruptionsAllowed": allowed,
                       "conditions": [cond]}
        if disrupted:
            status["disruptedPods"] = disrupted
        self.write_status(pdb, status)
