"""The resource types the model's apiserver serves, and where each is kept in etcd.

Mirrors the apiserver's REST storage registration (``pkg/registry/*/rest/storage_*.go`` and
``k8s.io/apiserver/pkg/registry/generic``): each resource has a group, a version, a kind, a
plural name used in URLs, a scope (namespaced or cluster-wide) and an etcd key prefix. The key
prefixes are the real ones under ``/registry`` (Nodes really live under ``/registry/minions``
and Services under ``/registry/services/specs``: names kept from Kubernetes' early days).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    etcd_prefix: str
    short_names: tuple[str, ...] = ()
    #: subresources besides the main resource (``status``, ``binding``, ...)
    subresources: tuple[str, ...] = ()
    #: kinds whose spec changes bump ``metadata.generation``
    tracks_generation: bool = False
    verbs: tuple[str, ...] = field(
        default=("create", "delete", "deletecollection", "get", "list", "patch", "update",
                 "watch"))

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``pods`` or ``replicasets.apps``: how errors and RBAC name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def key(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"{self.etcd_prefix}/{namespace}/{name}"
        return f"{self.etcd_prefix}/{name}"

    def prefix(self, namespace: str = "") -> str:
        if self.namespaced and namespace:
            return f"{self.etcd_prefix}/{namespace}/"
        return f"{self.etcd_prefix}/"


_RT = ResourceType
RESOURCES: tuple[ResourceType, ...] = (
    _RT("", "v1", "Namespace", "namespaces", False, "/registry/namespaces", ("ns",),
        ("status", "finalize")),
    _RT("", "v1", "Node", "nodes", False, "/registry/minions", ("no",), ("status", "proxy")),
    _RT("", "v1", "Pod", "pods", True, "/registry/pods", ("po",),
        ("status", "binding", "eviction", "log", "exec", "attach", "portforward", "proxy")),
    _RT("", "v1", "Service", "services", True, "/registry/services/specs", ("svc",),
        ("status", "proxy")),
    # deprecated since v1.33 (KEP-4974), still served and still written by the Endpoints
    # controller; stored under the Services' key space, as upstream
    _RT("", "v1", "Endpoints", "endpoints", True, "/registry/services/endpoints", ("ep",)),
    _RT("", "v1", "ConfigMap", "configmaps", True, "/registry/configmaps", ("cm",)),
    _RT("", "v1", "PersistentVolume", "persistentvolumes", False, "/registry/persistentvolumes",
        ("pv",), ("status",)),
    _RT("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True,
        "/registry/persistentvolumeclaims", ("pvc",), ("status",)),
    _RT("", "v1", "Secret", "secrets", True, "/registry/secrets"),
    _RT("", "v1", "ServiceAccount", "serviceaccounts", True, "/registry/serviceaccounts",
        ("sa",), ("token",)),
    _RT("", "v1", "Event", "events", True, "/registry/events", ("ev",)),
    _RT("apps", "v1", "ReplicaSet", "replicasets", True, "/registry/replicasets", ("rs",),
        ("status", "scale"), tracks_generation=True),
    _RT("apps", "v1", "Deployment", "deployments", True, "/registry/deployments", ("deploy",),
        ("status", "scale"), tracks_generation=True),
    _RT("apps", "v1", "StatefulSet", "statefulsets", True, "/registry/statefulsets", ("sts",),
        ("status", "scale"), tracks_generation=True),
    _RT("apps", "v1", "DaemonSet", "daemonsets", True, "/registry/daemonsets", ("ds",),
        ("status",), tracks_generation=True),
    _RT("apps", "v1", "ControllerRevision", "controllerrevisions", True,
        "/registry/controllerrevisions"),
    _RT("batch", "v1", "Job", "jobs", True, "/registry/jobs", (), ("status",),
        tracks_generation=True),
    _RT("batch", "v1", "CronJob", "cronjobs", True, "/registry/cronjobs", ("cj",), ("status",),
        tracks_generation=True),
    _RT("coordination.k8s.io", "v1", "Lease", "leases", True, "/registry/leases"),
    _RT("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True,
        "/registry/endpointslices"),
    _RT("networking.k8s.io", "v1", "Ingress", "ingresses", True, "/registry/ingress", ("ing",),
        ("status",), tracks_generation=True),
    _RT("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False,
        "/registry/ingressclasses"),
    _RT("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations", False, "/registry/validatingwebhookconfigurations"),
    _RT("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations", False, "/registry/mutatingwebhookconfigurations"),
    _RT("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False,
        "/registry/subjectaccessreviews", verbs=("create",)),  # evaluated, never stored
    _RT("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False,
        "/registry/tokenreviews", verbs=("create",)),  # evaluated, never stored
    # asking about oneself (apiserver/access_review.py): evaluated, never stored
    _RT("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
        False, "/registry/selfsubjectaccessreviews", verbs=("create",)),
    _RT("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
        False, "/registry/selfsubjectrulesreviews", verbs=("create",)),
    _RT("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
        True, "/registry/localsubjectaccessreviews", verbs=("create",)),
    _RT("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False,
        "/registry/selfsubjectreviews", verbs=("create",)),
    _RT("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests",
        False, "/registry/certificatesigningrequests", ("csr",), ("status", "approval")),
    _RT("apiregistration.k8s.io", "v1", "APIService", "apiservices", False,
        "/registry/apiregistration.k8s.io/apiservices", subresources=("status",)),
    _RT("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True,
        "/registry/poddisruptionbudgets", ("pdb",), ("status",), tracks_generation=True),
    _RT("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False,
        "/registry/priorityclasses", ("pc",)),
    _RT("rbac.authorization.k8s.io", "v1", "Role", "roles", True, "/registry/roles"),
    _RT("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False,
        "/registry/clusterroles"),
    _RT("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True,
        "/registry/rolebindings"),
    _RT("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False,
        "/registry/clusterrolebindings"),
    # served from the core Events' storage, converted (``k8sbook.api.eventsv1``)
    _RT("events.k8s.io", "v1", "Event", "events", True, "/registry/events", ("ev",)),
)
#: group versions served by converting to another resource's storage: (group, plural) ->
#: the group the objects are stored as
CONVERTED = {("events.k8s.io", "events"): ""}

_BY_PLURAL = {(r.group, r.plural): r for r in RESOURCES}
_BY_KIND: dict[str, ResourceType] = {}
for _r in RESOURCES:  # a kind served in two groups (Event) is its first, stored, one
    _BY_KIND.setdefault(_r.kind, _r)


def lookup(plural: str, group: str | None = None) -> ResourceType | None:
    """Find a resource by plural (``pods``), ``plural.group`` or short name."""
    if group is None and "." in plural:
        plural, group = plural.split(".", 1)
    for r in RESOURCES:
        if (plural == r.plural or plural in r.short_names or plural == r.kind.lower()) and (
            group is None or group == r.group
        ):
            return r
    return None


def by_plural(group: str, plural: str) -> ResourceType | None:
    return _BY_PLURAL.get((group, plural))


def by_kind(kind: str) -> ResourceType:
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise KeyError(f"the model serves no kind {kind!r}") from None
