"""The ClusterRoles of the controllers added for issue 16, and their bindings.

Mirrors ``plugin/pkg/auth/authorizer/rbac/bootstrappolicy/controller_policy.go``
(``buildControllerRoles``): one role ``system:controller:<name>`` per controller, bound to the
ServiceAccount ``kube-system/<name>`` that kube-controller-manager runs the controller as
(``--use-service-account-credentials``). The rules are the real ones for the resources the
model serves (legacy ``extensions`` groups and resources the model does not serve left out).
:mod:`k8sbook.apiserver.rbac` merges them into the bootstrap policy.
"""

from __future__ import annotations

from typing import Any

Rule = dict[str, list[str]]

READ = ["get", "list", "watch"]
EVENTS = {"apiGroups": ["", "events.k8s.io"], "resources": ["events"],
          "verbs": ["create", "patch", "update"]}


def _r(groups: list[str], resources: list[str], verbs: list[str]) -> Rule:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


#: controller service account -> its rules
CONTROLLER_ROLES: dict[str, list[Rule]] = {
    "deployment-controller": [
        _r(["apps"], ["deployments"], READ + ["update"]),
        _r(["apps"], ["deployments/status"], ["update"]),
        _r(["apps"], ["deployments/finalizers"], ["update"]),
        _r(["apps"], ["replicasets"], READ + ["create", "update", "patch", "delete"]),
        _r([""], ["pods"], ["get", "list", "update", "watch"]),
        EVENTS],
    "endpoint-controller": [
        _r([""], ["services", "pods"], READ),
        _r([""], ["endpoints"], ["get", "list", "create", "update", "delete"]),
        _r([""], ["endpoints/restricted"], ["create"]),
        EVENTS],
    "generic-garbage-collector": [
        _r(["*"], ["*"], READ + ["patch", "update", "delete"]), EVENTS],
    "namespace-controller": [
        _r([""], ["namespaces"], ["get", "list", "watch", "delete"]),
        _r([""], ["namespaces/finalize", "namespaces/status"], ["update"]),
        _r(["*"], ["*"], ["get", "list", "delete", "deletecollection"])],
    "root-ca-cert-publisher": [_r([""], ["configmaps"], ["create", "update"]), EVENTS],
    "service-account-controller": [_r([""], ["serviceaccounts"], ["create"]), EVENTS],
    "job-controller": [
        _r(["batch"], ["jobs"], READ + ["update", "patch"]),
        _r(["batch"], ["jobs/status"], ["update", "patch"]),
        _r(["batch"], ["jobs/finalizers"], ["update", "patch"]),
        _r([""], ["pods"], ["list", "watch", "create", "delete", "patch"]),
        EVENTS],
    "cronjob-controller": [
        _r(["batch"], ["cronjobs"], READ + ["update"]),
        _r(["batch"], ["jobs"], READ + ["create", "update", "delete", "patch"]),
        _r(["batch"], ["cronjobs/status"], ["update"]),
        _r(["batch"], ["cronjobs/finalizers"], ["update"]),
        _r([""], ["pods"], ["list", "delete"]),
        EVENTS],
    "daemon-set-controller": [
        _r(["apps"], ["daemonsets"], READ),
        _r(["apps"], ["daemonsets/status"], ["update"]),
        _r(["apps"], ["daemonsets/finalizers"], ["update"]),
        _r([""], ["nodes"], ["list", "watch"]),
        _r([""], ["pods"], ["list", "watch", "create", "delete", "patch"]),
        _r([""], ["pods/binding"], ["create"]),
        _r(["apps"], ["controllerrevisions"], READ + ["create", "delete", "patch", "update"]),
        EVENTS],
    "statefulset-controller": [
        _r([""], ["pods"], READ + ["create", "delete", "update", "patch"]),
        _r(["apps"], ["statefulsets"], READ),
        _r(["apps"], ["statefulsets/status"], ["update"]),
        _r(["apps"], ["statefulsets/finalizers"], ["update"]),
        _r([""], ["persistentvolumeclaims"], ["get", "create", "delete", "update", "patch"]),
        _r(["apps"], ["controllerrevisions"], READ + ["create", "delete", "patch", "update"]),
        EVENTS],
}


def cluster_roles() -> dict[str, list[Rule]]:
    return {f"system:controller:{sa}": rules for sa, rules in CONTROLLER_ROLES.items()}


def cluster_role_bindings() -> dict[str, tuple[str, list[dict[str, Any]]]]:
    return {f"system:controller:{sa}": (f"system:controller:{sa}", [
        {"kind": "ServiceAccount", "name": sa, "namespace": "kube-system"}])
        for sa in CONTROLLER_ROLES}
