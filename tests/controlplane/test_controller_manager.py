"""kube-controller-manager: built by the composition root, controllers with their own
service-account clients."""

from __future__ import annotations

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controller_manager import KubeControllerManager


def test_controllers_get_clients_from_the_function_they_are_given():
    cluster = Cluster(0)
    asked: list[str] = []

    def client_for(name: str):
        asked.append(name)
        return cluster.service_account_client("kcm", "kube-system", name)

    kcm = KubeControllerManager(cluster.client("kube-controller-manager"), cluster.clock,
                                identity="cp_1", client_for_service_account=client_for)
    kcm.start()
    cluster.run_for(1)
    assert asked == ["replicaset-controller", "disruption-controller"]
    assert kcm.leading and sorted(kcm.controllers) == ["disruption", "replicaset"]


def test_factory_registers_the_component_and_its_identity():
    cluster = Cluster(0)
    kcm = cluster.add_controller_manager("kube-controller-manager/cp-7")
    assert cluster.components["kube-controller-manager/cp-7"] is kcm
    assert kcm.identity.startswith("cp-7_")
    kcm.start()
    cluster.run_for(1)
    lease = cluster.admin().get("leases", "kube-controller-manager", "kube-system")
    assert lease["spec"]["holderIdentity"] == kcm.identity
    cluster.admin().create(objects.replicaset("web", replicas=1))
    cluster.run_for(2)
    assert len(cluster.admin().list("pods", "default")["items"]) == 1
