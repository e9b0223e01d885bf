"""Controllers that kube-controller-manager runs (``pkg/controller/...``).

Each controller is built from a shared informer factory (one informer per resource, shared by
every controller, running under kube-controller-manager's own identity) and its own client
(the controller's service account, as with ``--use-service-account-credentials``). Most are a
:class:`QueueController`: handlers on the informers put keys on a rate-limited work queue, a
worker takes them off and syncs. The helpers below are ``pkg/controller/controller_utils.go``'s.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.client.events import EventRecorder
from k8sbook.client.informer import SharedIndexInformer, final_state, meta_namespace_key
from k8sbook.client.rest import Client
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.controlplane.controllers.expectations import ControllerExpectations
from k8sbook.core.status import StatusError

Obj = dict[str, Any]


class QueueController:
    """The loop every controller of ``pkg/controller`` is written as: a
    ``workqueue.NewTypedRateLimitingQueueWithConfig`` named after the controller, event
    handlers that add keys to it, ``Run`` starting a worker that calls ``processNextWorkItem``
    (here :meth:`sync`) for each key, and ``ShutDown`` on stop; with ``recorder``, an
    ``EventRecorder`` reporting as that component."""

    #: set by the controllers that count the creations and deletions they asked for
    expectations: ControllerExpectations

    def __init__(self, client: Client, queue: str, recorder: str | None = None) -> None:
        self.client = client
        self.clock = client.clock
        self.queue = RateLimitingQueue(client.clock, queue)
        if recorder is not None:
            self.recorder = EventRecorder(client, recorder)

    def sync(self, key: Any) -> None:
        raise NotImplementedError

    def run(self) -> None:
        self.queue.run_worker(self.sync)

    def stop(self) -> None:
        self.queue.shut_down()

    def enqueue(self, obj: Obj) -> None:
        """``enqueue``: the object's ``namespace/name`` key."""
        self.queue.add(meta_namespace_key(obj))

    def enqueue_owner(self, obj: Obj, kind: str) -> str:
        """Queue the key of ``obj``'s controller when it is a ``kind``; the key, or ``""``."""
        key = owner_key(obj, kind)
        if key:
            self.queue.add(key)
        return key or ""

    def observe_owned_pods(self, pod_informer: SharedIndexInformer, kind: str) -> None:
        """``addPod``/``updatePod``/``deletePod``: each queues the pod's ``kind`` owner; an
        added pod is a creation observed, a pod marked for deletion (or deleted unmarked) a
        deletion observed, for :attr:`expectations`."""
        def added(pod: Obj) -> None:
            if key := self.enqueue_owner(pod, kind):
                self.expectations.creation_observed(key)

        def updated(old: Obj, new: Obj) -> None:
            key = self.enqueue_owner(new, kind)
            if key and new["metadata"].get("deletionTimestamp") and \
                    not old["metadata"].get("deletionTimestamp"):
                self.expectations.deletion_observed(key)

        def deleted(obj: Any) -> None:
            pod = final_state(obj)
            key = self.enqueue_owner(pod, kind)
            if key and not pod["metadata"].get("deletionTimestamp"):
                self.expectations.deletion_observed(key)
        pod_informer.add_event_handler(added, updated, deleted)

    def write_status(self, obj: Obj, status: Obj, requeue: bool = True) -> None:
        """``UpdateStatus`` when the status changed; a conflict (409: the cache was behind)
        is left to a later sync, queued at once with ``requeue``."""
        if status == obj.get("status"):
            return
        new = copy.deepcopy(obj)
        new["status"] = status
        try:
            self.client.update_status(new)
        except StatusError as err:
            if err.code != 409:
                raise
            if requeue:
                self.enqueue(obj)


def omit_empty(status: Obj, *keys: str) -> Obj:
    """The ``omitempty`` fields of a Go status struct: a 0 or ``""`` is left out of the
    JSON, so the model leaves it out of the object."""
    for key in keys:
        if status.get(key) in (0, ""):
            status.pop(key, None)
    return status


def controller_of(obj: Obj) -> Obj | None:
    """``metav1.GetControllerOf``: the ownerReference with ``controller: true``, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences", []) or []:
        if ref.get("controller"):
            return ref
    return None


def owner_key(obj: Obj, kind: str) -> str | None:
    """The work-queue key (``namespace/name``) of ``obj``'s controller when it is a ``kind``,
    or None: what a controller's pod handlers enqueue (``resolveControllerRef``)."""
    ref = controller_of(obj)
    if ref and ref.get("kind") == kind:
        return f"{obj['metadata']['namespace']}/{ref['name']}"
    return None


