"""The admission chain: mutating plugins first, then validating ones.

Mirrors ``k8s.io/apiserver/pkg/admission``: ``admission.Attributes`` (operation CREATE,
UPDATE, DELETE or CONNECT, the object and the old object, the user), ``MutationInterface``
(``Admit``, may change the object) and ``ValidationInterface`` (``Validate``, may only refuse).
The apiserver runs every mutating plugin, then every validating plugin, after authorization and
before the object is validated and written. Admission webhooks are plugins of this chain too
(``MutatingAdmissionWebhook``, ``ValidatingAdmissionWebhook``), which is how later chapters add
the apiserver-to-webhook path.

Built in here, from ``plugin/pkg/admission``: ``NamespaceLifecycle`` (no new objects in a
namespace that does not exist or is being deleted) and ``DefaultTolerationSeconds`` (pods
tolerate ``node.kubernetes.io/not-ready`` and ``unreachable`` for 300 s unless they say
otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from k8sbook.apiserver.authentication import UserInfo
from k8sbook.core.status import StatusError, forbidden, not_found

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


@dataclass
class AdmissionAttributes:
    operation: Operation
    kind: str
    api_group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    obj: dict[str, Any] | None
    old_obj: dict[str, Any] | None
    user: UserInfo
    #: a ``dryRun=All`` request (``Attributes.IsDryRun``): webhooks are told, and only those
    #: declaring ``sideEffects: None`` or ``NoneOnDryRun`` may be called
    dry_run: bool = False


class MutatingPlugin(Protocol):
    name: str

    def admit(self, attrs: AdmissionAttributes) -> None: ...


class ValidatingPlugin(Protocol):
    name: str

    def validate(self, attrs: AdmissionAttributes) -> None: ...


@dataclass
class AdmissionChain:
    mutating: list[MutatingPlugin] = field(default_factory=list)
    validating: list[ValidatingPlugin] = field(default_factory=list)

    def run(self, attrs: AdmissionAttributes) -> None:
        """Raise the first plugin's StatusError; objects may be mutated in place."""
        for plugin in self.mutating:
            plugin.admit(attrs)
        for vplugin in self.validating:
            vplugin.validate(attrs)

    def names(self) -> list[str]:
        return [p.name for p in self.mutating] + [p.name for p in self.validating]


#: Namespaces the NamespaceLifecycle plugin never lets anyone delete.
IMMORTAL_NAMESPACES = ("default", "kube-public", "kube-system")


class NamespaceLifecycle:
    """Refuse new content in missing or terminating namespaces, and deleting system ones."""

    name = "NamespaceLifecycle"

    def __init__(self, get_namespace: Callable[[str], dict[str, Any] | None]) -> None:
        self._get = get_namespace

    def validate(self, attrs: AdmissionAttributes) -> None:
        if attrs.kind == "Namespace":
            if attrs.operation == "DELETE" and attrs.name in IMMORTAL_NAMESPACES:
                raise forbidden("namespaces", "", attrs.name,
                                "this namespace may not be deleted")
            return
        if not attrs.namespace or attrs.operation != "CREATE":
            return
        ns = self._get(attrs.namespace)
        if ns is None:
            raise not_found("namespaces", "", attrs.namespace)
        if ns.get("status", {}).get("phase") == "Terminating" and attrs.kind != "Event":
            raise StatusError({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": f'{attrs.resource} "{attrs.name}" is forbidden: unable to create new '
                           f"content in namespace {attrs.namespace} because it is being "
                           "terminated",
                "reason": "Forbidden", "code": 403,
                "details": {"name": attrs.name, "kind": attrs.resource,
                            "causes": [{"reason": "NamespaceTerminating",
                                        "message": f"namespace {attrs.namespace} is being "
                                                   "terminated",
                                        "field": "metadata.namespace"}]},
            })


class DefaultTolerationSeconds:
    """Add 300 s NoExecute tolerations for not-ready and unreachable nodes to every pod."""

    name = "DefaultTolerationSeconds"
    SECONDS = 300
    TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")

    def admit(self, attrs: AdmissionAttributes) -> None:
        if attrs.kind != "Pod" or attrs.operation != "CREATE" or attrs.subresource:
            return
        spec = attrs.obj.setdefault("spec", {}) if attrs.obj is not None else {}
        tolerations = spec.setdefault("tolerations", [])
        for key in self.TAINTS:
            if any(t.get("key") == key and t.get("effect", "NoExecute") == "NoExecute"
                   or (t.get("operator") == "Exists" and not t.get("key"))
                   for t in tolerations):
                continue
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": self.SECONDS})


class Priority:
    """``plugin/pkg/admission/priority``: resolve a pod's ``priorityClassName`` into
    ``spec.priority`` and ``spec.preemptionPolicy`` (0 and ``PreemptLowerPriority`` when it
    names none and no class is ``globalDefault``); an unknown class is refused with 403."""

    name = "Priority"

    def __init__(self, list_classes: Callable[[], list[dict[str, Any]]]) -> None:
        self._classes = list_classes

    def admit(self, attrs: AdmissionAttributes) -> None:
        if attrs.kind != "Pod" or attrs.operation != "CREATE" or attrs.subresource \
                or attrs.obj is None:
            return
        spec = attrs.obj.setdefault("spec", {})
        classes = self._classes()
        name = spec.get("priorityClassName", "")
        if name:
            pc = next((c for c in classes if c["metadata"]["name"] == name), None)
            if pc is None:
                raise forbidden(attrs.resource, "", attrs.name,
                                f"no PriorityClass with name {name} was found")
        else:
            pc = next((c for c in sorted(classes, key=lambda c: c["metadata"]["name"])
                       if c.get("globalDefault")), None)
            if pc is not None:
                spec["priorityClassName"] = pc["metadata"]["name"]
        spec["priority"] = pc.get("value", 0) if pc else 0
        spec["preemptionPolicy"] = (pc or {}).get("preemptionPolicy", "PreemptLowerPriority")
