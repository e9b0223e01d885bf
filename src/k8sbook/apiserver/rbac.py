"""The default roles and bindings kube-apiserver creates when it starts.

Mirrors ``plugin/pkg/auth/authorizer/rbac/bootstrappolicy`` (``policy.go``,
``controller_policy.go``), which the apiserver's ``rbac/bootstrap-roles`` post-start hook
writes into the cluster. Only the roles the model's components use are here, and their rules
are abridged to what those components do: each role lists the rules of the real one that
cover the model's requests (the kube-scheduler and kube-controller-manager roles are the real
rule lists minus the legacy Endpoints-lock rules), and nothing broader.
"""

from __future__ import annotations

from typing import Any

from k8sbook.apiserver import controller_policy

Rule = dict[str, list[str]]  # apiGroups, resources, verbs, optional resourceNames

READ = ["get", "list", "watch"]
WRITE = ["create", "update", "patch", "delete"]


def rule(groups: list[str], resources: list[str], verbs: list[str]) -> Rule:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


#: name -> rules. Components and chapters add their roles here (with their bindings below).
CLUSTER_ROLES: dict[str, list[Rule]] = {
    "cluster-admin": [rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}],
    # what every caller may read, anonymous or not (``bootstrappolicy.ClusterRoles``)
    "system:public-info-viewer": [{"nonResourceURLs": [
        "/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}],
    # what every authenticated user may ask about themselves (``basicUserRules``)
    "system:basic-user": [
        rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
             ["create"]),
        rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"])],
    # discovery, for authenticated callers only (anonymous lost it in v1.14)
    "system:discovery": [{"nonResourceURLs": [
        "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
        "/readyz", "/version", "/version/"], "verbs": ["get"]}],
    "system:kube-scheduler": [
        rule([""], ["events"], ["create", "patch", "update"]),
        rule(["events.k8s.io"], ["events"], ["create", "patch", "update"]),
        rule(["coordination.k8s.io"], ["leases"], ["create"]),
        {**rule(["coordination.k8s.io"], ["leases"], ["get", "update"]),
         "resourceNames": ["kube-scheduler"]},
        rule([""], ["nodes"], READ),
        rule([""], ["pods"], READ + ["delete"]),
        rule([""], ["bindings", "pods/binding"], ["create"]),
        rule([""], ["pods/status"], ["patch", "update"]),
        rule([""], ["namespaces", "services", "persistentvolumeclaims", "persistentvolumes",
                    "replicationcontrollers"], READ),
        rule(["apps"], ["replicasets", "statefulsets"], READ),
        rule(["policy"], ["poddisruptionbudgets"], READ),
    ],
    "system:node-proxier": [
        rule([""], ["services", "endpoints"], ["list", "watch"]),
        rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
        rule([""], ["nodes"], READ),
        rule([""], ["events"], ["create", "patch", "update"]),
        rule(["events.k8s.io"], ["events"], ["create", "patch", "update"]),
    ],
    "system:kube-controller-manager": [
        rule([""], ["events"], ["create", "patch", "update"]),
        rule(["events.k8s.io"], ["events"], ["create", "patch", "update"]),
        rule(["coordination.k8s.io"], ["leases"], ["create"]),
        {**rule(["coordination.k8s.io"], ["leases"], ["get", "update"]),
         "resourceNames": ["kube-controller-manager"]},
        rule([""], ["secrets", "serviceaccounts"], ["create"]),
        rule([""], ["secrets"], ["delete"]),
        rule([""], ["namespaces", "secrets", "serviceaccounts", "configmaps"], ["get"]),
        rule([""], ["secrets", "serviceaccounts"], ["update"]),
        rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
        rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
        # "Needed for all shared informers": the informers run as this identity
        rule(["*"], ["*"], ["list", "watch"]),
        rule([""], ["serviceaccounts/token"], ["create"]),
    ],
    "system:controller:replicaset-controller": [
        rule(["apps", "extensions"], ["replicasets"], READ + ["update"]),
        rule(["apps", "extensions"], ["replicasets/status"], ["update"]),
        rule(["apps", "extensions"], ["replicasets/finalizers"], ["update"]),
        rule([""], ["pods"], ["create", "delete", "list", "patch", "watch"]),
        rule([""], ["events"], ["create", "patch", "update"]),
    ],
    "system:controller:disruption-controller": [
        rule(["extensions", "apps"], ["deployments"], READ),
        rule(["apps", "extensions"], ["replicasets"], READ),
        rule([""], ["replicationcontrollers"], READ),
        rule(["policy"], ["poddisruptionbudgets"], READ),
        rule(["apps"], ["statefulsets"], READ),
        rule(["policy"], ["poddisruptionbudgets/status"], ["update"]),
        rule([""], ["events"], ["create", "patch", "update"]),
    ],
    "system:kubelet-api-admin": [
        rule([""], ["nodes"], ["get", "list", "watch"]),
        rule([""], ["nodes"], ["proxy"]),
        rule([""], ["nodes/proxy", "nodes/metrics", "nodes/spec", "nodes/stats", "nodes/log"],
             ["*"]),
    ],
    "system:controller:node-controller": [
        rule([""], ["nodes"], ["get", "list", "update", "delete", "patch"]),
        rule([""], ["nodes/status"], ["patch", "update"]),
        rule([""], ["pods/status"], ["patch", "update"]),
        rule([""], ["pods"], ["list", "delete"]),
        rule([""], ["events"], ["create", "patch", "update"]),
        rule(["events.k8s.io"], ["events"], ["create", "patch", "update"]),
    ],
    "system:controller:endpointslice-controller": [
        rule([""], ["services", "pods", "nodes"], ["get", "list", "watch"]),
        rule([""], ["services/finalizers"], ["update"]),
        rule(["discovery.k8s.io"], ["endpointslices"], ["create", "delete", "get", "list",
                                                         "update"]),
        rule([""], ["events"], ["create", "patch", "update"]),
    ],
    # for servers that delegate authentication and authorization to the apiserver
    "system:auth-delegator": [
        rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
        rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"])],
    # TLS bootstrapping (``bootstrappolicy.ClusterRoles``): bootstrap tokens create CSRs; the
    # approver asks, with a SubjectAccessReview, whether the requester may create the
    # ``nodeclient`` (a new node) or ``selfnodeclient`` (a node renewing) subresource
    "system:node-bootstrapper": [
        rule(["certificates.k8s.io"], ["certificatesigningrequests"],
             ["create", "get", "list", "watch"])],
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient": [
        rule(["certificates.k8s.io"], ["certificatesigningrequests/nodeclient"], ["create"])],
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient": [
        rule(["certificates.k8s.io"], ["certificatesigningrequests/selfnodeclient"],
             ["create"])],
    # ``controller_policy.go``: csrapproving, csrsigning and csrcleaner
    "system:controller:certificate-controller": [
        rule(["certificates.k8s.io"], ["certificatesigningrequests"],
             ["get", "list", "watch", "delete"]),
        rule(["certificates.k8s.io"], ["certificatesigningrequests/status",
                                       "certificatesigningrequests/approval"], ["update"]),
        {**rule(["certificates.k8s.io"], ["signers"], ["approve"]),
         "resourceNames": ["kubernetes.io/kube-apiserver-client-kubelet"]},
        {**rule(["certificates.k8s.io"], ["signers"], ["sign"]),
         "resourceNames": ["kubernetes.io/legacy-unknown", "kubernetes.io/kube-apiserver-client",
                           "kubernetes.io/kube-apiserver-client-kubelet",
                           "kubernetes.io/kubelet-serving"]},
        rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
        rule([""], ["events"], ["create", "patch", "update"]),
        rule(["events.k8s.io"], ["events"], ["create", "patch", "update"]),
    ],
    # Not an apiserver default: kubeadm's CoreDNS add-on writes it (with the same
    # kubernetes.io/bootstrapping label), bound to the ServiceAccount kube-system:coredns.
    **controller_policy.cluster_roles(),
    "system:coredns": [
        rule([""], ["endpoints", "services", "pods", "namespaces"], ["list", "watch"]),
        rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
    ],
}

#: name -> (role, subjects)
CLUSTER_ROLE_BINDINGS: dict[str, tuple[str, list[dict[str, str]]]] = {
    "cluster-admin": ("cluster-admin", [{"kind": "Group", "name": "system:masters",
                                          "apiGroup": "rbac.authorization.k8s.io"}]),
    "system:public-info-viewer": ("system:public-info-viewer", [
        {"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "Group", "name": "system:unauthenticated",
         "apiGroup": "rbac.authorization.k8s.io"}]),
    "system:basic-user": ("system:basic-user", [
        {"kind": "Group", "name": "system:authenticated",
         "apiGroup": "rbac.authorization.k8s.io"}]),
    "system:discovery": ("system:discovery", [
        {"kind": "Group", "name": "system:authenticated",
         "apiGroup": "rbac.authorization.k8s.io"}]),
    "system:kube-scheduler": ("system:kube-scheduler", [
        {"kind": "User", "name": "system:kube-scheduler",
         "apiGroup": "rbac.authorization.k8s.io"}]),
    "system:node-proxier": ("system:node-proxier", [
        {"kind": "User", "name": "system:kube-proxy", "apiGroup": "rbac.authorization.k8s.io"}]),
    "system:kube-controller-manager": ("system:kube-controller-manager", [
        {"kind": "User", "name": "system:kube-controller-manager",
         "apiGroup": "rbac.authorization.k8s.io"}]),
    "system:controller:replicaset-controller": ("system:controller:replicaset-controller", [
        {"kind": "ServiceAccount", "name": "replicaset-controller", "namespace": "kube-system"}]),
    "system:controller:disruption-controller": ("system:controller:disruption-controller", [
        {"kind": "ServiceAccount", "name": "disruption-controller", "namespace": "kube-system"}]),
    "system:controller:node-controller": ("system:controller:node-controller", [
        {"kind": "ServiceAccount", "name": "node-controller", "namespace": "kube-system"}]),
    "system:controller:endpointslice-controller": (
        "system:controller:endpointslice-controller", [
            {"kind": "ServiceAccount", "name": "endpointslice-controller",
             "namespace": "kube-system"}]),
    **controller_policy.cluster_role_bindings(),
    "system:coredns": ("system:coredns", [
        {"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]),
    "system:controller:certificate-controller": ("system:controller:certificate-controller", [
        {"kind": "ServiceAccount", "name": "certificate-controller",
         "namespace": "kube-system"}]),
}


def _meta(name: str, labels: dict[str, str] | None) -> dict[str, Any]:
    return {"name": name, "labels": dict(labels)} if labels else {"name": name}


def cluster_role(name: str, rules: list[Rule],
                 labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A ``ClusterRole`` object."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": _meta(name, labels), "rules": rules}


def cluster_role_binding(name: str, role: str, subjects: list[dict[str, str]],
                         labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A ``ClusterRoleBinding`` of ``subjects`` to the ClusterRole ``role``."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": _meta(name, labels),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": subjects}


def service_account_manifests(account: str, namespace: str, role: str, rules: list[Rule],
                              binding: str | None = None) -> list[dict[str, Any]]:
    """What an add-on's manifest applies: its ServiceAccount, a ClusterRole with its rules and
    the ClusterRoleBinding between them."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": account, "namespace": namespace}},
        cluster_role(role, rules),
        cluster_role_binding(binding or role, role, [
            {"kind": "ServiceAccount", "name": account, "namespace": namespace}]),
    ]


#: bootstrap roles (and their bindings) the model added after its first chapters were written:
#: the apiserver creates them with ids from a side stream (``IdGenerator.side_stream``)
LATER_ADDITIONS = ("system:discovery", "system:public-info-viewer", "system:basic-user",
                   "system:node-bootstrapper",
                   "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                   "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                   "system:controller:certificate-controller", "system:auth-delegator")


#: bootstrap roles (and bindings) of controllers that only a cluster with the ServiceAccount
#: admission plugin runs (``k8sbook serve``): upstream's policy has them always; the model
#: creates them only there (from a side stream of ids), so that the chapters' clusters, which
#: never run these controllers, keep the etcd revisions their pages show
ADMISSION_ADDITIONS = ("system:controller:root-ca-cert-publisher",)


def bootstrap_objects() -> list[dict[str, Any]]:
    """The ClusterRoles, then the ClusterRoleBindings, as API objects, sorted by name."""
    labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    roles = [cluster_role(name, CLUSTER_ROLES[name], labels) for name in sorted(CLUSTER_ROLES)]
    bindings = [cluster_role_binding(name, *CLUSTER_ROLE_BINDINGS[name], labels)
                for name in sorted(CLUSTER_ROLE_BINDINGS)]
    return roles + bindings
