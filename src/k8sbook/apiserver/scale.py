"""The ``/scale`` subresource of Deployments, ReplicaSets and StatefulSets (autoscaling/v1 Scale).

Mirrors ``ScaleREST`` of ``pkg/registry/apps/deployment/storage/storage.go`` (and its twins in
``pkg/registry/apps/replicaset/storage`` and ``pkg/registry/apps/statefulset/storage``):

- **get** answers an ``autoscaling/v1`` ``Scale`` made from the object (``scaleFromDeployment``):
  the object's name, namespace, uid, resourceVersion and creationTimestamp; ``spec.replicas``;
  ``status.replicas`` and ``status.selector``, the label selector in its string form
  (``metav1.LabelSelectorAsSelector(...).String()``: requirements sorted by key, ``k=v``,
  ``k in (a,b)``, ``k notin (a)``, ``k``, ``!k``);
- **update** and **patch** work on that Scale (``scaleUpdatedObjectInfo``): the patch is applied
  to the Scale, the result validated (``ValidateScale``: ``spec.replicas`` must be greater than
  or equal to 0, else 422 ``Scale.autoscaling "web" is invalid``), a resourceVersion it carries
  is a precondition on the object, and only ``spec.replicas`` of the object changes; the object
  is then written as any update of the main resource is (admission sees subresource ``scale``,
  generation bumps, managedFields record the writer with ``subresource: scale``), and the answer
  is the Scale of what was stored.

kubectl scale sends ``PATCH .../deployments/web/scale`` with a merge patch
(``{"spec":{"replicas":3}}``); the HorizontalPodAutoscaler uses the same subresource.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api import patch as patching
from k8sbook.api import validation
from k8sbook.api.request import Request, Response, UserInfo
from k8sbook.api.resources import RESOURCES, ResourceType
from k8sbook.core.status import StatusError, bad_request, invalid, method_not_supported, not_found

#: kinds whose storage serves ``scale`` (``pkg/registry/apps/*/storage``)
SCALABLE = ("Deployment", "ReplicaSet", "StatefulSet")


def selector_string(sel: dict[str, Any] | None) -> str:
    """``metav1.LabelSelectorAsSelector(sel).String()``."""
    terms: list[tuple[str, str]] = []
    for k, v in (sel or {}).get("matchLabels", {}).items():
        terms.append((k, f"{k}={v}"))
    for e in (sel or {}).get("matchExpressions") or []:
        key, op, vals = e.get("key", ""), e.get("operator"), sorted(e.get("values") or [])
        text = {"In": f"{key} in ({','.join(vals)})", "NotIn": f"{key} notin ({','.join(vals)})",
                "Exists": key, "DoesNotExist": f"!{key}"}.get(str(op), key)
        terms.append((key, text))
    return ",".join(t for _, t in sorted(terms, key=lambda kt: kt[0]))


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The ``autoscaling/v1`` Scale of a Deployment, ReplicaSet or StatefulSet."""
    meta = obj["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
            "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                       "selector": selector_string(obj.get("spec", {}).get("selector"))}}


class ScaleREST:
    """The ``scale`` handler of one apiserver (``handlers[(plural, "scale")]``)."""

    def __init__(self, apiserver: Any) -> None:
        self.apiserver = apiserver

    def serve(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        if req.verb not in ("get", "update", "patch"):
            raise method_not_supported(f"{rt.plural}/scale", rt.group, req.verb)
        obj = self.apiserver.storage.get(rt.key(req.namespace, req.name))
        if obj is None:
            raise not_found(rt.plural, rt.group, req.name)
        old_scale = scale_of(obj)
        if req.verb == "get":
            return Response(200, old_scale)
        if req.verb == "patch":
            scale = patching.apply_patch(old_scale, req.body, req.content_type)
        else:
            scale = req.body
        if not isinstance(scale, dict) or not isinstance(scale.get("metadata", {}), dict):
            raise bad_request("the body of the request must be a Scale object")
        name = scale.get("metadata", {}).get("name", req.name)
        if name != req.name:
            raise bad_request(f"the name of the object ({name}) does not match the name on "
                              f"the URL ({req.name})")
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid("Scale", "autoscaling", req.name, [validation.invalid(
                "spec.replicas", replicas, "must be greater than or equal to 0")])
        new = copy.deepcopy(obj)
        new["spec"]["replicas"] = replicas
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        # a resourceVersion in the Scale is a precondition on the object
        new["metadata"]["resourceVersion"] = rv or obj["metadata"]["resourceVersion"]
        inner = Request("update", rt.plural, rt.group, req.namespace, req.name, "scale",
                        body=new, params=req.params, user=user)
        resp: Response = self.apiserver.update_resource(rt, inner, user)
        if not resp.ok:
            raise StatusError(resp.body)
        return Response(200, scale_of(resp.body))


def install(apiserver: Any) -> ScaleREST:
    """Register ``{deployments,replicasets,statefulsets}/scale`` with ``apiserver.handlers``."""
    rest = ScaleREST(apiserver)
    for rt in RESOURCES:
        if rt.kind in SCALABLE and "scale" in rt.subresources:
            apiserver.handlers[(rt.plural, "scale")] = rest.serve
    return rest
