"""What the control plane does when a node goes quiet: the node lifecycle controller.

Mirrors ``pkg/controller/nodelifecycle`` (:class:`NodeLifecycleController`), run by
kube-controller-manager as the ``node-controller`` service account. Every
``--node-monitor-period`` (5 s) it looks at each Node and its Lease in ``kube-node-lease``,
remembering when either last changed (the *probe timestamp*); after
``--node-monitor-grace-period`` (50 s since v1.32, 40 s before) of silence it sets the Node's
conditions to ``Unknown`` (reason ``NodeStatusUnknown``, "Kubelet stopped posting node
status."), marks its pods not Ready, records ``NodeNotReady``, and taints the Node
``node.kubernetes.io/unreachable`` (``not-ready`` when the kubelet reports Ready=False):
``NoSchedule`` at once, ``NoExecute`` through its zone's rate limiter. A Ready node loses them.

Nodes are grouped into zones by their ``topology.kubernetes.io/region`` and ``zone`` labels
(``GetZoneKey``; without them, the zone ``""``). Each zone has a state (``ComputeZoneState``:
``Initial``, ``Normal``, ``PartialDisruption`` when more than two nodes and at least
``--unhealthy-zone-threshold`` 0.55 of them are not Ready, ``FullDisruption`` when none is)
and a token bucket (burst 1) on the ``NoExecute`` taint: ``--node-eviction-rate`` 0.1/s when
Normal or fully disrupted, ``--secondary-node-eviction-rate`` 0.01/s when partially
disrupted, 0 in a partially disrupted zone of at most ``--large-cluster-size-threshold`` 50
nodes. When every zone is fully disrupted ("master disruption mode") it removes the NoExecute
taints and stops tainting: it assumes it, not the nodes, lost the network. Since taint-based
eviction the limit is on *tainting*; the pods are deleted by the taint eviction controller
(:mod:`k8sbook.controlplane.controllers.tainteviction`), each after its ``tolerationSeconds``.

Simplified: the NoExecute tainting pass runs every 100 ms (``NodeEvictionPeriod``) and also
right after each monitor pass, so a node whose zone has a token is tainted in the same instant
it is marked Unknown (upstream: within 100 ms); taints are written with a PATCH on the
informer's or the last-written resourceVersion, without the GET ``AddOrUpdateTaintOnNode``
makes first; no node startup grace period (60 s) for nodes that never reported.
"""

from __future__ import annotations

import copy

from k8sbook.api.taints import NO_EXECUTE
from k8sbook.client.events import EventRecorder
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj, add_pod_node_name_indexer, pods_assigned_to_node
from k8sbook.controlplane.controllers.rate_limited_queue import RateLimitedTimedQueue
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
#: ``--node-eviction-rate``: NoExecute taints per second in a healthy (or fully failed) zone
NODE_EVICTION_RATE = 0.1
#: ``--secondary-node-eviction-rate``: per second in a partially failed large zone
SECONDARY_NODE_EVICTION_RATE = 0.01
#: ``--unhealthy-zone-threshold``: the share of not-Ready nodes that makes a zone unhealthy
UNHEALTHY_ZONE_THRESHOLD = 0.55
#: ``--large-cluster-size-threshold``: a zone of at most this many nodes stops evicting when
#: it is unhealthy (its secondary rate is 0)
LARGE_CLUSTER_SIZE_THRESHOLD = 50
#: ``scheduler.NodeEvictionPeriod``: how often the NoExecute tainting pass runs
NODE_EVICTION_PERIOD = 0.1
#: zone states (``ZoneState``)
INITIAL, NORMAL = "Initial", "Normal"
PARTIAL_DISRUPTION, FULL_DISRUPTION = "PartialDisruption", "FullDisruption"
LABEL_ZONE, LABEL_REGION = "topology.kubernetes.io/zone", "topology.kubernetes.io/region"
LABEL_BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
LABEL_BETA_REGION = "failure-domain.beta.kubernetes.io/region"


def ready_condition(node: Obj) -> Obj | None:
    return next((c for c in node.get("status", {}).get("conditions", []) or []
                 if c.get("type") == "Ready"), None)


def zone_key(node: Obj) -> str:
    """``utilnode.GetZoneKey``: ``region + ":\\x00:" + zone`` from the Node's topology labels
    (the deprecated ``failure-domain.beta`` labels win when present), ``""`` without either."""
    labels = node.get("metadata", {}).get("labels") or {}
    zone = labels.get(LABEL_BETA_ZONE, labels.get(LABEL_ZONE, ""))
    region = labels.get(LABEL_BETA_REGION, labels.get(LABEL_REGION, ""))
    if not region and not zone:
        return ""
    return f"{region}:\x00:{zone}"


