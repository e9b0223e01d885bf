"""The DaemonSet controller: one pod on every node that should run one.

Mirrors ``pkg/controller/daemon`` (``daemon_controller.go``: ``syncDaemonSet``, ``manage``,
``NodeShouldRunDaemonPod``, ``updateDaemonSetStatus``; ``util/daemonset_util.go``).
Handlers on the shared DaemonSet, Pod and Node informers queue the DaemonSet's key (a node
change queues every DaemonSet). A sync decides per node whether a daemon pod should run there
(the template's ``nodeSelector`` and required node affinity match the node, and the pod
tolerates the node's ``NoSchedule``/``NoExecute`` taints), then creates the missing pods and
deletes the ones on nodes that should not run one (and failed ones, to be made again). A
changed template rolls out node by node (``updateStrategy: RollingUpdate``): an old pod is
deleted only while fewer than ``maxUnavailable`` (1) daemon pods are unavailable, and its
node then gets a pod of the new template.

Since 1.12 the controller does not bind the pods itself: each pod (``generateName:
<ds>-``) carries a required node affinity ``matchFields`` ``metadata.name In [<node>]``
(``ReplaceDaemonSetPodNodeNameNodeAffinity``) and the default scheduler places it. It also
gets the tolerations ``AddOrUpdateDaemonPodTolerations`` adds (``not-ready`` and
``unreachable`` ``NoExecute``; ``disk-pressure``, ``memory-pressure``, ``pid-pressure`` and
``unschedulable`` ``NoSchedule``; ``network-unavailable`` for ``hostNetwork`` pods), so a
cordoned or pressured node still runs its daemons, and the labels
``controller-revision-hash`` and ``pod-template-generation``.

Status: ``desiredNumberScheduled``, ``currentNumberScheduled``, ``numberMisscheduled``,
``numberReady``, ``numberAvailable``, ``numberUnavailable``, ``updatedNumberScheduled``,
``observedGeneration``. Simplified: no ControllerRevisions (the hash is computed from the
template), no ``maxSurge``, no burst limits.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api import taints
from k8sbook.client.events import EventRecorder
from k8sbook.client.informer import SharedIndexInformer, final_state, meta_namespace_key
from k8sbook.client.rest import Client
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.controlplane.controllers import (
    Obj,
    controller_of,
    is_pod_active,
    is_pod_ready,
    owner_key,
)
from k8sbook.controlplane.controllers.deployment_util import compute_hash, scaled_value
from k8sbook.controlplane.controllers.expectations import ControllerExpectations
from k8sbook.controlplane.scheduler.plugins.nodeaffinity import node_selector_term_matches

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


def node_should_run(ds: Obj, node: Obj) -> bool:
    """``NodeShouldRunDaemonPod``: selector, required affinity, taints."""
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
    return not taints.untolerated_taints(pod, node, ("NoSchedule", "NoExecute"))


class DaemonSetsController:
    def __init__(self, client: Client, ds_informer: SharedIndexInformer,
                 pod_informer: SharedIndexInformer, node_informer: SharedIndexInformer) -> None:
        self.client = client
        self.ds_informer, self.pod_informer, self.node_informer = \
            ds_informer, pod_informer, node_informer
        self.queue = RateLimitingQueue(client.clock, "daemonset")
        self.recorder = EventRecorder(client, NAME)
        self.expectations = ControllerExpectations()
        ds_informer.add_event_handler(self._enqueue, lambda old, new: self._enqueue(new))
        pod_informer.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        node_informer.add_event_handler(self._all, lambda old, new: self._all(new),
                                        lambda node: self._all(node))

    def run(self) -> None:
        self.queue.run_worker(self.sync)

    def stop(self) -> None:
        self.queue.shut_down()

    def _enqueue(self, ds: Obj) -> None:
        self.queue.add(meta_namespace_key(ds))

    def _all(self, node: Any) -> None:
        for ds in self.ds_informer.lister():
            self._enqueue(ds)

    def _pod_changed(self, pod: Obj) -> str:
        if key := owner_key(pod, "DaemonSet"):
            self.queue.add(key)
            return key
        return ""

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod_changed(new)

    def _pod_added(self, pod: Obj) -> None:
        key = self._pod_changed(pod)
        if key:
            self.expectations.creation_observed(key)

    def _pod_deleted(self, pod: Any) -> None:
        key = self._pod_changed(final_state(pod))
        if key:
            self.expectations.deletion_observed(key)

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

    def sync(self, key: Any) -> None:
        """``syncDaemonSet``: ``manage``, then ``updateDaemonSetStatus``."""
        ds = self.ds_informer.get(key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        uid, ns = ds["metadata"]["uid"], ds["metadata"]["namespace"]
        h = compute_hash(ds["spec"]["template"])
        by_node: dict[str, list[Obj]] = {}
        for pod in self.pod_informer.indexer.by_index("namespace", ns):
            if (controller_of(pod) or {}).get("uid") == uid and \
                    not pod["metadata"].get("deletionTimestamp"):
                by_node.setdefault(self.node_of(pod), []).append(pod)
        nodes = sorted(self.node_informer.lister(), key=lambda n: n["metadata"]["name"])
        if not self.expectations.satisfied(key, self.client.clock.now()):
            self._update_status(ds, nodes, by_node, h)
            return
        creates: list[str] = []
        deletes: list[Obj] = []
        outdated: list[Obj] = []
        unavailable = 0
        for node in nodes:
            name = node["metadata"]["name"]
            pods = by_node.get(name, [])
            if not node_should_run(ds, node):
                deletes += pods
                continue
            alive = sorted((p for p in pods if p.get("status", {}).get("phase") != "Failed"),
                           key=lambda p: (p["metadata"].get("labels") or {}).get(
                               REVISION_LABEL) != h)  # the current revision first
            deletes += [p for p in pods if p not in alive[:1]]
            if not alive:
                creates.append(name)
                unavailable += 1
                continue
            unavailable += not is_pod_ready(alive[0])
            if (alive[0]["metadata"].get("labels") or {}).get(REVISION_LABEL) != h:
                outdated.append(alive[0])
        deletes += self._rolling_update(ds, outdated, unavailable, len(nodes))
        now = self.client.clock.now()
        if creates:
            self.expectations.expect_creations(key, len(creates), now)
        elif deletes:
            self.expectations.expect_deletions(key, len(deletes), now)
        for name in creates:
            self._create(ds, name, h)
        if not creates:  # syncNodes: creations and deletions are separate rounds here
            for pod in deletes:
                self._delete(ds, pod)
        self._update_status(ds, nodes, by_node, h)

    @staticmethod
    def _rolling_update(ds: Obj, outdated: list[Obj], unavailable: int, nodes: int) -> list[Obj]:
        """``rollingUpdate``: old pods that are not ready go at once; ready ones only while
        fewer than ``maxUnavailable`` (default 1) daemon pods are unavailable."""
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return []  # OnDelete: a pod of the old template stays until someone deletes it
        raw = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1)
        limit = scaled_value(raw, nodes, True) if isinstance(raw, str) else int(raw)
        out = [p for p in outdated if not is_pod_ready(p)]
        for pod in (p for p in outdated if is_pod_ready(p)):
            if unavailable >= limit:
                break
            out.append(pod)
            unavailable += 1
        return out

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
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                              "name": dm["name"], "uid": dm["uid"],
                                              "controller": True, "blockOwnerDeletion": True}]}
        if meta.get("annotations"):
            pod_meta["annotations"] = dict(meta["annotations"])
        pod = self.client.create({"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
                                  "spec": spec})
        self.recorder.event(ds, "Normal", "SuccessfulCreate",
                            f"Created pod: {pod['metadata']['name']}")

    def _delete(self, ds: Obj, pod: Obj) -> None:
        self.client.delete("pods", pod["metadata"]["name"], pod["metadata"]["namespace"])
        self.recorder.event(ds, "Normal", "SuccessfulDelete",
                            f"Deleted pod: {pod['metadata']['name']}")

    def _update_status(self, ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]],
                       h: str) -> None:
        desired = current = misscheduled = ready = updated = 0
        for node in nodes:
            pods = [p for p in by_node.get(node["metadata"]["name"], []) if is_pod_active(p)]
            if node_should_run(ds, node):
                desired += 1
                if pods:
                    current += 1
                    ready += is_pod_ready(pods[0])
                    updated += (pods[0]["metadata"].get("labels") or {}).get(
                        REVISION_LABEL) == h
            elif pods:
                misscheduled += 1
        status = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                  "desiredNumberScheduled": desired, "numberReady": ready,
                  "observedGeneration": ds["metadata"].get("generation", 1),
                  "updatedNumberScheduled": updated, "numberAvailable": ready}
        if desired - ready:
            status["numberUnavailable"] = desired - ready
        if status == ds.get("status"):
            return
        new = copy.deepcopy(ds)
        new["status"] = status
        self.client.update_status(new)
