"""The StatefulSet controller: pods with stable names, made and removed in order.

Mirrors ``pkg/controller/statefulset`` (``stateful_set.go``, ``stateful_set_control.go``'s
``updateStatefulSet``, ``stateful_pod_control.go``, ``stateful_set_utils.go``). Handlers on
the shared StatefulSet and Pod informers queue the set's key. Each pod is
``<set>-<ordinal>`` (``getPodName``) with the template's labels plus
``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index`` and
``controller-revision-hash``, ``hostname`` its name and ``subdomain`` the set's
``serviceName``, so its DNS name stays the same when it is replaced. For each of
``volumeClaimTemplates`` the pod gets the claim ``<template>-<set>-<ordinal>``, created
before the pod and kept when the pod goes (``persistentVolumeClaimRetentionPolicy``
``Retain``).

With ``podManagementPolicy: OrderedReady`` (the default) a sync creates at most one pod and
only when every lower ordinal is Running and Ready; it scales down from the highest ordinal,
one pod at a time, and only when all the others are healthy. ``Parallel`` creates and deletes
them all at once. A failed pod is deleted and made again with the same name. Events are
upstream's: ``SuccessfulCreate`` ``create Pod web-0 in StatefulSet web successful``,
``create Claim data-web-0 Pod web-0 in StatefulSet web success``, ``SuccessfulDelete``.

Each template the set has run is a ``ControllerRevision`` (``getStatefulSetRevisions``,
``newRevision``; :mod:`~k8sbook.controlplane.controllers.history`): named
``<set>-<hash>`` with upstream's ``HashControllerRevision`` (FNV-1 of the ``data`` bytes and
the collision count), labelled with the template's labels and
``controller.kubernetes.io/hash``, carrying the set's annotations, owned by the set, numbered
by ``revision``. The revision equal to the current template is the *update revision*; a
template that comes back renumbers its old revision rather than making a new one. Each pod's
``controller-revision-hash`` label names the revision it was made from, and a missing pod is
made from the revision it should run (``newVersionedStatefulSetPod``: below ``partition`` the
*current revision*, otherwise the update revision), applied to the set (``ApplyRevision``).

A changed template rolls out with ``updateStrategy: RollingUpdate`` (the default): from the
highest ordinal down to ``partition``, one pod at a time, each replaced once the ones above
it are healthy again; ``currentRevision`` becomes ``updateRevision`` once every pod runs the
update revision and is ready (``completeRollingUpdate``), which a partition or ``OnDelete``
(pods replaced only when someone deletes them) put off. Revisions no pod runs, other than
the current and update ones, are deleted beyond ``revisionHistoryLimit`` (default 10),
oldest first (``truncateHistory``). ``kubectl rollout status|history|undo statefulset`` read
the status and the revisions.

Simplified: ``minReadySeconds`` counts only toward ``availableReplicas``; no
``ordinals.start``, ``maxUnavailable`` (``MaxUnavailableStatefulSet``) or adoption of
orphaned pods and revisions.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.client.informer import SharedIndexInformer, final_state
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
from k8sbook.controlplane.controllers.history import (
    History,
    equal_revision,
    get_patch,
    new_controller_revision,
    next_revision,
    sort_revisions,
    template_of,
)
from k8sbook.core.status import StatusError

NAME = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"


def ordinal(set_name: str, pod: Obj) -> int:
    """``getOrdinal``: the number after the set's name and a dash, or -1."""
    rest = pod["metadata"]["name"][len(set_name) + 1:]
    return int(rest) if pod["metadata"]["name"].startswith(set_name + "-") and \
        rest.isdigit() else -1


def _healthy(pod: Obj) -> bool:
    """``isRunningAndReady`` and not terminating."""
    return pod.get("status", {}).get("phase") == "Running" and is_pod_ready(pod) and \
        not pod["metadata"].get("deletionTimestamp")


def _revision_of(pod: Obj) -> str:
    """``getPodRevision``: the revision a pod was made from."""
    return str((pod["metadata"].get("labels") or {}).get(REVISION_LABEL, ""))


def apply_revision(sts: Obj, revision: Obj) -> Obj:
    """``ApplyRevision``: the set with the revision's template."""
    out = copy.deepcopy(sts)
    out["spec"]["template"] = template_of(revision)
    return out


