"""metrics-server's manifest: what ``kubectl apply -f components.yaml`` creates, and its flags.

Mirrors ``manifests/`` of kubernetes-sigs/metrics-server (the released ``components.yaml`` of
v0.7/v0.8): the ServiceAccount, the ClusterRoles ``system:aggregated-metrics-reader`` and
``system:metrics-server`` and their bindings, the Service, and the pod its Deployment runs, with
the flags the manifest passes (``--secure-port``, ``--kubelet-preferred-address-types``,
``--kubelet-use-node-status-port``, ``--metric-resolution``); plus the two delegation roles
real kube-apiserver bootstraps. The server itself is :mod:`k8sbook.addons.metrics_server`.
"""

from __future__ import annotations

from typing import Any

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
NAMESPACE, NAME = "kube-system", "metrics-server"
#: the ``--metric-resolution`` the project's manifest sets (the flag's own default is 60 s)
METRIC_RESOLUTION = 15.0
CODE_DEFAULT_METRIC_RESOLUTION = 60.0
#: ``--secure-port`` in the manifest (the container port named ``https``)
SECURE_PORT = 10250
#: ``--kubelet-preferred-address-types`` in the manifest (the code's default starts with
#: Hostname)
PREFERRED_ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")


def go_duration(seconds: float) -> str:
    """``metav1.Duration`` as JSON (Go's ``time.Duration.String``): 15s, 1m0s, 1.5s."""
    if seconds >= 60:
        m, s = divmod(seconds, 60)
        return f"{int(m)}m{s:g}s"
    return f"{seconds:g}s"


def manifests() -> list[dict[str, Any]]:
    """What ``kubectl apply -f components.yaml`` creates for the model (RBAC, Service,
    APIService). The Deployment itself is
    :class:`~k8sbook.addons.metrics_server.MetricsServer`."""
    sa_subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"k8s-app": NAME}}},
        {"apiVersion": rbac, "kind": "ClusterRole",
         "metadata": {"name": "system:aggregated-metrics-reader",
                      "labels": {"k8s-app": NAME,
                                 "rbac.authorization.k8s.io/aggregate-to-admin": "true",
                                 "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                                 "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
         "rules": [{"apiGroups": [GROUP], "resources": ["pods", "nodes"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": rbac, "kind": "ClusterRole",
         "metadata": {"name": "system:metrics-server", "labels": {"k8s-app": NAME}},
         "rules": [{"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["pods", "nodes"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": rbac, "kind": "RoleBinding",
         "metadata": {"name": "metrics-server-auth-reader", "namespace": NAMESPACE,
                      "labels": {"k8s-app": NAME}},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "extension-apiserver-authentication-reader"},
         "subjects": sa_subject},
        {"apiVersion": rbac, "kind": "ClusterRoleBinding",
         "metadata": {"name": "metrics-server:system:auth-delegator",
                      "labels": {"k8s-app": NAME}},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "system:auth-delegator"},
         "subjects": sa_subject},
        {"apiVersion": rbac, "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:metrics-server", "labels": {"k8s-app": NAME}},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "system:metrics-server"},
         "subjects": sa_subject},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"k8s-app": NAME}},
         "spec": {"selector": {"k8s-app": NAME},
                  "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                             "targetPort": "https"}]}},
    ]


def pod(node: str, image: str = "registry.k8s.io/metrics-server/metrics-server:v0.8.0",
        metric_resolution: float = METRIC_RESOLUTION) -> dict[str, Any]:
    """The pod the manifest's Deployment runs (created directly, on ``node``): the container
    port ``https`` (10250) is what the Service's ``targetPort: https`` names."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{NAME}-0", "namespace": NAMESPACE,
                         "labels": {"k8s-app": NAME}},
            "spec": {"nodeName": node, "serviceAccountName": NAME,
                     "containers": [{
                         "name": NAME, "image": image,
                         "args": ["--cert-dir=/tmp", f"--secure-port={SECURE_PORT}",
                                  "--kubelet-preferred-address-types="
                                  + ",".join(PREFERRED_ADDRESS_TYPES),
                                  "--kubelet-use-node-status-port",
                                  f"--metric-resolution={go_duration(metric_resolution)}"],
                         "ports": [{"name": "https", "containerPort": SECURE_PORT,
                                    "protocol": "TCP"}]}]}}


def delegation_roles() -> list[dict[str, Any]]:
    """A Role real kube-apiserver bootstraps and the model's policy does not carry:
    ``kube-system/extension-apiserver-authentication-reader`` (``system:auth-delegator``,
    create TokenReviews and SubjectAccessReviews, is one of the model's bootstrap roles)."""
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": rbac, "kind": "Role",
         "metadata": {"name": "extension-apiserver-authentication-reader",
                      "namespace": NAMESPACE},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                    "resourceNames": ["extension-apiserver-authentication"],
                    "verbs": ["get", "list", "watch"]}]},
    ]
