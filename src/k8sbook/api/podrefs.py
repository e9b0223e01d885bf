"""Which other API objects a pod spec references.

Mirrors ``podutil.HasAPIObjectReference`` (``pkg/api/pod/util.go``, v1.35), which the
NodeRestriction admission plugin uses to refuse a node's mirror pod that names anything a node
could then read through the Node authorizer's graph (a Secret, a ConfigMap, a PVC, a service
account and its tokens, a ResourceClaim ...). The first reference found is reported, in
upstream's order and with upstream's wording (``"secrets (via secret volumes)"``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["api_object_reference"]

#: projected volume sources, in upstream's order, and how each is reported
_PROJECTED = (("configMap", "configmaps (via projected volumes)"),
              ("secret", "secrets (via projected volumes)"),
              ("serviceAccountToken", "serviceaccounts (via projected volumes)"),
              ("clusterTrustBundle", "clustertrustbundles"),
              ("podCertificate", "podcertificates"))
#: volume sources that reference an API object, in upstream's order
_VOLUMES = (("configMap", "configmaps (via configmap volumes)"),
            ("secret", "secrets (via secret volumes)"),
            ("csi", "csidrivers (via CSI volumes)"),
            ("persistentVolumeClaim", "persistentvolumeclaims"),
            ("ephemeral", "persistentvolumeclaims (via ephemeral volumes)"))


def api_object_reference(pod: dict[str, Any]) -> str:
    """The kind of API object ``pod`` references first (``""`` if none)."""
    spec = pod.get("spec") or {}
    if spec.get("serviceAccountName"):
        return "serviceaccounts"
    if spec.get("imagePullSecrets"):
        return "secrets"
    for c in [*spec.get("containers", []), *spec.get("initContainers", []),
              *spec.get("ephemeralContainers", [])]:
        for e in c.get("env") or []:
            src = e.get("valueFrom") or {}
            if src.get("secretKeyRef"):
                return "secrets"
            if src.get("configMapKeyRef"):
                return "configmaps"
        for e in c.get("envFrom") or []:
            if e.get("secretRef"):
                return "secrets"
            if e.get("configMapRef"):
                return "configmaps"
    if spec.get("resourceClaims"):
        return "resourceclaims"
    for v in spec.get("volumes") or []:
        for key, what in _VOLUMES:
            if v.get(key):
                return what
        for src in (v.get("projected") or {}).get("sources") or []:
            for key, what in _PROJECTED:
                if src.get(key):
                    return what
    return ""