def zone_name(key: str) -> str:
    """The zone part of a :func:`zone_key`, for printing."""
    return key.rpartition(":\x00:")[2]


def compute_zone_state(ready_statuses: list[str | None],
                       unhealthy_zone_threshold: float = UNHEALTHY_ZONE_THRESHOLD) -> \
        tuple[int, str]:
    """``ComputeZoneState``: (not-ready nodes, state). No Ready node at all is
    ``FullDisruption``; more than two not-ready nodes that are at least
    ``--unhealthy-zone-threshold`` of the zone is ``PartialDisruption``; else ``Normal``."""
    ready = sum(1 for s in ready_statuses if s == "True")
    not_ready = len(ready_statuses) - ready
    if ready == 0 and not_ready > 0:
        return not_ready, FULL_DISRUPTION
    if not_ready > 2 and not_ready / (not_ready + ready) >= unhealthy_zone_threshold:
        return not_ready, PARTIAL_DISRUPTION
    return not_ready, NORMAL


class NodeLifecycleController:
    """Watch Nodes and their Leases; mark silent nodes Unknown and taint them, the
    ``NoExecute`` taint at most as fast as each zone's rate limiter allows."""

    def __init__(self, client: Client, nodes: SharedIndexInformer, pods: SharedIndexInformer,
                 leases: SharedIndexInformer, *,
                 grace_period: float = NODE_MONITOR_GRACE_PERIOD,
                 monitor_period: float = NODE_MONITOR_PERIOD,
                 eviction_rate: float = NODE_EVICTION_RATE,
                 secondary_eviction_rate: float = SECONDARY_NODE_EVICTION_RATE,
                 unhealthy_zone_threshold: float = UNHEALTHY_ZONE_THRESHOLD,
                 large_cluster_threshold: int = LARGE_CLUSTER_SIZE_THRESHOLD) -> None:
        self.client = client
        self.nodes = nodes
        self.pods = pods
        add_pod_node_name_indexer(pods.indexer)  # ``getPodsAssignedToNode``
        self.leases = leases
        self.grace_period = grace_period
        self.monitor_period = monitor_period
        self.eviction_rate = eviction_rate
        self.secondary_eviction_rate = secondary_eviction_rate
        self.unhealthy_zone_threshold = unhealthy_zone_threshold
        self.large_cluster_threshold = large_cluster_threshold
        self.clock = client.clock
        self.recorder = EventRecorder(client, "node-controller")
        #: node -> (probe timestamp, last Ready heartbeat seen, last lease renewTime seen)
        self.health: dict[str, tuple[float, str, str]] = {}
        #: zone key -> state (``zoneStates``) and its NoExecute queue (``zoneNoExecuteTainter``)
        self.zone_states: dict[str, str] = {}
        self.zone_tainter: dict[str, RateLimitedTimedQueue] = {}
        #: nodes this controller wrote, newer than its informer may be yet
        self._written: dict[str, Obj] = {}
        #: (time, node, what) for the chapter's timeline
        self.log: list[tuple[float, str, str]] = []
        #: (time, zone, new state, eviction rate), each change of a zone's state
        self.zone_log: list[tuple[float, str, str, float]] = []
        self._timer: Timer | None = None
        self._taint_timer: Timer | None = None
        self._stopped = False

    def run(self) -> None:
        self._timer = self.clock.call_later(self.monitor_period, self._tick, "node monitor")
        self._taint_timer = self.clock.call_later(NODE_EVICTION_PERIOD, self._taint_tick,
                                                  "NoExecute tainting pass")

    def stop(self) -> None:
        self._stopped = True
        for timer in (self._timer, self._taint_timer):
            if timer:
                timer.cancel()

    def _tick(self) -> None:
        if self._stopped:
            return
        try:
            self.monitor_node_health()
        except (StatusError, DialError):
            pass  # retried at the next period
        self._timer = self.clock.call_later(self.monitor_period, self._tick, "node monitor")

    def _taint_tick(self) -> None:
        if self._stopped:
            return
        self.do_no_execute_tainting_pass()
        self._taint_timer = self.clock.call_later(NODE_EVICTION_PERIOD, self._taint_tick,
                                                  "NoExecute tainting pass")

    def _node(self, name: str) -> Obj | None:
        """The newest copy of a Node: the informer's, or the one this controller just wrote."""
        cached, written = self.nodes.get(name), self._written.get(name)
        if written is None:
            return cached
        if cached is None or int(cached["metadata"]["resourceVersion"]) < \
                int(written["metadata"]["resourceVersion"]):
            return written
        del self._written[name]
        return cached

    def _add_zone(self, zone: str) -> None:
        """``addPodEvictorForNewZone``: state Initial, a token bucket at the eviction rate."""
        if zone not in self.zone_states:
            self.zone_states[zone] = INITIAL
            self.zone_tainter[zone] = RateLimitedTimedQueue(self.eviction_rate, self.clock.now)

    def monitor_node_health(self) -> None:
        now = self.clock.now()
        zone_conditions: dict[str, list[str | None]] = {}
        nodes = sorted(self.nodes.lister(), key=lambda n: n["metadata"]["name"])
        for listed in nodes:
            name = listed["metadata"]["name"]
            node = self._node(name) or listed
            zone = zone_key(node)
            self._add_zone(zone)
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
                node = self._mark_unknown(node)
                ready = ready_condition(node)
            node = self._no_schedule_pass(node)
            if ready is not None:
                node = self._process_taint_based_eviction(node, ready.get("status", ""))
            zone_conditions.setdefault(zone, []).append((ready or {}).get("status"))
        self.handle_disruption(zone_conditions, nodes)
        self.do_no_execute_tainting_pass()

    def _mark_unknown(self, node: Obj) -> Obj:
        name = node["metadata"]["name"]
        updated = copy.deepcopy(node)
        stamp = self.clock.timestamp()
        for c in updated["status"].get("conditions", []):
            if c["type"] in UNKNOWN_CONDITIONS and c["status"] != "Unknown":
                c.update(status="Unknown", reason="NodeStatusUnknown",
                         message="Kubelet stopped posting node status.",
                         lastTransitionTime=stamp)
        written = self.client.update_status(updated)
        self._written[name] = written
        self.log.append((self.clock.now(), name, "Ready=Unknown"))
        self.recorder.event(node, "Normal", "NodeNotReady",
                            f"Node {name} status is now: NodeNotReady")
        self._mark_pods_not_ready(name)
        return written

    def _mark_pods_not_ready(self, node: str) -> None:
        """``MarkPodsNotReady``: set the Ready condition of the node's pods to False."""
        for pod in pods_assigned_to_node(self.pods.indexer, node):
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

    def _set_taints(self, node: Obj, taints: list[Obj], what: str) -> Obj:
        name = node["metadata"]["name"]
        written = self.client.patch("nodes", name, {
            "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
            "spec": {"taints": taints}})
        self._written[name] = written
        if what:
            self.log.append((self.clock.now(), name, what))
        return written

    def _no_schedule_pass(self, node: Obj) -> Obj:
        """``doNoScheduleTaintingPass``: the ``NoSchedule`` taint follows the Ready
        condition at once (``unreachable`` for Unknown, ``not-ready`` for False)."""
        status = (ready_condition(node) or {}).get("status", "True")
        want = {"Unknown": TAINT_UNREACHABLE, "False": TAINT_NOT_READY}.get(status)
        taints = node.get("spec", {}).get("taints", []) or []
        ours = [t for t in taints if t.get("effect") == "NoSchedule"
                and t.get("key") in (TAINT_UNREACHABLE, TAINT_NOT_READY)]
        if [t["key"] for t in ours] == ([want] if want else []):
            return node
        keep = [t for t in taints if t not in ours]
        wanted = [{"key": want, "effect": "NoSchedule"}] if want else []
        return self._set_taints(node, keep + wanted, "")

    def _no_execute(self, node: Obj) -> list[Obj]:
        return [t for t in node.get("spec", {}).get("taints", []) or []
                if t.get("effect") == NO_EXECUTE
                and t.get("key") in (TAINT_UNREACHABLE, TAINT_NOT_READY)]

    def _swap_no_execute(self, node: Obj, key: str | None) -> Obj:
        """``SwapNodeControllerTaint``: our NoExecute taint becomes ``key`` (or goes)."""
        taints = node.get("spec", {}).get("taints", []) or []
        keep = [t for t in taints if t not in self._no_execute(node)]
        if key is None:
            return self._set_taints(node, keep, "taints removed")
        added = {"key": key, "effect": NO_EXECUTE, "timeAdded": self.clock.timestamp()}
        return self._set_taints(node, keep + [added], f"taint {key}")

    def _process_taint_based_eviction(self, node: Obj, status: str) -> Obj:
        """``processTaintBaseEviction``: a node Ready=False or Unknown is queued in its zone
        for the ``NoExecute`` taint (swapped at once if it carries the opposite one); a Ready
        node loses the taint and leaves the queue (``markNodeAsReachable``)."""
        name, zone = node["metadata"]["name"], zone_key(node)
        have = [t["key"] for t in self._no_execute(node)]
        if status in ("False", "Unknown"):
            want = TAINT_NOT_READY if status == "False" else TAINT_UNREACHABLE
            other = TAINT_UNREACHABLE if status == "False" else TAINT_NOT_READY
            if other in have:
                return self._swap_no_execute(node, want)
            if want not in have:
                self.zone_tainter[zone].remove(name)
            self.zone_tainter[zone].add(name)
            return node
        if status == "True":
            return self._mark_node_as_reachable(node)
        return node

    def _mark_node_as_reachable(self, node: Obj) -> Obj:
        """``markNodeAsReachable``: remove the NoExecute taints, and the node from its queue."""
        if self._no_execute(node):
            node = self._swap_no_execute(node, None)
        self.zone_tainter[zone_key(node)].remove(node["metadata"]["name"])
        return node

    def do_no_execute_tainting_pass(self) -> None:
        """``doNoExecuteTaintingPass`` (every 100 ms): in each zone, taint the queued nodes
        ``NoExecute`` as fast as the zone's limiter allows."""
        for zone in sorted(self.zone_tainter):
            self.zone_tainter[zone].try_process(self._taint_one)

    def _taint_one(self, name: str) -> tuple[bool, float]:
        node = self._node(name)
        if node is None:
            return True, 0.0
        status = (ready_condition(node) or {}).get("status")
        want = {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE}.get(status or "")
        if want is None:
            return True, 0.0  # Ready again: no need to taint it
        if [t["key"] for t in self._no_execute(node)] == [want]:
            return True, 0.0
        try:
            self._swap_no_execute(node, want)
        except (StatusError, DialError):
            return False, 0.0
        return True, 0.0

    # -- zones ------------------------------------------------------------------------
    def reduced_qps(self, zone_size: int) -> float:
        """``ReducedQPSFunc``: the secondary rate in a zone of more than
        ``--large-cluster-size-threshold`` nodes, else 0 (no evictions)."""
        return self.secondary_eviction_rate if zone_size > self.large_cluster_threshold else 0.0

    def _set_limiter_in_zone(self, zone: str, size: int, state: str) -> None:
        """``setLimiterInZone``: Normal and FullDisruption evict at ``--node-eviction-rate``
        (``HealthyQPSFunc``), PartialDisruption at :meth:`reduced_qps`."""
        qps = self.reduced_qps(size) if state == PARTIAL_DISRUPTION else self.eviction_rate
        if state in (NORMAL, PARTIAL_DISRUPTION, FULL_DISRUPTION):
            self.zone_tainter[zone].swap_limiter(qps)
            self.zone_log.append((self.clock.now(), zone_name(zone), state, qps))

    def handle_disruption(self, zone_conditions: dict[str, list[str | None]],
                          nodes: list[Obj]) -> None:
        """``handleDisruption``: each zone's state from its nodes' Ready conditions, and its
        limiter set for that state; when every zone is in full disruption the controller
        assumes the problem is its own ("master disruption mode"): it removes the NoExecute
        taints and stops all evictions until some node is Ready again."""
        new_states: dict[str, str] = {}
        all_are = True
        for zone in sorted(zone_conditions):
            _, state = compute_zone_state(zone_conditions[zone], self.unhealthy_zone_threshold)
            new_states[zone] = state
            all_are = all_are and state == FULL_DISRUPTION
            if zone not in self.zone_states:
                self.zone_states[zone] = INITIAL
        all_were = True
        for zone in sorted(self.zone_states):
            if zone not in zone_conditions:
                del self.zone_states[zone]
                continue
            if self.zone_states[zone] != FULL_DISRUPTION:
                all_were = False
                break
        if all_are and all_were:
            return
        if all_are:  # entering master disruption mode
            self.log.append((self.clock.now(), "", "all nodes not Ready: no evictions"))
            for node in nodes:
                current = self._node(node["metadata"]["name"])
                if current is not None:
                    self._mark_node_as_reachable(current)
            for zone in sorted(self.zone_states):
                self.zone_tainter[zone].swap_limiter(0.0)
                self.zone_states[zone] = FULL_DISRUPTION
                self.zone_log.append((self.clock.now(), zone_name(zone), FULL_DISRUPTION, 0.0))
            return
        if all_were:  # leaving it: every node gets a fresh probe timestamp
            now = self.clock.now()
            self.health = {n: (now, hb, renew) for n, (_, hb, renew) in self.health.items()}
            for zone in sorted(self.zone_states):
                self._set_limiter_in_zone(zone, len(zone_conditions[zone]), new_states[zone])
                self.zone_states[zone] = new_states[zone]
            return
        for zone in sorted(self.zone_states):
            if self.zone_states[zone] == new_states[zone]:
                continue
            self._set_limiter_in_zone(zone, len(zone_conditions[zone]), new_states[zone])
            self.zone_states[zone] = new_states[zone]
