"""cloud-controller-manager (``k8s.io/cloud-provider``) and the cloud it calls through the
network."""

from __future__ import annotations

import pytest

from k8sbook.cluster import Cluster
from k8sbook.controlplane.cloud import CloudAPI, CloudError, InstanceNotFound, ModelCloud
from k8sbook.controlplane.cloud.api import ENDPOINT_HOST, ENDPOINT_IP
from k8sbook.core.status import StatusError
from k8sbook.textbook.scenarios import run


def _cloud() -> tuple[Cluster, CloudAPI, ModelCloud]:
    cluster = Cluster(0)
    api = CloudAPI()
    api.serve(cluster.network)
    return cluster, api, ModelCloud(cluster.network, "cloud-controller-manager/cp-1")


def test_cloud_controller_manager_initialises_the_node_and_the_load_balancer():
    result = run("cloud")
    f = result.facts
    assert f["registered_taints"][0]["key"] == "node.cloudprovider.kubernetes.io/uninitialized"
    assert "untolerated taint(s)" in f["waiting_reason"]
    assert f["provider_id"] == "model://zone-a/i-00000001"
    assert f["taints_after"] == [] and f["pod_node"] == "node-a"
    assert {"type": "ExternalIP", "address": "198.51.100.1"} in f["addresses"]
    assert f["ingress"] == [{"ip": "203.0.113.1", "ipMode": "VIP"}]
    assert f["finalizers"] == ["service.kubernetes.io/load-balancer-cleanup"]
    assert f["network_unavailable"]["reason"] == "RouteCreated"
    assert f["cloud_callers"] == ["cloud-controller-manager/cp-1"]
    assert not [m for m in result.messages if m.src == "kube-apiserver"
                and m.dst == "cloud-api"]


def test_cloud_calls_go_through_the_fabric_to_the_endpoint():
    cluster, api, cloud = _cloud()
    assert cluster.network.lookup(ENDPOINT_HOST) == ENDPOINT_IP
    api.launch("node-a", "192.168.0.10")
    meta = cloud.instance_metadata({"metadata": {"name": "node-a"}})
    assert meta.provider_id == "model://zone-a/i-00000001"
    msg = cluster.trace.messages[-1]
    assert (msg.path, msg.verb, msg.name, msg.result) == (
        "cloud-controller-manager->cloud-api", "InstanceMetadata", "node-a", "200")


def test_cloud_api_unknown_instance_is_an_error():
    cluster, _, cloud = _cloud()
    with pytest.raises(InstanceNotFound):
        cloud.instance_metadata({"metadata": {"name": "nope"}})
    assert cluster.trace.messages[-1].result == "404 InstanceNotFound"
    assert cloud.instance_exists({"metadata": {"name": "nope"}}) is False


def test_an_isolated_ccm_cannot_reach_the_cloud():
    cluster, api, cloud = _cloud()
    api.launch("node-a", "192.168.0.10")
    cluster.network.isolate("cloud-controller-manager")
    with pytest.raises(CloudError, match="i/o timeout"):
        cloud.list_routes("kubernetes")
    assert cluster.trace.messages[-1].result == "i/o timeout"


def test_service_controller_deletes_the_load_balancer_before_the_service():
    result = run("cloud")
    cluster = result.cluster
    cluster.admin().delete("services", "web", "default")
    cluster.run_for(2)
    lbs = [m for m in cluster.trace.messages
           if m.dst == "cloud-api" and m.resource == "loadbalancers"]
    assert [m.verb for m in lbs] == ["EnsureLoadBalancer", "EnsureLoadBalancerDeleted"]
    assert lbs[-1].result == "200"
    with pytest.raises(StatusError):
        cluster.admin().get("services", "web", "default")


def test_controlplane_does_not_import_node_addons_or_the_composition_root():
    import pathlib
    import re

    import k8sbook.controlplane as cp
    root = pathlib.Path(cp.__file__).parent
    bad = []
    for path in sorted(root.rglob("*.py")):
        for line in path.read_text().splitlines():
            if re.match(r"\s*(from|import) k8sbook\.(node|addons|cluster)\b", line):
                bad.append(f"{path.relative_to(root)}: {line.strip()}")
    assert bad == []


def test_the_cloud_authenticates_every_call_with_its_own_credentials():
    cluster, api, cloud = _cloud()
    api.launch("node-a", "192.168.0.10")
    assert cloud.instance_metadata({"metadata": {"name": "node-a"}, "spec": {}}).provider_id
    stranger = ModelCloud(cluster.network, "pod/default/web", credentials="key/stolen")
    with pytest.raises(CloudError) as err:
        stranger.instance_metadata({"metadata": {"name": "node-a"}, "spec": {}})
    assert str(err.value) == ("InstanceMetadata: 401 AuthFailure: The provided credentials "
                              "could not be validated.")


def test_the_cloud_s_policy_limits_what_a_principal_may_do():
    cluster, api, _ = _cloud()
    api.principals["key/read-only"] = frozenset({"InstanceMetadata", "ListRoutes"})
    reader = ModelCloud(cluster.network, "cloud-controller-manager/cp-1",
                        credentials="key/read-only")
    assert reader.list_routes("kubernetes") == []
    before = dict(api.load_balancers)
    with pytest.raises(CloudError) as err:
        reader.ensure_load_balancer("kubernetes", {
            "metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
            "spec": {"ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}}, [])
    assert "403 UnauthorizedOperation: You are not authorized to perform this operation." \
        in str(err.value)
    assert api.load_balancers == before
