"""The Deployment controller: a Deployment's rollouts, as ReplicaSets it scales.

Mirrors ``pkg/controller/deployment`` (``deployment_controller.go``, ``sync.go``,
``rolling.go``, ``progress.go``, ``util/deployment_util.go``). Handlers on the shared
Deployment and ReplicaSet informers queue the Deployment's key; ``syncDeployment`` then

* finds the ReplicaSets it controls (``ownerReferences``) and the *new* one, whose template
  equals the Deployment's once the ``pod-template-hash`` label is ignored. If there is none it
  creates ``<deployment>-<hash>`` with the label ``pod-template-hash=<hash>`` on the template
  and in the selector, owned by the Deployment (``controller``, ``blockOwnerDeletion``), and
  the annotations ``deployment.kubernetes.io/revision`` (one more than the highest),
  ``desired-replicas`` and ``max-replicas``;
* on a pure scale (``desired-replicas`` differs) or while ``spec.paused``, only resizes
  (``sync``, ``scale``): the single active ReplicaSet takes the new size; in the middle of a
  rolling update the change is spread over all active ReplicaSets in proportion to their
  sizes (*proportional scaling*: each gets ``round(size * (replicas + maxSurge) /
  max-replicas) - size`` more, bounded by what is left to hand out, larger ones first; what
  rounding leaves over goes to the largest), so a scale-up does not all land on a new
  ReplicaSet that may be broken;
* otherwise rolls (``rolloutRolling``): the new ReplicaSet grows while all pods stay within
  ``replicas + maxSurge`` (rounded up), old ones shrink while ``replicas - maxUnavailable``
  (rounded down; both 25 % by default; 1 unavailable if both resolve to 0) stay available;
  each resize is an Event ``ScalingReplicaSet`` ``Scaled up replica set web-7d4b9 from 0 to
  1``; with ``strategy: Recreate`` (``rolloutRecreate``) the old ones go to 0 and the new
  one grows only once no old pod is left running (the pod informer tells). A finished
  rollout deletes old empty ReplicaSets beyond ``revisionHistoryLimit``;
* writes ``status`` (``observedGeneration``, ``replicas``, ``updatedReplicas``,
  ``readyReplicas``, ``availableReplicas``, ``unavailableReplicas``) and the conditions
  ``Available`` (``MinimumReplicasAvailable``/``MinimumReplicasUnavailable``) and
  ``Progressing`` (``NewReplicaSetCreated``, ``FoundNewReplicaSet``, ``ReplicaSetUpdated``,
  ``NewReplicaSetAvailable``, ``ProgressDeadlineExceeded`` after
  ``progressDeadlineSeconds``, ``DeploymentPaused``/``DeploymentResumed``), which is what
  ``kubectl rollout status`` waits on.

The module is over 400 lines because ``syncDeployment`` with its three strategies (scale,
rolling, recreate), the new ReplicaSet's creation and the status and its conditions share one
Deployment copy per sync; the pure parts live in ``deployment_util``.

Rollback is client-side since ``apps/v1`` (:func:`k8sbook.client.kubectl_rollout.rollout_undo`).
Simplified: the hash is FNV-32a over the template's JSON (upstream hashes Go's printout of
the struct), so names differ from a real cluster's; no adoption
of orphaned ReplicaSets; ``minReadySeconds`` is 0; one worker.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.client.informer import SharedIndexInformer, final_state, meta_namespace_key
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj, QueueController, controller_of, controller_ref
from k8sbook.controlplane.controllers.deployment_util import (
    DESIRED,
    HASH_LABEL,
    HISTORY,
    MAX_REPLICAS,
    REVISION,
    compute_hash,
    deployment_complete,
    deployment_progressing,
    fenceposts,
    find_active_or_latest,
    find_new_replicaset,
    get_condition,
    is_saturated,
    is_scaling_event,
    new_rs_new_replicas,
    proportional_sizes,
    replicas_of,
    revision,
    set_condition,
    status_of,
    without_hash,
)
from k8sbook.core.status import StatusError

NAME = "deployment-controller"


class DeploymentController(QueueController):
    def __init__(self, client: Client, d_informer: SharedIndexInformer,
                 rs_informer: SharedIndexInformer, pod_informer: SharedIndexInformer) -> None:
        super().__init__(client, "deployment", NAME)
        self.d_informer, self.rs_informer, self.pod_informer = \
            d_informer, rs_informer, pod_informer
        d_informer.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new),
                                     lambda d: self.enqueue(final_state(d)))
        rs_informer.add_event_handler(self._rs_changed, lambda old, new: self._rs_changed(new),
                                      lambda rs: self._rs_changed(final_state(rs)))
        pod_informer.add_event_handler(on_delete=self._pod_deleted)

    def _rs_changed(self, rs: Obj) -> None:
        self.enqueue_owner(rs, "Deployment")

    def _pod_deleted(self, pod: Any) -> None:
        """``deletePod``: a ``Recreate`` rollout waits for the old pods to be gone."""
        pod = final_state(pod)
        ns = pod["metadata"]["namespace"]
        ref = controller_of(pod)
        rs = self.rs_informer.get(f"{ns}/{ref['name']}") if ref and \
            ref.get("kind") == "ReplicaSet" else None
        owner = controller_of(rs) if rs else None
        d = self.d_informer.get(f"{ns}/{owner['name']}") if owner and \
            owner.get("kind") == "Deployment" else None
        if d and (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            self.enqueue(d)

    # -- the sync ----------------------------------------------------------------------
    def owned(self, d: Obj) -> list[Obj]:
        uid = d["metadata"]["uid"]
        return sorted((rs for rs in self.rs_informer.indexer.by_index(
            "namespace", d["metadata"]["namespace"])
            if (controller_of(rs) or {}).get("uid") == uid),
            key=lambda rs: (rs["metadata"].get("creationTimestamp", ""),
                            rs["metadata"]["name"]))

    def sync(self, key: Any) -> None:
        """``syncDeployment``."""
        cached = self.d_informer.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        if not d["spec"].get("selector"):
            self.recorder.event(d, "Warning", "SelectingAll", "This deployment is selecting "
                                "all pods. A non-empty selector is required.")
            return
        rs_list = self.owned(d)
        if d["metadata"].get("deletionTimestamp"):
            self._sync_status(d, rs_list, find_new_replicaset(d, rs_list))
            return
        d = self._check_paused(d)
        new = find_new_replicaset(d, rs_list)
        if d["spec"].get("paused") or is_scaling_event(d, rs_list):
            self._scale(d, new, [rs for rs in rs_list if rs is not new])
            if d["spec"].get("paused"):
                self._cleanup(d, [rs for rs in rs_list if rs is not new])
            self._sync_status(d, self.owned(d), find_new_replicaset(d, self.owned(d)))
            return
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            self._rollout_recreate(d, rs_list)
        else:
            self._rollout_rolling(d, rs_list)

    def _rollout_recreate(self, d: Obj, rs_list: list[Obj]) -> None:
        """``rolloutRecreate``: every old pod is gone before the new ReplicaSet grows."""
        new = find_new_replicaset(d, rs_list)
        old = [rs for rs in rs_list if rs is not new]
        active = [rs for rs in old if replicas_of(rs) > 0]
        for rs in active:  # scaleDownOldReplicaSetsForRecreate
            self._scale_rs(d, rs, 0)
        uids = {rs["metadata"]["uid"] for rs in old}
        running = any((controller_of(p) or {}).get("uid") in uids and p.get("status", {}).get(
            "phase") not in ("Succeeded", "Failed") for p in self.pod_informer.indexer.by_index(
            "namespace", d["metadata"]["namespace"]))  # oldPodsRunning
        if active or running or any(status_of(rs, "replicas") for rs in old):
            self._sync_status(d, self.owned(d), new)
            return
        new, d = self._new_replicaset(d, rs_list)
        if replicas_of(new) != d["spec"].get("replicas", 1):
            new = self._scale_rs(d, new, d["spec"].get("replicas", 1))
        elif deployment_complete(d, self.calculate_status(d, old + [new], new)):
            self._cleanup(d, old)
        self._sync_status(d, self.owned(d), new)

    def _check_paused(self, d: Obj) -> Obj:
        """``checkPausedConditions``."""
        cond = get_condition(d, "Progressing")
        if cond and cond.get("reason") == "ProgressDeadlineExceeded":
            return d
        paused_cond = cond is not None and cond.get("reason") == "DeploymentPaused"
        if d["spec"].get("paused") and not paused_cond:
            set_condition(d, "Progressing", "Unknown", "DeploymentPaused",
                           "Deployment is paused", self.clock.timestamp())
        elif not d["spec"].get("paused") and paused_cond:
            set_condition(d, "Progressing", "Unknown", "DeploymentResumed",
                           "Deployment is resumed", self.clock.timestamp())
        else:
            return d
        return self.client.update_status(d)

    def _new_replicaset(self, d: Obj, rs_list: list[Obj]) -> tuple[Obj, Obj]:
        """``getNewReplicaSet`` with ``createIfNotExisted``: (the new RS, the Deployment)."""
        existing = find_new_replicaset(d, rs_list)
        new_revision = max([revision(rs) for rs in rs_list if rs is not existing] + [0]) + 1
        now = self.clock.timestamp()
        surge, _ = fenceposts(d)
        if existing is not None:
            rs = existing
            if revision(rs) < new_revision:  # a rollback to this template: now the newest
                rs = copy.deepcopy(rs)
                annotations = rs["metadata"].setdefault("annotations", {})
                if REVISION in annotations:
                    history = [h for h in annotations.get(HISTORY, "").split(",") if h]
                    annotations[HISTORY] = ",".join([*history, annotations[REVISION]])
                annotations[REVISION] = str(new_revision)
                rs = self.client.update(rs)
            needs = (d["metadata"].get("annotations") or {}).get(REVISION) != \
                rs["metadata"]["annotations"].get(REVISION)
            if get_condition(d, "Progressing") is None:
                set_condition(d, "Progressing", "True", "FoundNewReplicaSet",
                               f'Found new replica set "{rs["metadata"]["name"]}"', now)
                needs = True
            if needs:
                d["metadata"].setdefault("annotations", {})[REVISION] = \
                    rs["metadata"]["annotations"][REVISION]
                d = self.client.update_status(d)
            return rs, d
        template = copy.deepcopy(d["spec"]["template"])
        h = compute_hash(template, d.get("status", {}).get("collisionCount"))
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        meta = d["metadata"]
        replicas = d["spec"].get("replicas", 1)
        new_rs: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
            "name": f"{meta['name']}-{h}", "namespace": meta["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {**{k: v for k, v in (meta.get("annotations") or {}).items()
                               if not k.startswith("deployment.kubernetes.io/") and
                               k != "kubectl.kubernetes.io/last-applied-configuration"},
                            REVISION: str(new_revision), DESIRED: str(replicas),
                            MAX_REPLICAS: str(replicas + surge)},
            "ownerReferences": [controller_ref(d, "apps/v1", "Deployment")]},
            "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                     "selector": selector, "template": template}}
        new_rs["spec"]["replicas"] = new_rs_new_replicas(d, rs_list + [new_rs], new_rs)
        try:
            created = self.client.create(new_rs)
        except StatusError as err:
            if err.code != 409:
                raise
            # already there (our informer is behind): ours if the template is the same
            found = self.rs_informer.get(f"{meta['namespace']}/{new_rs['metadata']['name']}")
            if found is None or without_hash(found["spec"]["template"]) != \
                    without_hash(template):
                raise
            return found, d
        if replicas_of(created):
            self.recorder.event(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set "
                                f"{created['metadata']['name']} from 0 to {replicas_of(created)}")
        set_condition(d, "Progressing", "True", "NewReplicaSetCreated",
                       f'Created new replica set "{created["metadata"]["name"]}"', now)
        d["metadata"].setdefault("annotations", {})[REVISION] = str(new_revision)
        return created, self.client.update_status(d)

    def _scale_rs(self, d: Obj, rs: Obj, size: int, operation: str = "") -> Obj:
        """``scaleReplicaSetAndRecordEvent`` (``scaleReplicaSet`` when ``scale`` gives the
        direction of the whole Deployment as ``operation``): the size and the
        ``desired-replicas``/``max-replicas`` annotations, one update."""
        old = replicas_of(rs)
        surge, _ = fenceposts(d)
        replicas = d["spec"].get("replicas", 1)
        annotations = {DESIRED: str(replicas), MAX_REPLICAS: str(replicas + surge)}
        current = rs["metadata"].get("annotations") or {}
        if old == size and all(current.get(k) == v for k, v in annotations.items()):
            return rs
        new = copy.deepcopy(rs)
        new["spec"]["replicas"] = size
        new["metadata"].setdefault("annotations", {}).update(annotations)
        written = self.client.update(new)
        if old != size:
            self.recorder.event(d, "Normal", "ScalingReplicaSet", f"Scaled "
                                f"{operation or ('up' if size > old else 'down')} replica set "
                                f"{rs['metadata']['name']} from {old} to {size}")
        return written

    def _scale(self, d: Obj, new: Obj | None, old: list[Obj]) -> None:
        """``scale``: one active ReplicaSet (or none: the newest) takes the new size; a
        saturated new one leaves the old ones at 0; otherwise, in a rolling update, the
        difference to ``replicas + maxSurge`` is spread over the active ReplicaSets in
        proportion to their sizes (``GetProportion``), the largest first, and what rounding
        leaves over goes to the first of them."""
        replicas = d["spec"].get("replicas", 1)
        target = find_active_or_latest(new, old)
        if target is not None:
            if replicas_of(target) != replicas:
                self._scale_rs(d, target, replicas)
            return
        if is_saturated(d, new):
            for rs in old:
                if replicas_of(rs) > 0:
                    self._scale_rs(d, rs, 0)
            return
        if (d["spec"].get("strategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
            return
        sizes, operation = proportional_sizes(d, [rs for rs in [*old, new]
                                                  if rs is not None and replicas_of(rs) > 0])
        for rs, size in sizes:
            self._scale_rs(d, rs, size, operation)

    def _rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> None:
        """``rolloutRolling``."""
        new, d = self._new_replicaset(d, rs_list)
        old = [rs for rs in self.owned(d) if rs["metadata"]["uid"] != new["metadata"]["uid"]]
        replicas = d["spec"].get("replicas", 1)
        # reconcileNewReplicaSet, then reconcileOldReplicaSets: one step per sync
        if replicas_of(new) > replicas:
            new = self._scale_rs(d, new, replicas)
        elif replicas_of(new) < replicas and \
                new_rs_new_replicas(d, old + [new], new) != replicas_of(new):
            new = self._scale_rs(d, new, new_rs_new_replicas(d, old + [new], new))
        elif not self._scale_down_old(d, new, [rs for rs in old if replicas_of(rs) > 0]) and \
                deployment_complete(d, self.calculate_status(d, old + [new], new)):
            self._cleanup(d, old)
        self._sync_status(d, self.owned(d), new)

    def _scale_down_old(self, d: Obj, new: Obj, old: list[Obj]) -> bool:
        if not old:
            return False
        _, max_unavailable = fenceposts(d)
        min_available = d["spec"].get("replicas", 1) - max_unavailable
        all_pods = sum(replicas_of(rs) for rs in old) + replicas_of(new)
        new_unavailable = replicas_of(new) - status_of(new, "availableReplicas")
        budget = all_pods - min_available - new_unavailable
        if budget <= 0:
            return False
        scaled = 0
        for rs in old:  # cleanupUnhealthyReplicas: the unavailable pods of old sets go first
            unhealthy = replicas_of(rs) - status_of(rs, "availableReplicas")
            n = min(budget - scaled, unhealthy)
            if n > 0:
                self._scale_rs(d, rs, replicas_of(rs) - n)
                scaled += n
        if scaled:
            return True
        available = sum(status_of(rs, "availableReplicas") for rs in old + [new])
        total = available - min_available
        for rs in old:  # scaleDownOldReplicaSetsForRollingUpdate, oldest first
            if scaled >= total:
                break
            n = min(replicas_of(rs), total - scaled)
            self._scale_rs(d, rs, replicas_of(rs) - n)
            scaled += n
        return scaled > 0

    def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        """``cleanupDeployment``: old empty ReplicaSets beyond ``revisionHistoryLimit``."""
        limit = d["spec"].get("revisionHistoryLimit", 10)
        alive = sorted((rs for rs in old if not rs["metadata"].get("deletionTimestamp")),
                       key=revision)
        for rs in alive[:max(len(alive) - limit, 0)]:
            if replicas_of(rs) or status_of(rs, "replicas") or \
                    rs["metadata"].get("generation", 1) > status_of(rs, "observedGeneration"):
                continue
            try:
                self.client.delete("replicasets", rs["metadata"]["name"],
                                   rs["metadata"]["namespace"])
            except StatusError as err:
                if err.code != 404:
                    raise

    def calculate_status(self, d: Obj, all_rs: list[Obj], new: Obj | None) -> Obj:
        """``calculateStatus`` with the ``Available`` condition."""
        available = sum(status_of(rs, "availableReplicas") for rs in all_rs)
        total = sum(replicas_of(rs) for rs in all_rs)
        status = copy.deepcopy(d.get("status") or {})
        status.update({"observedGeneration": d["metadata"].get("generation", 1),
                       "replicas": sum(status_of(rs, "replicas") for rs in all_rs),
                       "updatedReplicas": status_of(new, "replicas"),
                       "readyReplicas": sum(status_of(rs, "readyReplicas") for rs in all_rs),
                       "availableReplicas": available,
                       "unavailableReplicas": max(total - available, 0)})
        holder = {"status": status}
        _, max_unavailable = fenceposts(d)
        if available >= d["spec"].get("replicas", 1) - max_unavailable:
            set_condition(holder, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", self.clock.timestamp())
        else:
            set_condition(holder, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.",
                           self.clock.timestamp())
        return status

    def _sync_status(self, d: Obj, all_rs: list[Obj], new: Obj | None) -> None:
        """``syncRolloutStatus``: the status and the ``Progressing`` condition."""
        status = self.calculate_status(d, all_rs, new)
        holder = {"status": status}
        cond = get_condition(holder, "Progressing")
        deadline = d["spec"].get("progressDeadlineSeconds")
        name = new["metadata"]["name"] if new else ""
        now = self.clock.timestamp()
        done = status["replicas"] == status["updatedReplicas"] and cond is not None and \
            cond.get("reason") == "NewReplicaSetAvailable"
        if deadline is not None and not d["spec"].get("paused") and not done and new:
            if deployment_complete(d, status):
                set_condition(holder, "Progressing", "True", "NewReplicaSetAvailable",
                               f'ReplicaSet "{name}" has successfully progressed.', now)
            elif deployment_progressing(d, status):
                set_condition(holder, "Progressing", "True", "ReplicaSetUpdated",
                               f'ReplicaSet "{name}" is progressing.', now, update=True)
            elif cond is not None and cond.get("reason") != "ProgressDeadlineExceeded" and \
                    self.clock.parse(cond["lastUpdateTime"]) + deadline < self.clock.now():
                set_condition(holder, "Progressing", "False", "ProgressDeadlineExceeded",
                               f'ReplicaSet "{name}" has timed out progressing.', now)
            cond = get_condition(holder, "Progressing")
            if cond is not None and cond.get("reason") not in (
                    "NewReplicaSetAvailable", "ProgressDeadlineExceeded"):
                # requeueStuckDeployment: look again when the deadline would pass
                left = self.clock.parse(cond["lastUpdateTime"]) + deadline - self.clock.now()
                self.queue.add_after(meta_namespace_key(d), max(left, 0) + 1)
        if status != d.get("status"):
            d = copy.deepcopy(d)
            d["status"] = status
            self.client.update_status(d)