class StatefulSetController(QueueController):
    def __init__(self, client: Client, set_informer: SharedIndexInformer,
                 pod_informer: SharedIndexInformer,
                 history_informer: SharedIndexInformer) -> None:
        super().__init__(client, "statefulset", NAME)
        self.set_informer, self.pod_informer = set_informer, pod_informer
        self.history = History(client, history_informer)
        set_informer.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new))
        pod_informer.add_event_handler(self._pod_changed, lambda old, new: self._pod_changed(new),
                                       lambda pod: self._pod_changed(final_state(pod)))
        history_informer.add_event_handler(
            self._pod_changed, lambda old, new: self._pod_changed(new),
            lambda rev: self._pod_changed(final_state(rev)))

    def _pod_changed(self, obj: Obj) -> None:
        self.enqueue_owner(obj, "StatefulSet")

    def revisions(self, sts: Obj) -> tuple[Obj, Obj, int, list[Obj]]:
        """``getStatefulSetRevisions``: (current, update, collision count, all revisions)."""
        revisions = self.history.list(sts)
        collision = int((sts.get("status") or {}).get("collisionCount") or 0)
        update = new_controller_revision(sts, "StatefulSet", get_patch(sts),
                                         next_revision(revisions), collision)
        if sts["metadata"].get("annotations"):
            update["metadata"]["annotations"] = dict(sts["metadata"]["annotations"])
        equal = [r for r in revisions if equal_revision(r, update)]
        if equal and equal_revision(revisions[-1], equal[-1]):
            update = revisions[-1]  # the template has not changed
        elif equal:  # an older template is back: renumber its revision
            update = self.history.update(equal[-1], update["revision"])
            revisions = sort_revisions([update if r is equal[-1] else r for r in revisions])
        else:
            update, collision = self.history.create(sts, update, collision)
            revisions = revisions + [update]
        want = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if r["metadata"]["name"] == want), update)
        return current, update, collision, revisions

    def sync(self, key: Any) -> None:
        """``UpdateStatefulSet``: revisions, ``updateStatefulSet`` (scaling, then the rolling
        update), ``updateStatefulSetStatus``, ``truncateHistory``."""
        sts = self.set_informer.get(key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        name, uid = sts["metadata"]["name"], sts["metadata"]["uid"]
        current, update, collision, revisions = self.revisions(sts)
        pods = {ordinal(name, p): p for p in self.pod_informer.indexer.by_index(
            "namespace", sts["metadata"]["namespace"])
            if (controller_of(p) or {}).get("uid") == uid and ordinal(name, p) >= 0}
        replicas = sts["spec"].get("replicas", 1)
        ordered = sts["spec"].get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        for i in range(replicas):  # the pods that should exist, lowest first
            pod = pods.get(i)
            if pod is not None and pod.get("status", {}).get("phase") == "Failed" and \
                    not pod["metadata"].get("deletionTimestamp"):
                self._delete(sts, pod)  # made again with the same name once it is gone
                if ordered:
                    break
                continue
            if pod is None:
                self._create(sts, i, current, update)
                if ordered:
                    break
                continue
            if ordered and not _healthy(pod):
                break  # wait for it before the next ordinal
        else:
            condemned = sorted((i for i in pods if i >= replicas), reverse=True)
            healthy = all(_healthy(pods[i]) for i in pods if i < replicas)
            for i in condemned:  # the highest ordinal first
                if ordered and (not healthy or pods[i]["metadata"].get("deletionTimestamp")):
                    break
                if not pods[i]["metadata"].get("deletionTimestamp"):
                    self._delete(sts, pods[i])
                if ordered:
                    break
            if not condemned:
                self._roll(sts, pods, replicas, update["metadata"]["name"])
        self._update_status(sts, list(pods.values()), current, update, collision)
        self._truncate_history(sts, list(pods.values()), revisions, current, update)

    def _roll(self, sts: Obj, pods: dict[int, Obj], replicas: int, revision: str) -> None:
        """``RollingUpdate``: from the highest ordinal down to ``partition``, one pod of an
        old revision at a time is deleted (and made again from the update revision), each
        once every higher one is healthy. ``OnDelete`` waits for someone else to delete them."""
        strategy = sts["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        for i in range(replicas - 1, partition - 1, -1):
            pod = pods[i]
            if _revision_of(pod) != revision:
                if not pod["metadata"].get("deletionTimestamp"):
                    self._delete(sts, pod)
                return
            if not _healthy(pod):
                return

    def _create(self, sts: Obj, i: int, current: Obj, update: Obj) -> None:
        """``newVersionedStatefulSetPod`` + ``CreateStatefulPod``: claims first. Below the
        partition (or, without ``rollingUpdate``, below ``currentReplicas``) the pod is made
        from the current revision, otherwise from the update revision."""
        strategy = sts["spec"].get("updateStrategy") or {}
        ru = strategy.get("rollingUpdate")
        old = (strategy.get("type", "RollingUpdate") == "RollingUpdate" and ru is None and
               i < int((sts.get("status") or {}).get("currentReplicas") or 0)) or \
            (ru is not None and i < int(ru.get("partition") or 0))
        revision = current if old else update
        versioned = apply_revision(sts, revision)
        meta, spec = sts["metadata"], sts["spec"]
        pod_name = f"{meta['name']}-{i}"
        tmpl = versioned["spec"]["template"]
        pod_spec = tmpl.get("spec", {})
        for claim in spec.get("volumeClaimTemplates") or []:
            claim_name = f"{claim['metadata']['name']}-{pod_name}"
            pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {
                "name": claim_name, "namespace": meta["namespace"],
                "labels": dict((spec.get("selector") or {}).get("matchLabels") or {})},
                "spec": copy.deepcopy(claim.get("spec", {}))}
            try:
                self.client.create(pvc)
                self.recorder.event(sts, "Normal", "SuccessfulCreate", f"create Claim "
                                    f"{claim_name} Pod {pod_name} in StatefulSet "
                                    f"{meta['name']} success")
            except StatusError as err:
                if err.code != 409:
                    raise
            vols = [v for v in pod_spec.get("volumes", []) if v["name"] !=
                    claim["metadata"]["name"]]
            pod_spec["volumes"] = vols + [{"name": claim["metadata"]["name"],
                                           "persistentVolumeClaim": {"claimName": claim_name}}]
        pod_spec["hostname"] = pod_name
        if spec.get("serviceName"):
            pod_spec["subdomain"] = spec["serviceName"]
        labels = {**((tmpl.get("metadata") or {}).get("labels") or {}),
                  POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(i),
                  REVISION_LABEL: revision["metadata"]["name"]}
        pod_meta: Obj = {"name": pod_name, "namespace": meta["namespace"], "labels": labels,
                         "ownerReferences": [controller_ref(sts, "apps/v1", "StatefulSet")]}
        if (tmpl.get("metadata") or {}).get("annotations"):
            pod_meta["annotations"] = dict(tmpl["metadata"]["annotations"])
        try:
            self.client.create({"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
                                "spec": pod_spec})
        except StatusError as err:
            if err.code == 409:  # the informer has not seen it yet
                return
            raise
        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                            f"create Pod {pod_name} in StatefulSet {meta['name']} successful")

    def _delete(self, sts: Obj, pod: Obj) -> None:
        try:
            self.client.delete("pods", pod["metadata"]["name"], pod["metadata"]["namespace"])
        except StatusError as err:
            if err.code != 404:
                raise
            return
        self.recorder.event(sts, "Normal", "SuccessfulDelete", f"delete Pod "
                            f"{pod['metadata']['name']} in StatefulSet "
                            f"{sts['metadata']['name']} successful")

    def _update_status(self, sts: Obj, pods: list[Obj], current: Obj, update: Obj,
                       collision: int) -> None:
        """``updateStatus`` over the pods, then ``completeRollingUpdate``."""
        min_ready = int(sts["spec"].get("minReadySeconds", 0))
        cur, upd = current["metadata"]["name"], update["metadata"]["name"]
        created = [p for p in pods if (p.get("status") or {}).get("phase")]
        live = [p for p in created if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in pods if p.get("status", {}).get("phase") == "Running" and
                 is_pod_ready(p)]
        status: Obj = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(created), "readyReplicas": len(ready),
            "currentReplicas": sum(1 for p in live if _revision_of(p) == cur),
            "updatedReplicas": sum(1 for p in live if _revision_of(p) == upd),
            "currentRevision": cur, "updateRevision": upd, "collisionCount": collision,
            "availableReplicas": sum(1 for p in ready if is_pod_available(
                p, min_ready, self.clock.now(), self.clock.parse))}
        strategy = (sts["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy == "RollingUpdate" and \
                status["updatedReplicas"] == status["replicas"] == status["readyReplicas"]:
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = upd
        omit_empty(status, "readyReplicas", "currentReplicas", "updatedReplicas")
        self.write_status(sts, status, requeue=False)

    def _truncate_history(self, sts: Obj, pods: list[Obj], revisions: list[Obj],
                          current: Obj, update: Obj) -> None:
        """``truncateHistory``: revisions no pod runs, beyond ``revisionHistoryLimit``."""
        live = {current["metadata"]["name"], update["metadata"]["name"]} | \
            {_revision_of(p) for p in pods}
        history = [r for r in revisions if r["metadata"]["name"] not in live]
        extra = len(history) - int(sts["spec"].get("revisionHistoryLimit", 10))
        for rev in history[:max(extra, 0)]:
            self.history.delete(rev)
