"""kube-scheduler: watch unscheduled pods and nodes, filter, score, bind.

Mirrors ``pkg/scheduler`` (``scheduler.go``, ``schedule_one.go``, ``eventhandlers.go``):

* one informer on pods that have not finished (``status.phase!=Succeeded,status.phase!=Failed``)
  and one on nodes. Pods already bound go to the scheduler's cache (so their requests count
  against their node); pods with no ``spec.nodeName`` and this profile's ``schedulerName`` go to
  the :class:`~k8sbook.controlplane.scheduler.queue.SchedulingQueue`. A node added or changed, or a bound
  pod deleted, moves the unschedulable pods back to the queue.
* ``scheduleOne``: pop the pod, run the PreFilter plugins once (the pod's requests,
  tolerations and node affinity, read once per cycle; a plugin with nothing to check is
  skipped), then the Filter plugins on up to ``numFeasibleNodesToFind``
  nodes (starting where the last cycle stopped), run the Score plugins on the feasible ones,
  multiply each normalised score by the plugin's weight, add up, pick the highest (ties
  broken at random), *assume* the pod on that node in the cache, and bind it: ``POST
  pods/<name>/binding``. Then a ``Scheduled`` Event.
* when no node passes, the PostFilter plugins run (``DynamicResources``, then
  ``DefaultPreemption``); the pod's ``PodScheduled`` condition becomes ``False`` with reason
  ``Unschedulable`` and the message ``0/N nodes are available: ...``, a ``FailedScheduling``
  Event is written, and the pod waits in the queue. If preemption finds victims, the
  scheduler sets ``status.nominatedNodeName`` and deletes them.
* leader election on the Lease ``kube-system/kube-scheduler``.

It talks to nothing but kube-apiserver, through the client it is given; the composition root
(:meth:`k8sbook.cluster.Cluster.add_scheduler`) hands it that client, the clock, the random
source for ties and its leader-election identity. Simplified: one profile, synchronous binding (the
real binding cycle runs in a goroutine), no extenders, the plugins of
:mod:`k8sbook.controlplane.scheduler.plugins` only.

The module is over 400 lines because the cache's event handlers, the scheduling cycle and
its failure path (PostFilter, the ``PodScheduled`` condition) stay together, as upstream's
``eventhandlers.go`` and ``schedule_one.go`` are one package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.client.events import EventRecorder
from k8sbook.client.informer import SharedIndexInformer, final_state
from k8sbook.client.leaderelection import LeaderElector
from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.controlplane.scheduler.framework import (
    OK,
    SUCCESS,
    NodeInfo,
    Obj,
    Status,
    num_feasible_nodes_to_find,
    pod_uid,
    run_pre_filter_plugins,
    total_scores,
)
from k8sbook.controlplane.scheduler.plugins import (
    FILTER_PLUGINS,
    FILTERS,
    SCORES,
    histogram,
    pick_one_node_for_preemption,
    preemption_candidates,
)
from k8sbook.controlplane.scheduler.profile import Profile, validate_profile
from k8sbook.controlplane.scheduler.queue import QueuedPodInfo, SchedulingQueue, pod_key
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError

LEASE_NAMESPACE, LEASE_NAME = "kube-system", "kube-scheduler"
#: the scheduler's pod informer index by ``spec.nodeName`` (as ``NodeNameIndexFunc``)
NODE_NAME_INDEX = "spec.nodeName"


def _node_name(pod: Obj) -> list[str]:
    node = pod["spec"].get("nodeName")
    return [node] if node else []
POD_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"


class KubeScheduler:
    """One kube-scheduler process. ``client`` is its API client (``system:kube-scheduler``),
    ``random`` a number in [0, 1) for breaking score ties, ``identity`` its leader-election
    identity (``<hostname>_<uuid>``)."""

    def __init__(self, client: Client, clock: Clock, *, identity: str,
                 random: Callable[[], float], profile: Profile | None = None,
                 leader_elect: bool = True) -> None:
        self.profile = profile or Profile()
        validate_profile(self.profile)  # before anything talks to the apiserver
        self.clock = clock
        self.random = random
        self.instance = client.instance
        self.client = client
        self.recorder = EventRecorder(self.client, self.profile.scheduler_name)
        self.queue = SchedulingQueue(clock)
        self.queue.on_active = self._wake
        self.nodes: dict[str, NodeInfo] = {}
        self.assumed: dict[str, str] = {}  # pod key -> node, until the informer confirms
        #: pod UID -> the node whose NodeInfo holds it (upstream's ``podStates``, keyed by UID)
        self._pod_nodes: dict[str, str] = {}
        #: the NodeInfos in node-name order, rebuilt only when a node comes or goes. Upstream
        #: copies the cache into a ``Snapshot`` at the start of each cycle, only the NodeInfos
        #: whose generation moved; the model runs one cycle at a time with no event handled
        #: in between, so the cycle reads the cache's NodeInfos themselves, always current
        self._node_list: list[NodeInfo] | None = None
        #: keep a record per attempt in :attr:`attempts` (off for large benchmarks)
        self.record_attempts = True
        self.next_start_node_index = 0
        self.pod_informer: SharedIndexInformer | None = None
        self.node_informer: SharedIndexInformer | None = None
        self._scheduled = False
        self.running = False
        #: one record per scheduling attempt, for chapters and tests
        self.attempts: list[dict[str, Any]] = []
        self.elector = LeaderElector(self.client, LEASE_NAMESPACE, LEASE_NAME, identity,
                                     clock=clock, on_started_leading=self._run,
                                     on_stopped_leading=self.stop) if leader_elect else None

    @property
    def filters(self) -> list[str]:
        names = [n for n, _ in self.profile.plugins] + list(self.profile.filter)
        return [n for n in FILTERS if n in names]

    @property
    def weights(self) -> dict[str, int]:
        w = {n: wt for n, wt in self.profile.plugins if n in SCORES and wt}
        w.update({n: wt or 1 for n, wt in self.profile.score})
        return w

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        if self.elector:
            self.elector.run()
        else:
            self._run()

    def _run(self) -> None:
        self.running = True
        self.pod_informer = SharedIndexInformer(self.client, "pods",
                                                field_selector=POD_FIELD_SELECTOR,
                                                indexers={NODE_NAME_INDEX: _node_name})
        self.node_informer = SharedIndexInformer(self.client, "nodes")
        self.node_informer.add_event_handler(self._node_added, self._node_updated,
                                             self._node_deleted)
        self.pod_informer.add_event_handler(self._pod_added, self._pod_updated,
                                            self._pod_deleted)
        self.node_informer.run()
        self.pod_informer.run()
        self.queue.run()

    def stop(self) -> None:
        self.running = False
        if self.elector and not self.elector.stopped:
            self.elector.stop()
        for inf in (self.pod_informer, self.node_informer):
            if inf:
                inf.stop()
        self.queue.close()

    # -- event handlers ------------------------------------------------------------------
    def _responsible(self, pod: Obj) -> bool:
        return pod["spec"].get("schedulerName", "default-scheduler") == \
            self.profile.scheduler_name

    def _node_added(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        info = NodeInfo(node, self._pods_on(node))
        self.nodes[name] = info
        self._node_list = None
        for p in info.pods:
            self._pod_nodes[pod_uid(p)] = name
        self.queue.move_all_to_active_or_backoff("NodeAdd")

    def _node_updated(self, old: Obj, new: Obj) -> None:
        name = new["metadata"]["name"]
        info = self.nodes.get(name)
        if info is None:
            return self._node_added(new)
        info.node = new
        relevant = any(old.get(a, {}).get(b) != new.get(a, {}).get(b) for a, b in (
            ("spec", "taints"), ("spec", "unschedulable"), ("metadata", "labels"),
            ("status", "allocatable")))
        if relevant:
            self.queue.move_all_to_active_or_backoff("NodeUpdate")

    def _node_deleted(self, node: Any) -> None:
        if self.nodes.pop(final_state(node)["metadata"]["name"], None) is not None:
            self._node_list = None

    def _pods_on(self, node: Obj) -> list[Obj]:
        """The informer's pods bound to ``node``, read from its ``spec.nodeName`` index."""
        if self.pod_informer is None:
            return []
        return self.pod_informer.indexer.by_index(NODE_NAME_INDEX, node["metadata"]["name"])

    def _cache_remove_pod(self, pod: Obj) -> None:
        node = self._pod_nodes.pop(pod_uid(pod), None)
        if node is not None and node in self.nodes:
            self.nodes[node].remove_pod(pod)

    def _cache_add(self, pod: Obj) -> None:
        node = pod["spec"]["nodeName"]
        self.assumed.pop(pod_key(pod), None)
        self._cache_remove_pod(pod)
        if node in self.nodes:
            self.nodes[node].add_pod(pod)
            self._pod_nodes[pod_uid(pod)] = node

    def _cache_remove(self, pod: Obj) -> None:
        self.assumed.pop(pod_key(pod), None)
        self._cache_remove_pod(pod)

    def _pod_added(self, pod: Obj) -> None:
        if pod["spec"].get("nodeName"):
            self._cache_add(pod)
        elif self._responsible(pod):
            self.queue.add(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if new["spec"].get("nodeName"):
            if not old["spec"].get("nodeName"):
                self.queue.delete(new)
            elif pod_uid(old) != pod_uid(new):  # recreated under the same name (a relist)
                self._cache_remove(old)
            self._cache_add(new)
        elif self._responsible(new):
            self.queue.update(new)

    def _pod_deleted(self, pod: Any) -> None:
        pod = final_state(pod)
        if pod["spec"].get("nodeName"):
            self._cache_remove(pod)
            self.queue.move_all_to_active_or_backoff("AssignedPodDelete")
        else:
            self.queue.delete(pod)

    # -- the scheduling cycle ------------------------------------------------------------
    def _wake(self) -> None:
        if self.running and not self._scheduled:
            self._scheduled = True
            self.clock.call_soon(self._loop, label="scheduleOne")

    def _loop(self) -> None:
        self._scheduled = False
        info = self.queue.pop()
        if info is None:
            return
        self.schedule_one(info)
        if self.queue.active:
            self._wake()

    def find_nodes_that_fit(self, pod: Obj) -> tuple[list[NodeInfo], dict[str, Status]]:
        """``findNodesThatPassFilters``: PreFilter once, then the Filters node by node,
        starting where the last cycle stopped; stop once ``numFeasibleNodesToFind`` feasible
        nodes are found."""
        if self._node_list is None:
            self._node_list = [self.nodes[name] for name in sorted(self.nodes)]
        nodes = self._node_list
        n = len(nodes)
        want = num_feasible_nodes_to_find(n, self.profile.percentage_of_nodes_to_score)
        filters = run_pre_filter_plugins([FILTER_PLUGINS[f] for f in self.filters], pod)
        feasible: list[NodeInfo] = []
        statuses: dict[str, Status] = {}
        start = self.next_start_node_index
        processed = 0
        for i in range(n):
            if len(feasible) >= want:
                break
            ni = nodes[(start + i) % n]
            processed += 1
            for fn, state in filters:
                st = fn(state, ni)
                if st is not OK and st.code != SUCCESS:
                    statuses[ni.name] = st
                    break
            else:
                feasible.append(ni)
        if n:
            self.next_start_node_index = (start + processed) % n
        return feasible, statuses

    def prioritize(self, pod: Obj, feasible: list[NodeInfo]) -> dict[str, dict[str, int]]:
        """``prioritizeNodes``: per plugin (by name), per node, normalised score x weight."""
        out: dict[str, dict[str, int]] = {}
        for plugin, weight in sorted(self.weights.items()):
            scores = SCORES[plugin](pod, feasible)
            out[plugin] = scores if weight == 1 else {node: s * weight
                                                      for node, s in scores.items()}
        return out

    def select_host(self, totals: dict[str, int]) -> str:
        """``selectHost``: the highest total; ties broken by reservoir sampling."""
        best, count, chosen = -1, 0, ""
        for name in sorted(totals):
            if totals[name] > best:
                best, count, chosen = totals[name], 1, name
            elif totals[name] == best:
                count += 1
                if self.random() * count < 1:
                    chosen = name
        return chosen

    def schedule_one(self, info: QueuedPodInfo) -> None:
        pod = info.pod
        key = info.key
        current = self.pod_informer.get(key) if self.pod_informer else None
        if current is None or current["spec"].get("nodeName") or \
                current["metadata"].get("deletionTimestamp"):
            self.queue.done(key)
            return
        pod = current
        record: dict[str, Any] = {"t": round(self.clock.now(), 6), "pod": key,
                                  "attempt": info.attempts}
        if self.record_attempts:
            self.attempts.append(record)
        if not self.nodes:
            record["result"] = "no nodes available to schedule pods"
            self._fail(info, pod, "no nodes available to schedule pods", set())
            return
        feasible, statuses = self.find_nodes_that_fit(pod)
        if self.record_attempts:  # the record is the model's, for chapters: none at scale
            record["filtered"] = {n: list(s.reasons) for n, s in sorted(statuses.items())}
        if not feasible:
            self._unschedulable(info, pod, statuses, record)
            return
        scores = self.prioritize(pod, feasible)
        totals = total_scores([ni.name for ni in feasible], scores)
        if self.record_attempts:
            record["scores"] = {n: {plugin: scores[plugin][n] for plugin in scores}
                                for n in sorted(totals)}
        node = self.select_host(totals)
        record["node"] = node
        # assume, then bind. Upstream assumes a deep copy of the pod; the model copies only
        # what it changes (the pod and its spec, with the node's name) and shares the rest
        # with the informer's object, which nothing changes
        assumed = {**pod, "spec": {**pod["spec"], "nodeName": node}}
        self.assumed[key] = node
        self._cache_remove_pod(assumed)
        self.nodes[node].add_pod(assumed)
        self._pod_nodes[pod_uid(assumed)] = node
        try:
            self.client.bind(pod["metadata"]["namespace"], pod["metadata"]["name"], node)
        except (StatusError, DialError) as err:
            self._cache_remove(assumed)
            record["result"] = f"bind failed: {err}"
            self._fail(info, pod, f"binding rejected: {err}", set())
            return
        record["result"] = "bound"
        self.queue.done(key)
        self.recorder.event(pod, "Normal", "Scheduled",
                            f"Successfully assigned {key} to {node}")

    def _unschedulable(self, info: QueuedPodInfo, pod: Obj, statuses: dict[str, Status],
                       record: dict[str, Any]) -> None:
        n = len(self.nodes)
        reasons = [r for s in statuses.values() for r in s.reasons]
        message = f"0/{n} nodes are available: {histogram(reasons)}."
        # PostFilter: DynamicResources (the model has no ResourceClaims), then preemption
        post = ["no new claims to deallocate"]
        nominated = ""
        if pod["spec"].get("preemptionPolicy") == "Never":
            post.append("preemption: not eligible due to preemptionPolicy=Never.")
        else:
            cands, why = preemption_candidates(pod, [self.nodes[k] for k in sorted(self.nodes)],
                                               statuses, [FILTERS[f] for f in self.filters])
            if cands:
                nominated, victims = pick_one_node_for_preemption(cands)
                record["preemption"] = {"node": nominated,
                                        "victims": [pod_key(v) for v in victims]}
                self._preempt(pod, nominated, victims)
            else:
                post.append(f"preemption: 0/{n} nodes are available: {histogram(why)}.")
        if not nominated:
            message += " " + ", ".join(post)
        record["result"] = message
        plugins = {s.plugin for s in statuses.values()}
        self._fail(info, pod, message, plugins, nominated)

    def _preempt(self, pod: Obj, node: str, victims: list[Obj]) -> None:
        """``prepareCandidate``: evict (delete) each victim and say why."""
        for v in victims:
            meta = v["metadata"]
            try:
                self.client.delete("pods", meta["name"], meta["namespace"])
            except (StatusError, DialError):
                continue
            self.recorder.event(v, "Normal", "Preempted",
                                f"Preempted by pod {pod['metadata']['uid']} on node {node}")

    def _fail(self, info: QueuedPodInfo, pod: Obj, message: str, plugins: set[str],
              nominated: str = "") -> None:
        """``handleSchedulingFailure``: event, PodScheduled=False, back into the queue."""
        self.queue.add_unschedulable(info, plugins)
        self.recorder.event(pod, "Warning", "FailedScheduling", message)
        reason = "Unschedulable" if plugins or nominated else "SchedulerError"
        cond = {"type": "PodScheduled", "status": "False", "reason": reason,
                "message": message, "lastProbeTime": None,
                "lastTransitionTime": self.clock.timestamp()}
        old = next((c for c in pod.get("status", {}).get("conditions", [])
                    if c.get("type") == "PodScheduled"), None)
        if old and old.get("status") == "False" and old.get("reason") == reason:
            cond["lastTransitionTime"] = old.get("lastTransitionTime")
            if old.get("message") == message and not nominated:
                return  # nothing new to write
        conds = [c for c in pod.get("status", {}).get("conditions", [])
                 if c.get("type") != "PodScheduled"] + [cond]
        status: Obj = {"conditions": conds}
        if nominated:
            status["nominatedNodeName"] = nominated
        try:
            self.client.patch("pods", pod["metadata"]["name"], {"status": status},
                              pod["metadata"]["namespace"], subresource="status")
        except (StatusError, DialError):
            pass
