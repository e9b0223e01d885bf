"""Asking the apiserver about oneself: SelfSubjectAccessReview, SelfSubjectRulesReview,
LocalSubjectAccessReview (``authorization.k8s.io/v1``) and SelfSubjectReview
(``authentication.k8s.io/v1``).

Mirrors ``pkg/registry/authorization/{selfsubjectaccessreview,selfsubjectrulesreview,
localsubjectaccessreview}``, ``pkg/registry/authorization/util`` (``ResourceAttributesFrom``,
``NonResourceAttributesFrom``), ``pkg/apis/authorization/validation`` and
``pkg/registry/authentication/selfsubjectreview``. None of them is stored: each ``create`` is
evaluated and answered ``201`` with the review and its ``status``.

- **SelfSubjectAccessReview** (``kubectl auth can-i VERB RESOURCE``): the requesting user (after
  impersonation), the ``resourceAttributes`` or ``nonResourceAttributes`` of the spec (exactly
  one, else ``422``), put to the apiserver's authorizers (``Node,RBAC``:
  :mod:`k8sbook.apiserver.authorization`); ``status.allowed`` and the authorizer's ``reason``.
  The model's authorizers never deny outright (Node and RBAC only allow or have no opinion),
  so ``denied`` is always false.
- **LocalSubjectAccessReview**: a SubjectAccessReview (any user, groups) in one namespace: the
  spec's namespace must be the URL's, and non-resource attributes are refused.
- **SelfSubjectRulesReview** (``kubectl auth can-i --list``): what the authorizers' rule
  resolvers list for the user in ``spec.namespace`` (the union of ``RulesFor``): RBAC's rules
  bound cluster-wide and in the namespace, split into resource and non-resource rules; the Node
  authorizer lists none and marks the answer ``incomplete`` for a node ("node authorizer does not
  support user rule resolution").
- **SelfSubjectReview** (``kubectl auth whoami``): the user's name, uid, groups and extra.

Every authenticated user may create them: the ``system:basic-user`` ClusterRole, bound to
``system:authenticated`` (:mod:`k8sbook.apiserver.rbac`).
"""

from __future__ import annotations

import json
from typing import Any

from k8sbook.api.request import Request, Response, UserInfo
from k8sbook.api.resources import ResourceType
from k8sbook.apiserver.authorization import Attributes
from k8sbook.apiserver.node_authorizer import NODE_USER_PREFIX
from k8sbook.core.status import bad_request, invalid

AUTHZ, AUTHN = "authorization.k8s.io", "authentication.k8s.io"


#: ``metav1.ObjectMeta``'s fields in the order Go's JSON encoder writes them
_META_ORDER = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
               "generation", "creationTimestamp", "deletionTimestamp",
               "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
               "finalizers", "managedFields")


def _go_value(value: Any) -> str:
    """How ``field.Error.ErrorBody`` prints a bad value: a string quoted, a number or bool
    as is, anything else as its JSON (a nil pointer is ``null``)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


def _meta_json(body: dict[str, Any]) -> dict[str, Any]:
    """The review's ObjectMeta as Go marshals it (``creationTimestamp`` is always there)."""
    meta = {"creationTimestamp": None, **(body.get("metadata") or {})}
    return {k: meta[k] for k in _META_ORDER if k in meta and (
        meta[k] not in ("", {}, [], None) or k == "creationTimestamp")}


def _internal_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """``NonResourceAttributes`` of the internal API, which has no JSON tags: Go's names."""
    return {"Path": attrs.get("path", ""), "Verb": attrs.get("verb", "")}


def _invalid_value(field: str, value: Any, message: str) -> dict[str, str]:
    """A ``field.Invalid`` cause."""
    return {"reason": "FieldValueInvalid", "field": field,
            "message": f"Invalid value: {_go_value(value)}: {message}"}


def _spec_errors(spec: dict[str, Any]) -> list[dict[str, str]]:
    """``ValidateSelfSubjectAccessReviewSpec``: exactly one kind of attributes."""
    res, nonres = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if res is not None and nonres is not None:
        return [_invalid_value("spec.nonResourceAttributes", _internal_attrs(nonres),
                               "cannot be specified in combination with resourceAttributes")]
    if res is None and nonres is None:
        return [_invalid_value("spec.resourceAttributes", None, "exactly one of "
                               "nonResourceAttributes or resourceAttributes must be specified")]
    return []


def _metadata_set(body: dict[str, Any], *allowed: str) -> bool:
    """Whether the review's metadata holds anything but ``allowed`` (and ``managedFields``)."""
    meta = body.get("metadata") or {}
    return any(v not in (None, "", {}, []) for k, v in meta.items()
               if k not in ("managedFields", *allowed))


def attributes_from(user: UserInfo, spec: dict[str, Any]) -> Attributes:
    """``ResourceAttributesFrom`` / ``NonResourceAttributesFrom``."""
    res = spec.get("resourceAttributes")
    if res is not None:
        field_selector = (res.get("fieldSelector") or {}).get("rawSelector", "")
        return Attributes(user, str(res.get("verb", "")), str(res.get("group", "")),
                          str(res.get("resource", "")), str(res.get("subresource", "")),
                          str(res.get("namespace", "")), str(res.get("name", "")),
                          str(field_selector))
    nonres = spec.get("nonResourceAttributes") or {}
    return Attributes(user, str(nonres.get("verb", "")), "", "", path=str(nonres.get("path", "")))


