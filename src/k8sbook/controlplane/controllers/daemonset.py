"""The DaemonSet controller: one pod on every node that should run one.

Mirrors ``pkg/controller/daemon`` (``daemon_controller.go``: ``syncDaemonSet``, ``manage``,
``podsShouldBeOnNode``, ``NodeShouldRunDaemonPod``, ``updateDaemonSetStatus``; ``update.go``:
``constructHistory``, ``snapshot``, ``rollingUpdate``, ``cleanupHistory``;
``util/daemonset_util.go``). Handlers on the shared DaemonSet, Pod, Node and
ControllerRevision informers queue the DaemonSet's key (a node change queues every
DaemonSet). A sync

* finds the DaemonSet's history (:mod:`~k8sbook.controlplane.controllers.history`): the
  ControllerRevision whose ``data`` is the patch of the current template, or a new one
  (``snapshot``): ``<ds>-<hash>``, labelled with the template's labels and
  ``controller-revision-hash=<hash>``, the DaemonSet's annotations, owned by it, ``revision``
  one more than the highest of the others (a template that comes back gets its old revision
  renumbered). The hash is ``controller.ComputeHash`` of the template and
  ``status.collisionCount`` (FNV-1a; upstream feeds it Go's printout of the struct, the model
  the template's JSON, so names differ from a real cluster's); a name taken by other data
  bumps ``status.collisionCount``;
* decides per node whether a daemon pod should run there (the template's ``nodeSelector``
  and required node affinity match the node, and the pod tolerates the node's
  ``NoSchedule``/``NoExecute`` taints), creates the missing pods and deletes the ones on nodes
  that should not run one, failed or succeeded ones (to be made again), and extra ones (the
  oldest stays; with ``maxSurge`` one old and one new may share a node until the new one is
  available). A pod still terminating counts as the node's pod: without surge, its
  replacement waits until it is gone;
* rolls a changed template out (``updateStrategy: RollingUpdate``, the default): without
  ``maxSurge``, it deletes old pods while fewer than ``maxUnavailable`` (default 1; a
  percentage of the desired number, rounded up) daemon pods are unavailable, an old pod that
  is not available at once; with ``maxSurge`` (``maxUnavailable: 0``), it creates a new pod
  beside an available old one on up to ``maxSurge`` nodes and deletes the old one once the
  new one is available. ``OnDelete`` replaces a pod only when someone deletes it;
* deletes old revisions beyond ``revisionHistoryLimit`` (default 10), oldest first, but
  never one a pod still runs (``cleanupHistory``).

Since 1.12 the controller does not bind the pods itself: each pod (``generateName:
<ds>-``) carries a required node affinity ``matchFields`` ``metadata.name In [<node>]``
(``ReplaceDaemonSetPodNodeNameNodeAffinity``) and the default scheduler places it. It also
gets the tolerations ``AddOrUpdateDaemonPodTolerations`` adds (``not-ready`` and
``unreachable`` ``NoExecute``; ``disk-pressure``, ``memory-pressure``, ``pid-pressure`` and
``unschedulable`` ``NoSchedule``; ``network-unavailable`` for ``hostNetwork`` pods), so a
cordoned or pressured node still runs its daemons, and the labels
``controller-revision-hash`` (the revision's hash) and ``pod-template-generation``.

Status: ``desiredNumberScheduled``, ``currentNumberScheduled``, ``numberMisscheduled``,
``numberReady``, ``numberAvailable`` (ready for ``minReadySeconds``), ``numberUnavailable``,
``updatedNumberScheduled``, ``observedGeneration``, ``collisionCount``, which ``kubectl
rollout status daemonset`` reads; ``rollout history`` and ``undo`` read the
ControllerRevisions. Simplified: no burst limits (``SlowStartBatch``), no back-off for pods a
kubelet keeps failing, no adoption of orphaned revisions or pods.

The module is over 400 lines because it is upstream's ``daemon_controller.go`` and
``update.go`` in one: the history, the per-node manage loop and both rolling-update modes
(without and with surge) read and write the same per-node pod map in one sync.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api import taints
from k8sbook.client.informer import SharedIndexInformer, final_state, meta_namespace_key
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import (
    Obj,
    QueueController,
    controller_of,
    controller_ref,
    is_pod_available,
    is_pod_ready,
    omit_empty,
)
from k8sbook.controlplane.controllers.deployment_util import compute_hash, scaled_value
from k8sbook.controlplane.controllers.expectations import ControllerExpectations
from k8sbook.controlplane.controllers.history import (
    History,
    get_patch,
    go_json,
    sort_revisions,
)
from k8sbook.controlplane.scheduler.plugins.nodeaffinity import node_selector_term_matches
from k8sbook.core.status import StatusError

NAME = "daemon-set-controller"
REVISION_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
#: ``AddOrUpdateDaemonPodTolerations``: (key, effect)
TOLERATIONS = (("node.kubernetes.io/not-ready", "NoExecute"),
               ("node.kubernetes.io/unreachable", "NoExecute"),
               ("node.kubernetes.io/disk-pressure", "NoSchedule"),
               ("node.kubernetes.io/memory-pressure", "NoSchedule"),
               ("node.kubernetes.io/pid-pressure", "NoSchedule"),
               ("node.kubernetes.io/unschedulable", "NoSchedule"))
HOST_NETWORK_TOLERATION = ("node.kubernetes.io/network-unavailable", "NoSchedule")


def daemon_pod_tolerations(spec: Obj) -> list[Obj]:
    tolerations = list(spec.get("tolerations") or [])
    wanted = list(TOLERATIONS) + ([HOST_NETWORK_TOLERATION] if spec.get("hostNetwork") else [])
    for key, effect in wanted:
        tol = {"key": key, "operator": "Exists", "effect": effect}
        if tol not in tolerations:
            tolerations.append(tol)
    return tolerations


def node_should_run(ds: Obj, node: Obj, effects: tuple[str, ...] = ("NoSchedule",
                                                                   "NoExecute")) -> bool:
    """``NodeShouldRunDaemonPod``'s ``shouldRun``: selector, required affinity, taints.
    With ``effects=("NoExecute",)`` its ``shouldContinueRunning``: a pod already there stays
    on a node tainted ``NoSchedule`` after it started."""
    spec = ds["spec"]["template"].get("spec", {})
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required and not any(node_selector_term_matches(t, node)
                            for t in required.get("nodeSelectorTerms", [])):
        return False
    pod = {"spec": {"tolerations": daemon_pod_tolerations(spec)}}
    return not taints.untolerated_taints(pod, node, effects)


def is_pod_updated(pod: Obj, h: str, generation: int) -> bool:
    """``util.IsPodUpdated``: the pod carries the revision's hash or the template's
    generation."""
    labels = pod["metadata"].get("labels") or {}
    return labels.get(REVISION_LABEL) == h or labels.get(GENERATION_LABEL) == str(generation)


def _oldest_first(pods: list[Obj]) -> list[Obj]:
    """``podByCreationTimestampAndPhase``: scheduled pods first, then the oldest, then by
    name."""
    return sorted(pods, key=lambda p: (not p["spec"].get("nodeName"),
                                       p["metadata"].get("creationTimestamp", ""),
                                       p["metadata"]["name"]))


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class _Collision(Exception):
    """A revision's name is taken by other data: ``collisionCount`` was bumped."""




