"""What a kubelet may do with its credentials: the Node authorizer and NodeRestriction admission.

Mirrors two packages of kube-apiserver that kubeadm turns on for every cluster
(``--authorization-mode=Node,RBAC`` and ``--enable-admission-plugins=NodeRestriction``):

* ``plugin/pkg/auth/authorizer/node`` (:class:`NodeAuthorizer`). It has an opinion only about
  users in group ``system:nodes`` named ``system:node:<nodeName>``. With the
  ``AuthorizeNodeWithSelectors`` feature (KEP-4601: beta in v1.32, GA and locked on since v1.34) a node
  may read only its own Node, list/watch pods only with the field selector
  ``spec.nodeName=<itself>`` and get only pods bound to it; it may read a Secret, ConfigMap or
  PersistentVolumeClaim only when a pod bound to it references that object; and it may touch
  only the Lease named after it in ``kube-node-lease``; it may create a token
  (``serviceaccounts/token``) only for a ServiceAccount a pod bound to it runs as. Everything
  else is checked against the static rules of the ``system:node`` role
  (``bootstrappolicy.NodeRules``).
* ``plugin/pkg/admission/noderestriction`` (:class:`NodeRestriction`): the authorizer lets a
  node *write* Nodes and pod status in general (authorization does not see the object being
  written); this admission plugin then refuses a node that changes another node's Node, the
  status of a pod bound elsewhere, or deletes such a pod, or asks for a service-account token
  that is not bound to one of its own pods, with ``403 Forbidden``. A node may create only
  mirror pods (annotation ``kubernetes.io/config.mirror``) bound to itself, owned by its Node,
  that reference no other API object (no service account, Secret, ConfigMap, PVC, projected
  or ephemeral volume, ResourceClaim: ``admitPodCreate`` and ``podutil.HasAPIObjectReference``),
  so a mirror pod never gives its node a path to a Secret or a token.

Simplified: the real authorizer keeps a graph of pods, Secrets, ConfigMaps, PVCs, PVs and
VolumeAttachments, updated by informers; the model walks the apiserver's pod cache instead,
which gives the same answers. Only the resources the model serves are covered, and of the
label rules of NodeRestriction only the ``node-restriction.kubernetes.io/`` prefix is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.api.podrefs import api_object_reference
from k8sbook.api.selectors import parse_field_selector
from k8sbook.apiserver.admission import AdmissionAttributes
from k8sbook.apiserver.authentication import UserInfo
from k8sbook.apiserver.authorization import Attributes, Decision, RBACAuthorizer
from k8sbook.apiserver.rbac import READ, rule
from k8sbook.core.status import StatusError, forbidden, not_found

NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
NODE_LEASE_NAMESPACE = "kube-node-lease"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
RESTRICTED_LABEL_PREFIX = "node-restriction.kubernetes.io/"

#: ``bootstrappolicy.NodeRules()``, the rules of the ``system:node`` role, abridged to the
#: resources the model serves.
NODE_RULES = [
    rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
    rule(["authorization.k8s.io"], ["subjectaccessreviews", "localsubjectaccessreviews"],
         ["create"]),
    rule([""], ["services"], READ),
    rule([""], ["nodes"], ["create", "get", "list", "watch"]),
    rule([""], ["nodes/status"], ["update", "patch"]),
    rule([""], ["nodes"], ["update", "patch"]),
    rule([""], ["events"], ["create", "update", "patch"]),
    rule(["events.k8s.io"], ["events"], ["create", "update", "patch"]),
    rule([""], ["pods"], READ),
    rule([""], ["pods"], ["create", "delete"]),
    rule([""], ["pods/status"], ["update", "patch"]),
    rule([""], ["pods/eviction"], ["create"]),
    rule([""], ["secrets", "configmaps"], READ),
    rule([""], ["persistentvolumeclaims", "persistentvolumes"], ["get"]),
    rule(["coordination.k8s.io"], ["leases"], ["get", "create", "update", "patch", "delete"]),
    rule(["certificates.k8s.io"], ["certificatesigningrequests"],
         ["create", "get", "list", "watch"]),
]


def node_identity(user: UserInfo) -> tuple[bool, str]:
    """``nodeidentifier.NodeIdentity``: (is a node, its name); the name may be empty."""
    if NODES_GROUP not in user.groups or not user.name.startswith(NODE_USER_PREFIX):
        return False, ""
    return True, user.name[len(NODE_USER_PREFIX):]


def _field_value(attrs: Attributes, field: str) -> str:
    try:
        reqs = parse_field_selector(getattr(attrs, "field_selector", ""), "Pod")
    except StatusError:
        return ""
    return next((v for f, op, v in reqs if f == field and op == "="), "")


def pod_references(pod: dict[str, Any], resource: str, name: str) -> bool:
    """Does ``pod`` use the Secret / ConfigMap / PVC ``name`` (the authorizer's graph edges)?"""
    spec = pod.get("spec", {})
    names: set[str] = set()
    if resource == "secrets":
        names |= {s.get("name", "") for s in spec.get("imagePullSecrets", [])}
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        for e in c.get("env", []):
            ref = (e.get("valueFrom") or {}).get(
                "secretKeyRef" if resource == "secrets" else "configMapKeyRef")
            if ref:
                names.add(ref.get("name", ""))
        for e in c.get("envFrom", []):
            ref = e.get("secretRef" if resource == "secrets" else "configMapRef")
            if ref:
                names.add(ref.get("name", ""))
    for v in spec.get("volumes", []):
        if resource == "secrets" and v.get("secret"):
            names.add(v["secret"].get("secretName", ""))
        if resource == "configmaps" and v.get("configMap"):
            names.add(v["configMap"].get("name", ""))
        if resource == "persistentvolumeclaims" and v.get("persistentVolumeClaim"):
            names.add(v["persistentVolumeClaim"].get("claimName", ""))
        for src in (v.get("projected") or {}).get("sources", []):
            key = {"secrets": "secret", "configmaps": "configMap"}.get(resource)
            if key and src.get(key):
                names.add(src[key].get("name", ""))
    return name in names


class NodeAuthorizer:
    """``--authorization-mode=Node``: asked before RBAC; no opinion about non-nodes."""

    name = "Node"

    def __init__(self, list_objects: Callable[[str], list[dict[str, Any]]], *,
                 pods_on: Callable[[str], list[dict[str, Any]]] | None = None) -> None:
        self._list = list_objects
        #: the pods bound to a node, as the graph's pod -> node edges give them upstream
        #: (``graph_populator.go`` keeps the graph up to date from informers); without it,
        #: every pod is looked at
        self._pods_on_node = pods_on

    def _pods_on(self, node: str) -> list[dict[str, Any]]:
        if self._pods_on_node is not None:
            return self._pods_on_node(node)
        return [p for p in self._list("pods") if p.get("spec", {}).get("nodeName") == node]

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        is_node, node = node_identity(attrs.user)
        if not is_node:
            return "no-opinion", ""
        if not node:
            return "no-opinion", f'unknown node for user "{attrs.user.name}"'
        res = (attrs.api_group, attrs.resource)
        if res in (("", "secrets"), ("", "configmaps"), ("", "persistentvolumeclaims"),
                   ("", "persistentvolumes")):
            return self._related(node, attrs)
        if res == ("coordination.k8s.io", "leases"):
            return self._lease(node, attrs)
        if res == ("", "nodes"):
            return self._node(node, attrs)
        if res == ("", "pods"):
            return self._pod(node, attrs)
        if res == ("", "serviceaccounts"):
            return self._create_token(node, attrs)
        if any(RBACAuthorizer.rule_allows(r, attrs) for r in NODE_RULES):
            return "allow", ""
        return "no-opinion", ""

    def _related(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb not in ("get", "list", "watch"):
            return "no-opinion", "node cannot write related objects"
        if attrs.resource in ("persistentvolumeclaims", "persistentvolumes") and \
                attrs.verb != "get":
            return "no-opinion", "can only get individual resources of this type"
        if not attrs.name:
            return "no-opinion", "No Object name found"
        if attrs.resource == "persistentvolumes":  # pod -> PVC -> PV
            claims = {(p["metadata"].get("namespace"), name) for p in self._pods_on(node)
                      for v in p.get("spec", {}).get("volumes", [])
                      if (name := (v.get("persistentVolumeClaim") or {}).get("claimName"))}
            for pvc in self._list("persistentvolumeclaims"):
                m = pvc["metadata"]
                if (m.get("namespace"), m["name"]) in claims and \
                        pvc.get("spec", {}).get("volumeName") == attrs.name:
                    return "allow", ""
            return "no-opinion", f"no relationship found between node '{node}' and this object"
        for pod in self._pods_on(node):
            if pod["metadata"].get("namespace") == attrs.namespace and \
                    pod_references(pod, attrs.resource, attrs.name):
                return "allow", ""
        return "no-opinion", f"no relationship found between node '{node}' and this object"

    def _create_token(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        """``authorizeCreateToken``: a token for a ServiceAccount a pod on this node runs as."""
        if attrs.verb != "create" or not attrs.name:
            return "no-opinion", "can only create tokens for individual service accounts"
        if attrs.subresource != "token":
            return "no-opinion", "can only create token subresource of serviceaccount"
        for pod in self._pods_on(node):
            # the graph has a pod -> service account edge only for a named account; a mirror
            # pod names none (ServiceAccount admission defaults the others to "default")
            sa = pod["spec"].get("serviceAccountName") or ("" if MIRROR_POD_ANNOTATION in (
                pod["metadata"].get("annotations") or {}) else "default")
            if pod["metadata"].get("namespace") == attrs.namespace and sa == attrs.name:
                return "allow", ""
        return "no-opinion", f"no relationship found between node '{node}' and this object"

    @staticmethod
    def _lease(node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return "no-opinion", "can only get, create, update, patch, or delete a node lease"
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return "no-opinion", (f'can only access leases in the "{NODE_LEASE_NAMESPACE}" '
                                  "system namespace")
        if attrs.verb != "create" and attrs.name != node:
            return "no-opinion", ("can only access node lease with the same name as the "
                                  "requesting node")
        return "allow", ""

    @staticmethod
    def _node(node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb in ("get", "list", "watch") and not attrs.subresource:
            name = attrs.name or _field_value(attrs, "metadata.name")
            if not name:
                return "no-opinion", (f"node '{node}' cannot read all nodes, only its own "
                                      "Node object")
            if name != node:
                return "no-opinion", (f"node '{node}' cannot read '{name}', only its own "
                                      "Node object")
            return "allow", ""
        if any(RBACAuthorizer.rule_allows(r, attrs) for r in NODE_RULES):
            return "allow", ""  # writes: NodeRestriction admission checks the name
        return "no-opinion", ""

    def _pod(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if not attrs.subresource:
            if attrs.verb == "get":
                return self._pod_on_node(node, attrs)
            if attrs.verb in ("list", "watch"):
                if _field_value(attrs, "spec.nodeName") == node:
                    return "allow", ""
                if attrs.name:
                    return self._pod_on_node(node, attrs)
                return "no-opinion", "can only list/watch pods with spec.nodeName field selector"
            if attrs.verb in ("create", "delete"):
                return "allow", ""  # mirror pods; NodeRestriction checks the binding
        elif attrs.subresource == "status" and attrs.verb in ("update", "patch") or attrs.subresource == "eviction" and attrs.verb == "create":
            return "allow", ""
        return "no-opinion", ""

    def _pod_on_node(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        for pod in self._pods_on(node):
            meta = pod["metadata"]
            if meta.get("namespace") == attrs.namespace and meta["name"] == attrs.name:
                return "allow", ""
        return "no-opinion", ""


class NodeRestriction:
    """``--enable-admission-plugins=NodeRestriction``: a node writes only its own objects."""

    name = "NodeRestriction"

    def __init__(self, get_pod: Callable[[str, str], dict[str, Any] | None],
                 get_node: Callable[[str], dict[str, Any] | None] | None = None) -> None:
        self._get_pod = get_pod
        self._get_node = get_node

    def admit(self, attrs: AdmissionAttributes) -> None:
        is_node, node = node_identity(attrs.user)
        if not is_node:
            return
        if not node:
            raise self._forbidden(attrs, "could not determine node from user "
                                         f'"{attrs.user.name}"')
        if attrs.resource == "nodes":
            self._admit_node(node, attrs)
        elif attrs.resource == "pods":
            self._admit_pod(node, attrs)
        elif attrs.resource == "serviceaccounts" and attrs.subresource == "token" and \
                attrs.operation == "CREATE":
            self._admit_token(node, attrs)
        elif attrs.resource == "leases" and attrs.api_group == "coordination.k8s.io" and \
                attrs.operation == "CREATE" and attrs.name != node:
            raise self._forbidden(attrs, "can only access node lease with the same name as "
                                         "the requesting node")

    validate = admit  # the plugin only refuses; the model runs it among validating plugins

    @staticmethod
    def _forbidden(attrs: AdmissionAttributes, message: str) -> StatusError:
        return forbidden(attrs.resource, attrs.api_group, attrs.name, message)

    def _admit_node(self, node: str, attrs: AdmissionAttributes) -> None:
        if attrs.name != node:
            raise self._forbidden(attrs, f'node "{node}" is not allowed to modify node '
                                         f'"{attrs.name}"')
        if attrs.operation not in ("CREATE", "UPDATE"):
            return
        new = ((attrs.obj or {}).get("metadata") or {}).get("labels") or {}
        old = ((attrs.old_obj or {}).get("metadata") or {}).get("labels") or {}
        changed = sorted(k for k in set(new) | set(old)
                         if k.startswith(RESTRICTED_LABEL_PREFIX) and new.get(k) != old.get(k))
        if changed:
            raise self._forbidden(attrs, "is not allowed to modify labels: " + ", ".join(changed))

    def _admit_token(self, node: str, attrs: AdmissionAttributes) -> None:
        """``admitServiceAccount``: a node's TokenRequest must be bound to a pod on it."""
        ref = ((attrs.obj or {}).get("spec") or {}).get("boundObjectRef") or {}
        if ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
            raise self._forbidden(attrs, "node requested token not bound to a pod")
        if not ref.get("uid"):
            raise self._forbidden(attrs, "node requested token with a pod binding without a "
                                         "uid")
        pod = self._get_pod(attrs.namespace, ref["name"])
        if pod is None:
            raise not_found("pods", "", ref["name"])
        if ref["uid"] != pod["metadata"].get("uid"):
            raise self._forbidden(attrs, f"the UID in the bound object reference ({ref['uid']}) "
                                         "does not match the UID in record. The object might "
                                         "have been deleted and then recreated")
        if pod["spec"].get("nodeName") != node:
            raise self._forbidden(attrs, "node requested token bound to a pod scheduled on a "
                                         "different node")

    def _admit_mirror_pod(self, node: str, attrs: AdmissionAttributes) -> None:
        """The rest of ``admitPodCreate``: one controller owner reference to this Node (with
        its uid, no ``blockOwnerDeletion``), and no reference to any other API object
        (``podutil.HasAPIObjectReference``)."""
        meta = (attrs.obj or {}).get("metadata") or {}
        owners = meta.get("ownerReferences") or []
        if len(owners) > 1:
            raise self._forbidden(attrs, f'node "{node}" can only create pods with a single '
                                         "owner reference set to itself")
        owner = owners[0] if owners else {}
        if owner.get("apiVersion") != "v1" or owner.get("kind") != "Node" or \
                owner.get("name") != node:
            raise self._forbidden(attrs, f'node "{node}" can only create pods with an owner '
                                         "reference set to itself")
        if not owner.get("controller"):
            raise self._forbidden(attrs, f'node "{node}" can only create pods with a '
                                         "controller owner reference set to itself")
        if owner.get("blockOwnerDeletion"):
            raise self._forbidden(attrs, f'node "{node}" must not set blockOwnerDeletion on '
                                         "an owner reference")
        node_obj = self._get_node(node) if self._get_node is not None else None
        if node_obj is None:
            raise not_found("nodes", "", node)
        uid = node_obj["metadata"].get("uid", "")
        if owner.get("uid") != uid:
            raise self._forbidden(attrs, f"node {node} UID mismatch: expected "
                                         f"{owner.get('uid', '')} got {uid}")
        what = api_object_reference(attrs.obj or {})
        if what:
            raise self._forbidden(attrs, f'node "{node}" can not create pods that reference '
                                         f"{what}")

    def _admit_pod(self, node: str, attrs: AdmissionAttributes) -> None:
        sub, op = attrs.subresource, attrs.operation
        if sub == "status":
            bound = ((attrs.old_obj or {}).get("spec") or {}).get("nodeName")
            if bound != node:
                raise self._forbidden(attrs, f'node "{node}" can only update pod status for '
                                             "pods with spec.nodeName set to itself")
            new_labels = ((attrs.obj or {}).get("metadata") or {}).get("labels") or {}
            old_labels = ((attrs.old_obj or {}).get("metadata") or {}).get("labels") or {}
            if new_labels != old_labels:
                raise self._forbidden(attrs, f'node "{node}" cannot update labels through pod '
                                             "status")
        elif sub == "eviction":
            pod = self._get_pod(attrs.namespace, attrs.name)
            if pod is None or pod.get("spec", {}).get("nodeName") != node:
                raise self._forbidden(attrs, f'node "{node}" can only evict pods with '
                                             "spec.nodeName set to itself")
        elif sub:
            return
        elif op == "DELETE":
            bound = ((attrs.old_obj or {}).get("spec") or {}).get("nodeName")
            if bound != node:
                raise self._forbidden(attrs, f'node "{node}" can only delete pods with '
                                             "spec.nodeName set to itself")
        elif op == "CREATE":
            ann = ((attrs.obj or {}).get("metadata") or {}).get("annotations") or {}
            if MIRROR_POD_ANNOTATION not in ann:
                raise self._forbidden(attrs, f'pod does not have "{MIRROR_POD_ANNOTATION}" '
                                             f'annotation, node "{node}" can only create '
                                             "mirror pods")
            if ((attrs.obj or {}).get("spec") or {}).get("nodeName") != node:
                raise self._forbidden(attrs, f'node "{node}" can only create pods with '
                                             "spec.nodeName set to itself")
            self._admit_mirror_pod(node, attrs)
        elif op == "UPDATE":
            raise self._forbidden(attrs, f'unexpected operation "UPDATE", node "{node}" can '
                                         "only create and delete mirror pods")
