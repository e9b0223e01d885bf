"""The ReplicaSet controller.

Mirrors ``pkg/controller/replicaset/replica_set.go``: event handlers on the shared ReplicaSet
and Pod informers turn every change into a ReplicaSet key on a rate-limited work queue; a
worker runs ``syncReplicaSet`` for each key. The sync is level-triggered: it compares what it
sees in the informer caches (the Pods the ReplicaSet owns, found by its selector and their
``ownerReferences``) with ``spec.replicas`` and creates or deletes the difference, then writes
``status`` through the ``status`` subresource. ``ControllerExpectations`` stop it from acting
twice on the same change before its informer has caught up.

Pods are created from the template with ``generateName: <rs>-`` and an ownerReference with
``controller: true`` and ``blockOwnerDeletion: true``; creations go in slow-start batches
(1, 2, 4 ...) and are reported as ``SuccessfulCreate`` Events; surplus pods are chosen with
the real ranking (unscheduled before scheduled, pending before running, not ready before ready,
newest first) and reported as ``SuccessfulDelete``.

Simplified: no adoption/release of orphans (``ClaimPods``), ``minReadySeconds`` is 0
(available means ready), no ``terminatingReplicas``, and one worker instead of five
(``--concurrent-replicaset-syncs``).
"""

from __future__ import annotations

from typing import Any

from k8sbook.api.selectors import from_label_selector, matches
from k8sbook.client.informer import (
    SharedIndexInformer,
    final_state,
    meta_namespace_key,
)
from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import (
    POD_CONTROLLER_UID_INDEX,
    Obj,
    QueueController,
    add_pod_controller_uid_indexer,
    controller_of,
    is_pod_active,
    is_pod_ready,
    pod_from_template,
)
from k8sbook.controlplane.controllers.expectations import ControllerExpectations
from k8sbook.core.status import StatusError

#: ``BurstReplicas``: at most this many creations or deletions per sync
BURST_REPLICAS = 500
#: ``controller.SlowStartInitialBatchSize``
SLOW_START_INITIAL_BATCH_SIZE = 1
NAME = "replicaset-controller"


