"""The Pod subresources the model's kube-apiserver stores through: ``binding`` and ``eviction``.

Mirrors ``pkg/registry/core/pod/storage`` (``BindingREST.Create``: set ``spec.nodeName`` once,
every refusal a 409; ``EvictionREST.Create``: delete the pod unless a PodDisruptionBudget
forbids it, 429 with a ``DisruptionBudget`` cause, ``checkAndDecrement`` on the budget's
``disruptionsAllowed``). The connect subresources (``log``, ``exec``, ``portforward``,
``proxy``) are in :mod:`k8sbook.apiserver.kubelet_client` and :mod:`k8sbook.apiserver.pod_proxy`.

:class:`PodSubresources` is a part of :class:`k8sbook.apiserver.server.APIServer`.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from k8sbook.api import selectors, validation
from k8sbook.api.request import Request, Response, UserInfo
from k8sbook.api.resources import ResourceType, by_plural
from k8sbook.apiserver.store import APIServerPart
from k8sbook.core.status import (
    OPTIMISTIC_LOCK_MESSAGE,
    bad_request,
    conflict,
    internal_error,
    invalid,
    not_found,
    too_many_requests,
)


class PodSubresources(APIServerPart):
    """``pods/binding`` and ``pods/eviction``; mixed into
    :class:`~k8sbook.apiserver.server.APIServer`. :meth:`create_binding` and
    :meth:`create_eviction` are the REST handlers the handler chain calls for a ``create`` of
    those subresources."""

    if TYPE_CHECKING:  # the sibling part Store provides
        def delete_resource(self, rt: ResourceType, req: Request, user: UserInfo) -> Response: ...

    # -- pods/binding ----------------------------------------------------------------------
    def create_binding(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        """``BindingREST.Create``: set ``spec.nodeName`` once; every refusal is a 409."""
        body = req.body if isinstance(req.body, dict) else None
        if body is None or body.get("kind") != "Binding":
            raise bad_request("the body of a binding must be a v1 Binding")
        if body.get("metadata", {}).get("name", req.name) != req.name:
            raise bad_request("the name of the binding does not match the pod name")
        target = body.get("target") or {}
        if target.get("kind", "Node") not in ("", "Node"):
            raise invalid("Binding", "", req.name, [validation.not_supported(
                "target.kind", target.get("kind"), ["Node", "<empty>"])])
        if not target.get("name"):
            raise invalid("Binding", "", req.name, [validation.required("target.name")])
        self.admit("CREATE", rt, req, user, body, None)
        pod = self.storage.get(rt.key(req.namespace, req.name))
        if pod is None:
            raise not_found("pods", "", req.name)
        if pod["metadata"].get("deletionTimestamp"):
            raise conflict("pods/binding", "", req.name,
                           f"pod {req.name} is being deleted, cannot be assigned to a host")
        if pod["spec"].get("nodeName"):
            raise conflict("pods/binding", "", req.name,
                           f"pod {req.name} is already assigned to node "
                           f"\"{pod['spec']['nodeName']}\"")
        pod["spec"]["nodeName"] = target["name"]
        conds = [c for c in pod["status"].get("conditions", []) if c["type"] != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True",
                      "lastTransitionTime": self.clock.timestamp()})
        pod["status"]["conditions"] = conds
        rv = int(pod["metadata"].pop("resourceVersion"))
        if self.storage.update(rt.key(req.namespace, req.name), pod, rv) is None:
            raise conflict("pods/binding", "", req.name, OPTIMISTIC_LOCK_MESSAGE)
        ok = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
              "code": 201}
        return Response(201, ok)

    # -- pods/eviction ---------------------------------------------------------------------
    def create_eviction(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        """``EvictionREST.Create``: delete the pod unless a PodDisruptionBudget forbids it."""
        body = req.body if isinstance(req.body, dict) else None
        if body is None or body.get("kind") != "Eviction":
            raise bad_request("the body of an eviction must be a policy/v1 Eviction")
        if body.get("metadata", {}).get("name", req.name) != req.name:
            raise bad_request("name in URL does not match name in Eviction object")
        pod = self.storage.get(rt.key(req.namespace, req.name))
        if pod is None:
            raise not_found("pods", "", req.name)
        self.admit("CREATE", rt, req, user, body, None)
        phase = pod.get("status", {}).get("phase")
        ignore_pdb = (phase in ("Succeeded", "Failed", "Pending")
                      or pod["metadata"].get("deletionTimestamp"))
        if not ignore_pdb:
            pdbs = [p for p in self.cached_objects("poddisruptionbudgets")
                    if p["metadata"]["namespace"] == req.namespace
                    and p.get("spec", {}).get("selector") is not None
                    and selectors.selector_matches(p["spec"]["selector"],
                                                   pod["metadata"].get("labels"))]
            if len(pdbs) > 1:
                raise internal_error("This pod has more than one PodDisruptionBudget, which "
                                     "the eviction subresource does not support.")
            if pdbs:
                self._consume_disruption(pdbs[0], req.name)
        opts = body.get("deleteOptions") or {}
        params = {k: v for k, v in opts.items() if k in ("gracePeriodSeconds", "preconditions")}
        deleted = self.delete_resource(rt, Request("delete", "pods", "", req.namespace, req.name,
                                           params=params, user=user), user)
        if not deleted.ok:
            return deleted
        ok = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
              "code": 201}
        return Response(201, ok)

    def _consume_disruption(self, pdb: dict[str, Any], pod_name: str) -> None:
        """``checkAndDecrement``: refuse with 429 unless a disruption is allowed now."""
        status = pdb.get("status") or {}
        name = pdb["metadata"]["name"]
        if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 0):
            raise too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                [{"reason": "DisruptionBudget",
                  "message": f"The disruption budget {name} is still being processed by the "
                             "server."}], retry_after=10)
        allowed = status.get("disruptionsAllowed", 0)
        if allowed <= 0:
            raise too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                [{"reason": "DisruptionBudget",
                  "message": f"The disruption budget {name} needs "
                             f"{status.get('desiredHealthy', 0)} healthy pods and has "
                             f"{status.get('currentHealthy', 0)} currently"}], retry_after=10)
        updated = copy.deepcopy(pdb)
        updated["status"]["disruptionsAllowed"] = allowed - 1
        disrupted = updated["status"].setdefault("disruptedPods", {})
        disrupted[pod_name] = self.clock.timestamp()
        ns = pdb["metadata"]["namespace"]
        rt = by_plural("policy", "poddisruptionbudgets")
        assert rt is not None
        rv = int(updated["metadata"].pop("resourceVersion"))
        if self.storage.update(rt.key(ns, name), updated, rv) is None:
            raise conflict("poddisruptionbudgets", "policy", name, OPTIMISTIC_LOCK_MESSAGE)


