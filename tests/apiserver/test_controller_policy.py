"""The controllers' bootstrap roles (``bootstrappolicy/controller_policy.go``)."""

from __future__ import annotations

import pytest

from k8sbook.api import objects
from k8sbook.apiserver import rbac
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controller_manager import CONTROLLERS
from k8sbook.core.status import StatusError


def test_every_controller_account_has_its_role_and_binding():
    for account, _ in CONTROLLERS.values():
        if not account:  # runs as kube-controller-manager itself (the tokens controller)
            continue
        role = f"system:controller:{account}"
        assert role in rbac.CLUSTER_ROLES
        _, subjects = rbac.CLUSTER_ROLE_BINDINGS[role]
        assert subjects == [{"kind": "ServiceAccount", "name": account,
                             "namespace": "kube-system"}]


def test_each_controller_may_do_its_work_and_no_more():
    c = Cluster(0)
    adm = c.admin()
    adm.create(objects.pod("web"))
    deploy = c.service_account_client("kube-controller-manager", "kube-system",
                                      "deployment-controller")
    deploy.create(objects.replicaset("web-abc"))  # its job
    with pytest.raises(StatusError) as err:
        deploy.delete("pods", "web", "default")  # not its job
    assert err.value.code == 403
    gc = c.service_account_client("kube-controller-manager", "kube-system",
                                  "generic-garbage-collector")
    gc.delete("replicasets", "web-abc", "default")  # the collector may delete anything
    gc.delete("pods", "web", "default")
    with pytest.raises(StatusError) as err:
        gc.create(objects.configmap("x"))  # but never create
    assert err.value.code == 403
