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

A changed template rolls out with ``updateStrategy: RollingUpdate`` (the default): from the
highest ordinal down to ``partition``, one pod at a time, each replaced once the ones above
it are healthy again; ``currentRevision`` becomes ``updateRevision`` when all pods run it.

Simplified: no ControllerRevisions (the revision is ``<set>-<hash of the template>``, and a
pod is remade from the set's current template), ``minReadySeconds`` 0, no
``ordinals.start``.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.client.events import EventRecorder
from k8sbook.client.informer import SharedIndexInformer, final_state, meta_namespace_key
from k8sbook.client.rest import Client
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.controlplane.controllers import Obj, controller_of, is_pod_ready, owner_key
from k8sbook.controlplane.controllers.deployment_util import compute_hash
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


class StatefulSetController:
    def __init__(self, client: Client, set_informer: SharedIndexInformer,
                 pod_informer: SharedIndexInformer) -> None:
        self.client = client
        self.set_informer, self.pod_informer = set_informer, pod_informer
        self.queue = RateLimitingQueue(client.clock, "statefulset")
        self.recorder = EventRecorder(client, NAME)
        set_informer.add_event_handler(self._enqueue, lambda old, new: self._enqueue(new))
        pod_informer.add_event_handler(self._pod_changed, lambda old, new: self._pod_changed(new),
                                       lambda pod: self._pod_changed(final_state(pod)))

    def run(self) -> None:
        self.queue.run_worker(self.sync)

    def stop(self) -> None:
        self.queue.shut_down()

    def _enqueue(self, sts: Obj) -> None:
        self.queue.add(meta_namespace_key(sts))

    def _pod_changed(self, pod: Obj) -> None:
        if key := owner_key(pod, "StatefulSet"):
            self.queue.add(key)

    def sync(self, key: Any) -> None:
        """``updateStatefulSet`` for scaling, then ``updateStatefulSetStatus``."""
        sts = self.set_informer.get(key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        name, uid = sts["metadata"]["name"], sts["metadata"]["uid"]
        revision = f"{name}-{compute_hash(sts['spec']['template'])}"
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
                self._create(sts, i, revision)
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
                self._roll(sts, pods, replicas, revision)
        self._update_status(sts, list(pods.values()), revision)

    def _roll(self, sts: Obj, pods: dict[int, Obj], replicas: int, revision: str) -> None:
        """``RollingUpdate``: from the highest ordinal down to ``partition``, one pod of an
        old revision at a time is deleted (and made again from the new template), each once
        every higher one is healthy. ``OnDelete`` waits for someone else to delete them."""
        strategy = sts["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        for i in range(replicas - 1, partition - 1, -1):
            pod = pods[i]
            if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision:
                if not pod["metadata"].get("deletionTimestamp"):
                    self._delete(sts, pod)
                return
            if not _healthy(pod):
                return

    def _create(self, sts: Obj, i: int, revision: str) -> None:
        """``newVersionedStatefulSetPod`` + ``CreateStatefulPod``: claims first."""
        meta, spec = sts["metadata"], sts["spec"]
        pod_name = f"{meta['name']}-{i}"
        tmpl = copy.deepcopy(spec["template"])
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
                  POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(i), REVISION_LABEL: revision}
        pod_meta: Obj = {"name": pod_name, "namespace": meta["namespace"], "labels": labels,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                              "name": meta["name"], "uid": meta["uid"],
                                              "controller": True, "blockOwnerDeletion": True}]}
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

    def _update_status(self, sts: Obj, pods: list[Obj], revision: str) -> None:
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in live if is_pod_ready(p))
        def count(rev: str) -> int:
            return sum(1 for p in live if (p["metadata"].get("labels") or {}).get(
                REVISION_LABEL) == rev)
        updated = count(revision)
        # the current revision becomes the update revision once every pod runs it
        current = revision if updated == len(live) else \
            (sts.get("status") or {}).get("currentRevision") or revision
        status = {"observedGeneration": sts["metadata"].get("generation", 1),
                  "replicas": len(live), "readyReplicas": ready,
                  "currentReplicas": count(current), "updatedReplicas": updated,
                  "currentRevision": current, "updateRevision": revision, "collisionCount": 0,
                  "availableReplicas": ready}
        if status == sts.get("status"):
            return
        new = copy.deepcopy(sts)
        new["status"] = status
        try:
            self.client.update_status(new)
        except StatusError as err:
            if err.code != 409:
                raise
