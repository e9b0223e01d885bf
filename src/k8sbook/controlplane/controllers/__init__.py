"""Controllers that kube-controller-manager runs (``pkg/controller/...``).

Each controller is built from a shared informer factory (one informer per resource, shared by
every controller, running under kube-controller-manager's own identity) and its own client
(the controller's service account, as with ``--use-service-account-credentials``).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def controller_of(obj: Obj) -> Obj | None:
    """``metav1.GetControllerOf``: the ownerReference with ``controller: true``, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences", []) or []:
        if ref.get("controller"):
            return ref
    return None


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
