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


def is_pod_ready(pod: Obj) -> bool:
    """``podutil.IsPodReady``: the Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []) or [])


def is_pod_active(pod: Obj) -> bool:
    """``controller.IsPodActive``: not finished and not being deleted."""
    return (pod.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and not pod["metadata"].get("deletionTimestamp"))
