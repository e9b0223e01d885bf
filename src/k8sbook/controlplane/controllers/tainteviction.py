"""The taint eviction controller: pods leave a node with a NoExecute taint they do not tolerate.

Mirrors ``pkg/controller/tainteviction`` (:class:`TaintEvictionController`), run by
kube-controller-manager with the ``node-controller`` service account (it reuses that role, as
``startTaintEvictionController`` says). A pod on a node with a ``NoExecute`` taint it does not
tolerate is deleted at once; one that tolerates it for ``tolerationSeconds`` (the
DefaultTolerationSeconds admission plugin gives every pod 300 s for ``unreachable`` and
``not-ready``) is deleted when that time has passed, after a ``DisruptionTarget`` condition is
added to its status. The taints come from the node lifecycle controller
(:mod:`k8sbook.controlplane.controllers.node_lifecycle`), which rate-limits them per zone.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api.taints import NO_EXECUTE, matching_tolerations
from k8sbook.client.events import EventRecorder
from k8sbook.client.informer import SharedIndexInformer, final_state
from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import (
    Obj,
    add_pod_node_name_indexer,
    pods_assigned_to_node,
)
from k8sbook.core.clock import Timer
from k8sbook.core.status import StatusError


class TaintEvictionController:
    """Delete pods from nodes with NoExecute taints, after their tolerationSeconds."""

    def __init__(self, client: Client, nodes: SharedIndexInformer,
                 pods: SharedIndexInformer) -> None:
        self.client = client
        self.nodes = nodes
        self.pods = pods
        add_pod_node_name_indexer(pods.indexer)
        self.clock = client.clock
        self.recorder = EventRecorder(client, "taint-eviction-controller")
        #: pod key -> (created at, timer) of scheduled deletions
        self.scheduled: dict[str, tuple[float, Timer]] = {}
        #: pods already deleted: TimedWorkerQueue keeps a finished key (``workers[key] = nil``)
        #: "to prevent subsequent additions", until the pod is gone or the work is cancelled
        self.done: set[str] = set()
        self.log: list[tuple[float, str, str]] = []

    def run(self) -> None:
        self.nodes.add_event_handler(on_add=self._node_changed,
                                     on_update=lambda old, new: self._node_changed(new))
        self.pods.add_event_handler(on_add=self._pod_changed,
                                    on_update=lambda old, new: self._pod_changed(new),
                                    on_delete=self._pod_deleted)

    def stop(self) -> None:
        for _, timer in self.scheduled.values():
            timer.cancel()
        self.scheduled.clear()

    def _node_changed(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        for pod in pods_assigned_to_node(self.pods.indexer, name):
            self._process(pod, node)

    def _pod_changed(self, pod: Obj) -> None:
        node = self.nodes.get(pod.get("spec", {}).get("nodeName", ""))
        if node is not None:
            self._process(pod, node)

    def _pod_deleted(self, pod: Any) -> None:
        pod = final_state(pod)
        self._cancel(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")

    def _cancel(self, key: str) -> None:
        self.done.discard(key)
        entry = self.scheduled.pop(key, None)
        if entry:
            entry[1].cancel()

    def _process(self, pod: Obj, node: Obj) -> None:
        """``processPodOnNode``."""
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        if pod["metadata"].get("deletionTimestamp"):
            return
        taints = [t for t in node.get("spec", {}).get("taints", []) or []
                  if t.get("effect") == NO_EXECUTE]
        if not taints:
            self._cancel(key)
            return
        seconds: list[float] = []
        for taint in taints:
            tol = next(iter(matching_tolerations(pod, taint)), None)
            if tol is None:
                seconds = [0.0]
                break
            if tol.get("tolerationSeconds") is not None:
                seconds.append(max(float(tol["tolerationSeconds"]), 0.0))
        if not seconds:
            self._cancel(key)
            return  # tolerated forever
        if key in self.done:
            return  # AddWork: "Trying to add already existing work, skipping"
        now = self.clock.now()
        start = self.scheduled[key][0] if key in self.scheduled else now
        trigger = start + min(seconds)
        if key in self.scheduled:
            self._cancel(key)
        timer = self.clock.call_at(trigger, lambda: self._evict(key), "taint eviction")
        self.scheduled[key] = (start, timer)

    def _evict(self, key: str) -> None:
        self.scheduled.pop(key, None)
        pod = self.pods.get(key)
        if pod is None:
            return
        ns, name = key.split("/", 1)
        self.recorder.event(pod, "Normal", "TaintManagerEviction",
                            f"Marking for deletion Pod {key}")
        try:
            updated = copy.deepcopy(pod)
            conds = [c for c in updated["status"].get("conditions", [])
                     if c["type"] != "DisruptionTarget"]
            conds.append({"type": "DisruptionTarget", "status": "True",
                          "lastTransitionTime": self.clock.timestamp(),
                          "reason": "DeletionByTaintManager",
                          "message": "Taint manager: deleting due to NoExecute taint"})
            updated["status"]["conditions"] = conds
            self.client.update_status(updated)
            self.client.delete("pods", name, ns)
            self.done.add(key)
            self.log.append((self.clock.now(), key, "deleted"))
        except (StatusError, DialError):
            pass

