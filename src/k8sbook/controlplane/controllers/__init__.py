"""Controllers that kube-controller-manager runs (``pkg/controller/...``).

Each controller is built from a shared informer factory (one informer per resource, shared by
every controller, running under kube-controller-manager's own identity) and its own client
(the controller's service account, as with ``--use-service-account-credentials``).
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]


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


def pod_from_template(owner: Obj, api_version: str, kind: str,
                      finalizers: tuple[str, ...] = ()) -> Obj:
    """``controller.GetPodFromTemplate`` (``pkg/controller/controller_utils.go``): a pod made
    from ``owner``'s ``spec.template`` (labels, annotations, spec), named after the owner
    (``generateName``), in its namespace, and owned by it through a controller reference
    (``metav1.NewControllerRef``: ``controller`` and ``blockOwnerDeletion`` true)."""
    tmpl = copy.deepcopy(owner["spec"]["template"])
    meta = tmpl.get("metadata") or {}
    om = owner["metadata"]
    pod_meta: Obj = {"generateName": f"{om['name']}-", "namespace": om["namespace"]}
    if finalizers:
        pod_meta["finalizers"] = list(finalizers)
    pod_meta["ownerReferences"] = [{"apiVersion": api_version, "kind": kind,
                                    "name": om["name"], "uid": om["uid"],
                                    "controller": True, "blockOwnerDeletion": True}]
    for k in ("labels", "annotations"):
        if meta.get(k):
            pod_meta[k] = dict(meta[k])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": tmpl.get("spec", {})}


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


def is_pod_ready(pod: Obj) -> bool:
    """``podutil.IsPodReady``: the Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []) or [])


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