def _review(kind: str, body: dict[str, Any], spec: dict[str, Any], status: dict[str, Any],
            group: str = AUTHZ, metadata: dict[str, Any] | None = None) -> Response:
    out = {"kind": kind, "apiVersion": f"{group}/v1",
           "metadata": metadata if metadata is not None else {"creationTimestamp": None},
           "spec": spec, "status": status}
    return Response(201, out)


def _body(req: Request, plural: str) -> dict[str, Any]:
    if req.verb != "create":
        raise bad_request(f"{plural} support only create")
    return req.body if isinstance(req.body, dict) else {}


class AccessReviews:
    """The REST handlers of the four reviews, installed in the apiserver's ``handlers``."""

    def __init__(self, apiserver: Any) -> None:
        self.apiserver = apiserver

    def _decide(self, attrs: Attributes) -> dict[str, Any]:
        decision, reason = self.apiserver.authz.authorize(attrs)
        status: dict[str, Any] = {"allowed": decision == "allow"}
        if reason:
            status["reason"] = reason
        return status

    def self_subject_access_review(self, rt: ResourceType, req: Request,
                                   user: UserInfo) -> Response:
        body = _body(req, rt.plural)
        spec = body.get("spec") or {}
        errors = _spec_errors(spec)
        if _metadata_set(body):
            errors.append(_invalid_value("metadata", _meta_json(body), "must be empty"))
        if errors:
            raise invalid(rt.kind, rt.group, "", errors)
        return _review(rt.kind, body, spec, self._decide(attributes_from(user, spec)))

    def local_subject_access_review(self, rt: ResourceType, req: Request,
                                    user: UserInfo) -> Response:
        body = _body(req, rt.plural)
        spec = body.get("spec") or {}
        namespace = (body.get("metadata") or {}).get("namespace") or req.namespace
        if namespace != req.namespace:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        errors = _spec_errors(spec)
        if not spec.get("user") and not spec.get("groups"):
            errors.append(_invalid_value("spec.user", "", "at least one of user or group "
                                         "must be specified"))
        res = spec.get("resourceAttributes")
        if res is not None and res.get("namespace", "") != namespace:
            errors.append(_invalid_value("spec.resourceAttributes.namespace",
                                         res.get("namespace", ""), "must match "
                                         "metadata.namespace"))
        if spec.get("nonResourceAttributes") is not None:
            errors.append(_invalid_value("spec.nonResourceAttributes",
                                         _internal_attrs(spec["nonResourceAttributes"]),
                                         "disallowed on this kind of request"))
        if _metadata_set(body, "namespace"):
            errors.append(_invalid_value("metadata", _meta_json(body),
                                         "must be empty except for namespace"))
        if errors:
            raise invalid(rt.kind, rt.group, "", errors)
        extra = tuple((k, str(v)) for k, vs in sorted((spec.get("extra") or {}).items())
                      for v in vs)
        subject = UserInfo(str(spec.get("user", "")), tuple(spec.get("groups") or ()),
                           str(spec.get("uid", "")), extra)
        return _review(rt.kind, body, spec, self._decide(attributes_from(subject, spec)),
                       metadata={"namespace": namespace, "creationTimestamp": None})

    def self_subject_rules_review(self, rt: ResourceType, req: Request,
                                  user: UserInfo) -> Response:
        body = _body(req, rt.plural)
        namespace = str((body.get("spec") or {}).get("namespace", ""))
        if not namespace:
            raise bad_request("no namespace on request")
        resource_rules: list[dict[str, Any]] = []
        non_resource_rules: list[dict[str, Any]] = []
        for rule in self.apiserver.rbac.rules_for(user, namespace):
            if rule.get("resources"):
                entry = {"verbs": list(rule.get("verbs") or [])}
                for key in ("apiGroups", "resources", "resourceNames"):
                    if rule.get(key):
                        entry[key] = list(rule[key])
                resource_rules.append(entry)
            if rule.get("nonResourceURLs"):
                non_resource_rules.append({"verbs": list(rule.get("verbs") or []),
                                           "nonResourceURLs": list(rule["nonResourceURLs"])})
        status: dict[str, Any] = {"resourceRules": resource_rules,
                                  "nonResourceRules": non_resource_rules, "incomplete": False}
        if "system:nodes" in user.groups and user.name.startswith(NODE_USER_PREFIX):
            status.update(incomplete=True, evaluationError="node authorizer does not support "
                          "user rule resolution")
        return _review(rt.kind, body, {}, status)

    def self_subject_review(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        _body(req, rt.plural)
        info: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
        if user.uid:
            info["uid"] = user.uid
        extra: dict[str, list[str]] = {}
        for key, value in user.extra:
            extra.setdefault(key, []).append(value)
        if extra:
            info["extra"] = extra
        stamp = self.apiserver.clock.timestamp()
        return _review(rt.kind, {}, {}, {"userInfo": info}, group=AUTHN,
                       metadata={"creationTimestamp": stamp})


def install(apiserver: Any) -> AccessReviews:
    """Register the reviews' handlers with ``apiserver.handlers``."""
    reviews = AccessReviews(apiserver)
    apiserver.handlers[("selfsubjectaccessreviews", "")] = reviews.self_subject_access_review
    apiserver.handlers[("localsubjectaccessreviews", "")] = reviews.local_subject_access_review
    apiserver.handlers[("selfsubjectrulesreviews", "")] = reviews.self_subject_rules_review
    apiserver.handlers[("selfsubjectreviews", "")] = reviews.self_subject_review
    return reviews

