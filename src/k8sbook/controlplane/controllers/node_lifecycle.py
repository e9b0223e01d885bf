"""What the control plane does when a node goes quiet: node lifecycle and taint eviction.

Mirrors two controllers of kube-controller-manager, both running with the ``node-controller``
service account (the taint eviction controller reuses its role, as ``startTaintEvictionController``
says):

* ``pkg/controller/nodelifecycle`` (:class:`NodeLifecycleController`). Every
  ``--node-monitor-period`` (5 s) it looks at each Node and at its Lease in
  ``kube-node-lease``. It remembers when it last saw either change (the *probe timestamp*); if
  that is longer ago than ``--node-monitor-grace-period`` (50 s since v1.32, 40 s before) it
  sets the Node's conditions to ``Unknown`` (reason ``NodeStatusUnknown``, "Kubelet stopped
  posting node status."), marks the node's pods not Ready, records a ``NodeNotReady`` event,
  and taints the Node ``node.kubernetes.io/unreachable`` with effects ``NoSchedule`` and
  ``NoExecute`` (``not-ready`` when the kubelet itself reports Ready=False). When the node
  reports again the taints are removed.
* ``pkg/controller/tainteviction`` (:class:`TaintEvictionController`): a pod on a node with a
  ``NoExecute`` taint it does not tolerate is deleted at once; one that tolerates it for
  ``tolerationSeconds`` (the DefaultTolerationSeconds admission plugin gives every pod 300 s
  for ``unreachable`` and ``not-ready``) is deleted when that time has passed, after a
  ``DisruptionTarget`` condition is added to its status.

Simplified: one zone, so no zone states and no eviction rate limiting (the real controller
taints at most ``--node-eviction-rate`` 0.1 nodes per second in a healthy zone, which for one
node means at once); the ``NoSchedule`` taint is added in the same pass as the ``NoExecute``
one; no node startup grace period (60 s) for nodes that never reported.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api.taints import NO_EXECUTE, matching_tolerations
from k8sbook.client.events import EventRecorder
from k8sbook.client.informer import SharedIndexInformer, final_state
from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj
from k8sbook.core.clock import Timer
from k8sbook.core.status import StatusError

NAME = "node-controller"
NODE_MONITOR_PERIOD = 5.0
#: ``--node-monitor-grace-period``: 50 s since v1.32 (kubernetes/kubernetes#126287)
NODE_MONITOR_GRACE_PERIOD = 50.0
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
NODE_LEASE_NAMESPACE = "kube-node-lease"
UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def ready_condition(node: Obj) -> Obj | None:
    return next((c for c in node.get("status", {}).get("conditions", []) or []
                 if c.get("type") == "Ready"), None)


class NodeLifecycleController:
    """Watch Nodes and their Leases; mark silent nodes Unknown and taint them."""

    def __init__(self, client: Client, nodes: SharedIndexInformer, pods: SharedIndexInformer,
                 leases: SharedIndexInformer, *,
                 grace_period: float = NODE_MONITOR_GRACE_PERIOD,
                 monitor_period: float = NODE_MONITOR_PERIOD) -> None:
        self.client = client
        self.nodes = nodes
        self.pods = pods
        self.leases = leases
        self.grace_period = grace_period
        self.monitor_period = monitor_period
        self.clock = client.clock
        self.recorder = EventRecorder(client, "node-controller")
        #: node -> (probe timestamp, last Ready heartbeat seen, last lease renewTime seen)
        self.health: dict[str, tuple[float, str, str]] = {}
        #: (time, node, what) for the chapter's timeline
        self.log: list[tuple[float, str, str]] = []
        self._timer: Timer | None = None
        self._stopped = False

    def run(self) -> None:
        self._timer = self.clock.call_later(self.monitor_period, self._tick, "node monitor")

    def stop(self) -> None:
        self._stopped = True
        if self._timer:
            self._timer.cancel()

    def _tick(self) -> None:
        if self._stopped:
            return
        try:
            self.monitor_node_health()
        except (StatusError, DialError):
            pass  # retried at the next period
        self._timer = self.clock.call_later(self.monitor_period, self._tick, "node monitor")

    def monitor_node_health(self) -> None:
        now = self.clock.now()
        for node in self.nodes.lister():
            name = node["metadata"]["name"]
            ready = ready_condition(node)
            heartbeat = (ready or {}).get("lastHeartbeatTime", "")
            lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}")
            renew = (lease or {}).get("spec", {}).get("renewTime", "")
            probe, seen_hb, seen_renew = self.health.get(name, (now, heartbeat, renew))
            if heartbeat != seen_hb or renew != seen_renew:
                probe = now  # the kubelet showed a sign of life since we last looked
            self.health[name] = (probe, heartbeat, renew)
            if ready is not None and ready.get("status") != "Unknown" and \
                    now > probe + self.grace_period:
                self._mark_unknown(node)
                continue
            self._reconcile_taints(node)

    def _mark_unknown(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        updated = copy.deepcopy(node)
        stamp = self.clock.timestamp()
        for c in updated["status"].get("conditions", []):
            if c["type"] in UNKNOWN_CONDITIONS and c["status"] != "Unknown":
                c.update(status="Unknown", reason="NodeStatusUnknown",
                         message="Kubelet stopped posting node status.",
                         lastTransitionTime=stamp)
        written = self.client.update_status(updated)
        self.log.append((self.clock.now(), name, "Ready=Unknown"))
        self.recorder.event(node, "Normal", "NodeNotReady",
                            f"Node {name} status is now: NodeNotReady")
        self._mark_pods_not_ready(name)
        self._reconcile_taints(written)

    def _mark_pods_not_ready(self, node: str) -> None:
        """``MarkPodsNotReady``: set the Ready condition of the node's pods to False."""
        for pod in self.pods.lister():
            if pod.get("spec", {}).get("nodeName") != node:
                continue
            updated = copy.deepcopy(pod)
            changed = False
            for c in updated.get("status", {}).get("conditions", []):
                if c["type"] == "Ready" and c["status"] != "False":
                    c["status"], c["lastTransitionTime"] = "False", self.clock.timestamp()
                    changed = True
            if changed:
                try:
                    self.client.update_status(updated)
                except StatusError:
                    continue

    def _reconcile_taints(self, node: Obj) -> None:
        """``doNoScheduleTaintingPass`` + ``doNoExecuteTaintingPass`` for one node."""
        ready = ready_condition(node)
        status = (ready or {}).get("status", "True")
        want_key = {"Unknown": TAINT_UNREACHABLE, "False": TAINT_NOT_READY}.get(status)
        taints = node.get("spec", {}).get("taints", []) or []
        keep = [t for t in taints if t.get("key") not in (TAINT_UNREACHABLE, TAINT_NOT_READY)]
        ours = [t for t in taints if t.get("key") in (TAINT_UNREACHABLE, TAINT_NOT_READY)]
        if want_key is None:
            wanted: list[Obj] = []
        else:
            old = {(t["key"], t["effect"]): t for t in ours}
            wanted = [old.get((want_key, "NoSchedule"),
                              {"key": want_key, "effect": "NoSchedule"}),
                      old.get((want_key, "NoExecute"),
                              {"key": want_key, "effect": "NoExecute",
                               "timeAdded": self.clock.timestamp()})]
        if sorted(map(str, wanted)) == sorted(map(str, ours)):
            return
        name = node["metadata"]["name"]
        self.client.patch("nodes", name, {"metadata": {"resourceVersion":
                                                       node["metadata"]["resourceVersion"]},
                                          "spec": {"taints": keep + wanted}})
        what = f"taint {want_key}" if want_key else "taints removed"
        self.log.append((self.clock.now(), name, what))


class TaintEvictionController:
    """Delete pods from nodes with NoExecute taints, after their tolerationSeconds."""

    def __init__(self, client: Client, nodes: SharedIndexInformer,
                 pods: SharedIndexInformer) -> None:
        self.client = client
        self.nodes = nodes
        self.pods = pods
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
        for pod in self.pods.lister():
            if pod.get("spec", {}).get("nodeName") == name:
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