class DaemonSetsController(QueueController):
    def __init__(self, client: Client, ds_informer: SharedIndexInformer,
                 pod_informer: SharedIndexInformer, node_informer: SharedIndexInformer,
                 history_informer: SharedIndexInformer) -> None:
        super().__init__(client, "daemonset", NAME)
        self.ds_informer, self.pod_informer, self.node_informer = \
            ds_informer, pod_informer, node_informer
        self.history = History(client, history_informer)
        self.expectations = ControllerExpectations()
        ds_informer.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.observe_owned_pods(pod_informer, "DaemonSet")
        node_informer.add_event_handler(self._all, lambda old, new: self._all(new),
                                        lambda node: self._all(node))
        history_informer.add_event_handler(
            self._history_changed, lambda old, new: self._history_changed(new),
            lambda rev: self._history_changed(final_state(rev)))

    def _all(self, node: Any) -> None:
        for ds in self.ds_informer.lister():
            self.enqueue(ds)

    def _owner_changed(self, obj: Obj) -> str:
        return self.enqueue_owner(obj, "DaemonSet")

    def _history_changed(self, rev: Obj) -> None:
        """``addHistory``/``updateHistory``/``deleteHistory``: the owner is synced again."""
        self._owner_changed(rev)

    @staticmethod
    def node_of(pod: Obj) -> str:
        """The node a daemon pod is for: its ``nodeName``, else its affinity's field."""
        if pod["spec"].get("nodeName"):
            return str(pod["spec"]["nodeName"])
        terms = (((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")
        for term in terms or []:
            for f in term.get("matchFields") or []:
                if f.get("key") == "metadata.name" and f.get("values"):
                    return str(f["values"][0])
        return ""

    def nodes_to_daemon_pods(self, ds: Obj, include_deleted_terminal: bool = False) -> \
            dict[str, list[Obj]]:
        """``getNodesToDaemonPods``: the DaemonSet's pods by node; a terminating pod counts,
        a finished one that is being deleted does not (unless asked)."""
        uid = ds["metadata"]["uid"]
        by_node: dict[str, list[Obj]] = {}
        for pod in self.pod_informer.indexer.by_index("namespace", ds["metadata"]["namespace"]):
            if (controller_of(pod) or {}).get("uid") != uid:
                continue
            if not include_deleted_terminal and _terminal(pod) and \
                    pod["metadata"].get("deletionTimestamp"):
                continue
            by_node.setdefault(self.node_of(pod), []).append(pod)
        return by_node

    # -- the sync ----------------------------------------------------------------------
    def sync(self, key: Any) -> None:
        """``syncDaemonSet``: history, ``manage``, ``rollingUpdate``, ``cleanupHistory``,
        then ``updateDaemonSetStatus``."""
        ds = self.ds_informer.get(key)
        if ds is None:
            self.expectations.delete(key)
            return
        if ds["metadata"].get("deletionTimestamp"):
            return
        nodes = sorted(self.node_informer.lister(), key=lambda n: n["metadata"]["name"])
        try:
            cur, old = self.construct_history(ds)
        except _Collision:
            return  # the status update queues the DaemonSet again
        h = cur["metadata"]["labels"][REVISION_LABEL]
        if self.expectations.satisfied(key, self.clock.now()):
            acted = self._manage(ds, nodes, h)
            strategy = (ds["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
            if not acted and strategy == "RollingUpdate":
                self._rolling_update(ds, nodes, h)
            self._cleanup_history(ds, old)
        self._update_status(ds, nodes, h)

    # -- history -------------------------------------------------------------------------
    def construct_history(self, ds: Obj) -> tuple[Obj, list[Obj]]:
        """``constructHistory``: (the current revision, the old ones)."""
        patch = go_json(get_patch(ds))
        current: list[Obj] = []
        old: list[Obj] = []
        for rev in self.history.list(ds):
            (current if go_json(rev.get("data")) == patch else old).append(rev)
        number = max((int(r.get("revision", 0)) for r in old), default=0) + 1
        if not current:
            return self._snapshot(ds, number), old
        cur = max(current, key=lambda r: int(r.get("revision", 0)))  # dedupCurHistories
        for dup in current:
            if dup is not cur:
                self.history.delete(dup)
        if int(cur.get("revision", 0)) < number:
            cur = self.history.update(cur, number)
        return cur, old

    def _snapshot(self, ds: Obj, number: int) -> Obj:
        """``snapshot``: a new ControllerRevision for the current template."""
        meta = ds["metadata"]
        h = compute_hash(ds["spec"]["template"], (ds.get("status") or {}).get("collisionCount"))
        labels = {**((ds["spec"]["template"].get("metadata") or {}).get("labels") or {}),
                  REVISION_LABEL: h}
        rev_meta: Obj = {"name": f"{meta['name']}-{h}", "namespace": meta["namespace"],
                         "labels": labels,
                         "ownerReferences": [controller_ref(ds, "apps/v1", "DaemonSet")]}
        if meta.get("annotations"):
            rev_meta["annotations"] = dict(meta["annotations"])
        data = get_patch(ds)
        try:
            return self.client.create({"apiVersion": "apps/v1", "kind": "ControllerRevision",
                                       "metadata": rev_meta, "data": data,
                                       "revision": number})
        except StatusError as err:
            if err.code != 409:
                raise
        existing = self.client.get("controllerrevisions", rev_meta["name"], meta["namespace"])
        if go_json(existing.get("data")) == go_json(data) and \
                (controller_of(existing) or {}).get("uid") == meta["uid"]:
            return existing
        fresh = self.client.get("daemonsets", meta["name"], meta["namespace"])
        fresh.setdefault("status", {})["collisionCount"] = \
            int(fresh["status"].get("collisionCount") or 0) + 1
        self.client.update_status(fresh)
        raise _Collision(rev_meta["name"])

    def _cleanup_history(self, ds: Obj, old: list[Obj]) -> None:
        """``cleanupHistory``: beyond ``revisionHistoryLimit``, the oldest revisions no pod
        runs any more."""
        to_kill = len(old) - int(ds["spec"].get("revisionHistoryLimit", 10))
        if to_kill <= 0:
            return
        live = {(p["metadata"].get("labels") or {}).get(REVISION_LABEL)
                for pods in self.nodes_to_daemon_pods(ds, True).values() for p in pods}
        for rev in sort_revisions(old):
            if to_kill <= 0:
                break
            if (rev["metadata"].get("labels") or {}).get(REVISION_LABEL) in live:
                continue
            self.history.delete(rev)
            to_kill -= 1

    # -- pods ----------------------------------------------------------------------------
    def _manage(self, ds: Obj, nodes: list[Obj], h: str) -> bool:
        """``manage`` with ``podsShouldBeOnNode`` for each node, then ``syncNodes``: whether
        it created or deleted anything."""
        by_node = self.nodes_to_daemon_pods(ds)
        surge = self._allows_surge(ds)
        creates: list[str] = []
        deletes: list[Obj] = []
        for node in nodes:
            name = node["metadata"]["name"]
            pods = by_node.get(name, [])
            should_run = node_should_run(ds, node)
            if should_run and not pods:
                creates.append(name)
            elif node_should_run(ds, node, ("NoExecute",)):
                running: list[Obj] = []
                for pod in pods:
                    if pod["metadata"].get("deletionTimestamp"):
                        continue
                    phase = (pod.get("status") or {}).get("phase")
                    if phase == "Failed":
                        self.recorder.event(ds, "Warning", "FailedDaemonPod",
                                            f"Found failed daemon pod {pod['metadata']['namespace']}"
                                            f"/{pod['metadata']['name']} on node {name}, will "
                                            "try to kill it")
                        deletes.append(pod)
                    elif phase == "Succeeded":
                        deletes.append(pod)
                    else:
                        running.append(pod)
                if not surge:
                    deletes += _oldest_first(running)[1:]  # the oldest stays
                elif not running:
                    if should_run:
                        creates.append(name)
                else:
                    deletes += self._surge_excess(ds, running, h)
            else:
                deletes += [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        known = {n["metadata"]["name"] for n in nodes}  # getUnscheduledPodsWithoutNode
        deletes += [p for node, pods in sorted(by_node.items()) if node not in known
                    for p in pods if not p["metadata"].get("deletionTimestamp")]
        self._sync_nodes(ds, deletes, creates, h)
        return bool(deletes or creates)

    def _surge_excess(self, ds: Obj, running: list[Obj], h: str) -> list[Obj]:
        """With surge, one old and one new pod may share a node: the others go, and the old
        one too once it is not ready or the new one is available."""
        out: list[Obj] = []
        oldest_new: Obj | None = None
        oldest_old: Obj | None = None
        for pod in _oldest_first(running):
            if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) == h:
                if oldest_new is None:
                    oldest_new = pod
                    continue
            elif oldest_old is None:
                oldest_old = pod
                continue
            out.append(pod)
        if oldest_new is not None and oldest_old is not None and (
                not is_pod_ready(oldest_old) or self._available(ds, oldest_new)):
            out.append(oldest_old)
        return out

    def _sync_nodes(self, ds: Obj, deletes: list[Obj], creates: list[str], h: str) -> None:
        """``syncNodes``: expectations first, then the creations and the deletions."""
        if not deletes and not creates:
            return
        key = meta_namespace_key(ds)
        self.expectations.set_expectations(key, len(creates), len(deletes), self.clock.now())
        for name in creates:
            self._create(ds, name, h)
        for pod in deletes:
            self._delete(ds, pod)

    def _available(self, ds: Obj, pod: Obj) -> bool:
        return is_pod_available(pod, int(ds["spec"].get("minReadySeconds", 0)),
                                self.clock.now(), self.clock.parse)

    @staticmethod
    def _allows_surge(ds: Obj) -> bool:
        """``util.AllowsSurge``: a rolling update whose ``maxSurge`` of one node is not 0."""
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return False
        return scaled_value((strategy.get("rollingUpdate") or {}).get("maxSurge", 0), 1,
                            True) != 0

    def _counts(self, ds: Obj, nodes: list[Obj]) -> tuple[int, int, int]:
        """``updatedDesiredNodeCounts``: (maxSurge, maxUnavailable, desired), both rounded
        up from a percentage of the desired number; 0 and 0 is read as 1 unavailable."""
        desired = sum(1 for n in nodes if node_should_run(ds, n))
        ru = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
        surge = scaled_value(ru.get("maxSurge", 0), desired, True)
        unavailable = scaled_value(ru.get("maxUnavailable", 1), desired, True)
        if desired > 0 and surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable, desired

    def _rolling_update(self, ds: Obj, nodes: list[Obj], h: str) -> None:
        """``rollingUpdate``."""
        by_node = self.nodes_to_daemon_pods(ds)
        max_surge, max_unavailable, desired = self._counts(ds, nodes)
        generation = int(ds["metadata"].get("generation", 1))
        for node in nodes:
            if node_should_run(ds, node):
                by_node.setdefault(node["metadata"]["name"], [])
        if max_surge == 0:
            unavailable = 0
            allowed: list[Obj] = []
            candidates: list[Obj] = []
            for name in sorted(by_node):
                found = self._updated_on_node(by_node[name], h, generation)
                if found is None:
                    unavailable += 1  # the manage loop cleans this node up
                    continue
                new, old = found
                if (new is None) == (old is None):
                    unavailable += 1
                elif new is not None:
                    unavailable += not self._available(ds, new)
                elif old is not None and not self._available(ds, old):
                    allowed.append(old)
                elif unavailable < max_unavailable and old is not None:
                    candidates.append(old)
            room = min(max(max_unavailable - unavailable, 0), len(candidates))
            self._sync_nodes(ds, allowed + candidates[:room], [], h)
            return
        deletes: list[Obj] = []
        not_here: list[Obj] = []
        allowed_nodes: list[str] = []
        candidate_nodes: list[str] = []
        surged = available = 0
        node_objs = {n["metadata"]["name"]: n for n in nodes}
        for name in sorted(by_node):
            found = self._updated_on_node(by_node[name], h, generation)
            if found is None:
                surged += 1
                continue
            new, old = found
            if old is not None:
                available += self._available(ds, old)
            elif new is not None:
                available += self._available(ds, new)
            if old is None:
                continue
            should_run = name in node_objs and node_should_run(ds, node_objs[name])
            if new is None:
                if not self._available(ds, old):
                    if not should_run:
                        deletes.append(old)
                    else:
                        allowed_nodes.append(name)
                elif not should_run:
                    not_here.append(old)
                elif surged < max_surge:
                    candidate_nodes.append(name)
            elif not self._available(ds, new):
                surged += 1  # waiting for the new pod to be available
            else:
                deletes.append(old)
        deletes += not_here[:max(min(available - desired, len(not_here)), 0)]
        room = min(max(max_surge - surged, 0), len(candidate_nodes))
        self._sync_nodes(ds, deletes, allowed_nodes + candidate_nodes[:room], h)

    @staticmethod
    def _updated_on_node(pods: list[Obj], h: str, generation: int) -> \
            tuple[Obj | None, Obj | None] | None:
        """``findUpdatedPodsOnNode``: (the new pod, the old pod), or None for more than one
        of either."""
        new = old = None
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            if is_pod_updated(pod, h, generation):
                if new is not None:
                    return None
                new = pod
            else:
                if old is not None:
                    return None
                old = pod
        return new, old

    def _create(self, ds: Obj, node: str, h: str) -> None:
        tmpl = copy.deepcopy(ds["spec"]["template"])
        meta = tmpl.get("metadata") or {}
        spec = tmpl.get("spec", {})
        spec["tolerations"] = daemon_pod_tolerations(spec)
        affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
        dm = ds["metadata"]
        labels = {**(meta.get("labels") or {}), REVISION_LABEL: h,
                  GENERATION_LABEL: str(dm.get("generation", 1))}
        pod_meta: Obj = {"generateName": f"{dm['name']}-", "namespace": dm["namespace"],
                         "labels": labels,
                         "ownerReferences": [controller_ref(ds, "apps/v1", "DaemonSet")]}
        if meta.get("annotations"):
            pod_meta["annotations"] = dict(meta["annotations"])
        pod = self.client.create({"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
                                  "spec": spec})
        self.recorder.event(ds, "Normal", "SuccessfulCreate",
                            f"Created pod: {pod['metadata']['name']}")

    def _delete(self, ds: Obj, pod: Obj) -> None:
        try:
            self.client.delete("pods", pod["metadata"]["name"], pod["metadata"]["namespace"])
        except StatusError as err:
            if err.code != 404:
                raise
            self.expectations.deletion_observed(meta_namespace_key(ds))
            return
        self.recorder.event(ds, "Normal", "SuccessfulDelete",
                            f"Deleted pod: {pod['metadata']['name']}")

    def _update_status(self, ds: Obj, nodes: list[Obj], h: str) -> None:
        """``updateDaemonSetStatus``: counted over each node's oldest pod."""
        by_node = self.nodes_to_daemon_pods(ds)
        generation = int(ds["metadata"].get("generation", 1))
        desired = current = misscheduled = ready = available = updated = 0
        for node in nodes:
            pods = by_node.get(node["metadata"]["name"], [])
            if node_should_run(ds, node):
                desired += 1
                if not pods:
                    continue
                current += 1
                pod = _oldest_first(pods)[0]
                if is_pod_ready(pod):
                    ready += 1
                    available += self._available(ds, pod)
                updated += is_pod_updated(pod, h, generation)
            elif pods:
                misscheduled += 1
        status: Obj = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                       "desiredNumberScheduled": desired, "numberReady": ready,
                       "observedGeneration": generation, "updatedNumberScheduled": updated,
                       "numberAvailable": available, "numberUnavailable": desired - available}
        omit_empty(status, "updatedNumberScheduled", "numberAvailable", "numberUnavailable")
        if (ds.get("status") or {}).get("collisionCount") is not None:
            status["collisionCount"] = ds["status"]["collisionCount"]
        self.write_status(ds, status)