class ReplicaSetController(QueueController):
    def __init__(self, client: Client, rs_informer: SharedIndexInformer,
                 pod_informer: SharedIndexInformer) -> None:
        super().__init__(client, "replicaset", NAME)
        self.rs_informer = rs_informer
        self.pod_informer = pod_informer
        self.expectations = ControllerExpectations()
        #: (time, key, action) for every decision, for chapters and tests
        self.log: list[tuple[float, str, str]] = []
        add_pod_controller_uid_indexer(pod_informer.indexer)
        rs_informer.add_event_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        pod_informer.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # -- event handlers ----------------------------------------------------------------
    def _rs_added(self, rs: Obj) -> None:
        self.enqueue(rs)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        self.enqueue(new)

    def _rs_deleted(self, rs: Any) -> None:
        key = meta_namespace_key(final_state(rs))
        self.expectations.delete(key)
        self.queue.add(key)

    def _owner_key(self, pod: Obj) -> str | None:
        ref = controller_of(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return None
        key = f"{pod['metadata']['namespace']}/{ref['name']}"
        rs = self.rs_informer.get(key)
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return None
        return key

    def _pod_added(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key:
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return  # a periodic resync or a relist: nothing changed
        key = self._owner_key(new)
        if key:
            self.queue.add(key)

    def _pod_deleted(self, pod: Any) -> None:
        key = self._owner_key(final_state(pod))
        if key:
            self.expectations.deletion_observed(key)
            self.queue.add(key)

    # -- the sync ----------------------------------------------------------------------
    def owned_pods(self, rs: Obj) -> list[Obj]:
        """``getRSPods``: the pods whose controller is this ReplicaSet (read from the pod
        informer's ``podControllerUID`` index), in its namespace, matching its selector."""
        ns, uid = rs["metadata"]["namespace"], rs["metadata"]["uid"]
        candidates = self.pod_informer.indexer.by_index(POD_CONTROLLER_UID_INDEX, uid)
        if not candidates:
            return []
        selector = from_label_selector(rs["spec"].get("selector"))  # parsed once per sync
        return [pod for pod in candidates if pod["metadata"].get("namespace") == ns
                and matches(selector, pod["metadata"].get("labels"))]

    def sync(self, key: Any) -> None:
        """``syncReplicaSet``."""
        now = self.client.clock.now()
        rs = self.rs_informer.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        needs_sync = self.expectations.satisfied(key, now)
        pods = [p for p in self.owned_pods(rs) if is_pod_active(p)]
        error: Exception | None = None
        if needs_sync and not rs["metadata"].get("deletionTimestamp"):
            try:
                self.manage_replicas(pods, rs, key)
            except (StatusError, DialError) as err:
                error = err
        self.update_status(rs, pods)
        if error is not None:
            raise error

    def manage_replicas(self, pods: list[Obj], rs: Obj, key: str) -> None:
        diff = len(pods) - rs["spec"].get("replicas", 1)
        now = self.client.clock.now()
        if diff < 0:
            n = min(-diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, n, now)
            created = 0
            batch = SLOW_START_INITIAL_BATCH_SIZE
            while created < n:
                size = min(batch, n - created)
                for _ in range(size):
                    try:
                        pod = self.client.create(self.pod_from_template(rs))
                    except (StatusError, DialError):
                        # the pods that will never be created are not expected any more
                        for _ in range(n - created):
                            self.expectations.creation_observed(key)
                        raise
                    created += 1
                    self.log.append((now, key, f"create {pod['metadata']['name']}"))
                    self.recorder.event(rs, "Normal", "SuccessfulCreate",
                                        f"Created pod: {pod['metadata']['name']}")
                batch *= 2
        elif diff > 0:
            n = min(diff, BURST_REPLICAS)
            victims = sorted(pods, key=_deletion_rank)[:n]
            self.expectations.expect_deletions(key, n, now)
            for pod in victims:
                name = pod["metadata"]["name"]
                try:
                    self.client.delete("pods", name, pod["metadata"]["namespace"])
                except StatusError as err:
                    if err.code != 404:
                        self.expectations.deletion_observed(key)
                        raise
                self.log.append((now, key, f"delete {name}"))
                self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    @staticmethod
    def pod_from_template(rs: Obj) -> Obj:
        """``GetPodFromTemplate``: labels and spec from the template, owned by ``rs``."""
        return pod_from_template(rs, "apps/v1", "ReplicaSet")

    def calculate_status(self, rs: Obj, pods: list[Obj]) -> Obj:
        """``calculateStatus``."""
        tmpl_labels = list(((rs["spec"]["template"].get("metadata") or {}).get("labels")
                            or {}).items())
        fully = ready = 0
        for p in pods:
            labels = p["metadata"].get("labels") or {}
            fully += all(labels.get(k) == v for k, v in tmpl_labels)
            ready += is_pod_ready(p)
        status = dict(rs.get("status") or {})
        status.update({"replicas": len(pods), "fullyLabeledReplicas": fully,
                       "readyReplicas": ready, "availableReplicas": ready,
                       "observedGeneration": rs["metadata"].get("generation", 1)})
        return status

    def update_status(self, rs: Obj, pods: list[Obj]) -> None:
        status = self.calculate_status(rs, pods)
        if status == rs.get("status"):
            return
        # the informer's ReplicaSet with the new status: a new top level, the rest shared
        # (the apiserver decodes a copy of the body; nothing here changes either)
        new = {**rs, "status": status}
        try:
            self.client.update_status(new)
        except StatusError as err:
            if err.code != 409:  # a conflict: the next event brings the newer object
                raise


def _deletion_rank(pod: Obj) -> tuple[Any, ...]:
    """``controller.ActivePods`` order: the pods to delete first sort first."""
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(
        pod.get("status", {}).get("phase", "Pending"), 0)
    created = pod["metadata"].get("creationTimestamp", "")
    # newer first: invert the timestamp's characters' order by sorting on its negation
    return (bool(pod["spec"].get("nodeName")), phase_rank, is_pod_ready(pod),
            tuple(-ord(c) for c in created), pod["metadata"]["name"])