def controller_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    """``metav1.NewControllerRef``: a reference to ``owner`` with ``controller`` and
    ``blockOwnerDeletion`` true."""
    meta = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def pod_from_template(owner: Obj, api_version: str, kind: str,
                      finalizers: tuple[str, ...] = ()) -> Obj:
    """``controller.GetPodFromTemplate`` (``pkg/controller/controller_utils.go``): a pod made
    from ``owner``'s ``spec.template`` (labels, annotations, spec), named after the owner
    (``generateName``), in its namespace, and owned by it through a controller reference
    (``metav1.NewControllerRef``: ``controller`` and ``blockOwnerDeletion`` true)."""
    tmpl = owner["spec"]["template"]
    meta = tmpl.get("metadata") or {}
    om = owner["metadata"]
    pod_meta: Obj = {"generateName": f"{om['name']}-", "namespace": om["namespace"]}
    if finalizers:
        pod_meta["finalizers"] = list(finalizers)
    pod_meta["ownerReferences"] = [controller_ref(owner, api_version, kind)]
    for k in ("labels", "annotations"):
        if meta.get(k):
            pod_meta[k] = dict(meta[k])
    # as upstream, only the spec is deep-copied (``template.Spec.DeepCopy()``): the labels
    # and annotations are copied above, and the caller may change the pod it gets
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": copy.deepcopy(tmpl.get("spec", {}))}


#: ``controller.PodControllerUIDIndex`` (``pkg/controller/controller_utils.go``): the pod
#: informer's index of pods by the UID of their controller, added by
#: ``AddPodControllerUIDIndexer`` so a controller finds its pods without scanning them all
POD_CONTROLLER_UID_INDEX = "podControllerUID"


def pod_controller_uid(pod: Obj) -> list[str]:
    """The index function: the controller's UID, or nothing for a pod without one (upstream
    files those under an orphan key per namespace, for adoption; the model adopts none)."""
    ref = controller_of(pod)
    return [ref["uid"]] if ref and ref.get("uid") else []


def add_pod_controller_uid_indexer(indexer: Any) -> None:
    """``AddPodControllerUIDIndexer``: add the index once, however many controllers ask."""
    if POD_CONTROLLER_UID_INDEX not in indexer.indexers:
        indexer.add_indexer(POD_CONTROLLER_UID_INDEX, pod_controller_uid)


#: the pod informer's index by ``spec.nodeName`` (``nodeNameKeyIndex``), which the node
#: lifecycle and taint eviction controllers add so that ``getPodsAssignedToNode`` reads the
#: pods of one node instead of scanning every pod
POD_NODE_NAME_INDEX = "spec.nodeName"


def pod_node_name(pod: Obj) -> list[str]:
    """The index function: the pod's node, or nothing for a pod not bound yet."""
    node = pod.get("spec", {}).get("nodeName")
    return [node] if node else []


def add_pod_node_name_indexer(indexer: Any) -> None:
    """Add the ``spec.nodeName`` index once, however many controllers ask."""
    if POD_NODE_NAME_INDEX not in indexer.indexers:
        indexer.add_indexer(POD_NODE_NAME_INDEX, pod_node_name)


def pods_assigned_to_node(indexer: Any, node: str) -> list[Obj]:
    """``getPodsAssignedToNode``: the pods bound to ``node``, in key order (the order a
    scan of the whole store would give them in)."""
    return list(indexer.by_index(POD_NODE_NAME_INDEX, node))


def is_pod_ready(pod: Obj) -> bool:
    """``podutil.IsPodReady``: the Ready condition is True."""
    for c in pod.get("status", {}).get("conditions", []) or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return True
    return False


def is_pod_active(pod: Obj) -> bool:
    """``controller.IsPodActive``: not finished and not being deleted."""
    return (pod.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and not pod["metadata"].get("deletionTimestamp"))


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float, parse: Any) -> bool:
    """``podutil.IsPodAvailable``: Ready, and for at least ``minReadySeconds`` (``parse``
    turns the condition's ``lastTransitionTime`` into virtual seconds)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    cond = next(c for c in pod["status"]["conditions"] if c.get("type") == "Ready")
    since = cond.get("lastTransitionTime")
    return bool(since) and parse(since) + min_ready_seconds <= now
