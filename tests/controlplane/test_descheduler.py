"""The descheduler (``kubernetes-sigs/descheduler``): it only evicts."""

from __future__ import annotations

import pytest

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.cluster import Cluster
from k8sbook.controlplane.descheduler import manifests
from k8sbook.core.status import StatusError
from k8sbook.textbook.scenarios import apply, run
from tests.helpers import snapshot


def test_descheduler_only_evicts_and_a_pdb_refuses_with_429():
    result = run("rescheduling-eviction")
    facts = result.facts
    # the descheduler's own record agrees with what the apiserver answered on the trace
    answered = [m.result for m in result.messages if m.src == "descheduler"]
    assert facts["eviction_results"] == answered
    assert [r for _, _, _, r in facts["evictions"]] == [
        "429 TooManyRequests" if a.startswith("429") else "evicted" for a in answered]
    assert answered == ["429 TooManyRequests", "201"]
    assert facts["descheduler_peers"] == ["kube-apiserver"]
    assert facts["descheduler_identity"] == "system:serviceaccount:kube-system:descheduler-sa"
    evicted = facts["evictions"][-1][1].split("/")[1]
    assert evicted in facts["before"] and evicted not in facts["after"]
    assert sorted(facts["after"].values()) == ["node-a", "node-b"]
    assert len(facts["pods_running"]) == 2


def test_eviction_api_is_all_the_descheduler_may_use_to_remove_pods():
    cluster = Cluster(0)
    apply(cluster, manifests())
    d = cluster.add_descheduler()
    with pytest.raises(StatusError) as err:
        d.client.request(Request(
            "create", "pods", "", "default", "web", "binding",
            body={"kind": "Binding", "apiVersion": "v1", "metadata": {"name": "web"},
                  "target": {"name": "node-a"}}))
    assert err.value.code == 403


def test_eviction_of_a_missing_pod_is_404_and_stores_nothing():
    cluster = Cluster(0)
    before = snapshot(cluster)
    with pytest.raises(StatusError) as err:
        cluster.admin().evict("default", "ghost")
    st = err.value.status
    assert (st["code"], st["reason"]) == (404, "NotFound")
    assert st["message"] == 'pods "ghost" not found'
    assert snapshot(cluster) == before


def test_pod_violating_a_node_taint_is_picked():
    cluster = Cluster(0)
    apply(cluster, manifests())
    d = cluster.add_descheduler()
    owned = objects.pod("web")
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                             "name": "web", "uid": "u", "controller": True}]
    owned["spec"]["nodeName"] = "node-a"
    node = objects.node("node-a", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])
    assert d.remove_pods_violating_node_taints([owned], [node]) == [owned]
    owned["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    assert d.remove_pods_violating_node_taints([owned], [node]) == []


def test_a_cut_off_descheduler_records_the_network_error():
    cluster = Cluster(0)
    apply(cluster, manifests())
    cluster.admin().create(objects.node("node-a"))
    d = cluster.add_descheduler(plugins=("RemovePodsViolatingNodeTaints",))
    pod = objects.pod("web", node_name="node-a")
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                           "name": "web", "uid": "u", "controller": True}]
    cluster.admin().create(pod)
    cluster.admin().patch("nodes", "node-a", {"spec": {"taints": [
        {"key": "k", "value": "v", "effect": "NoSchedule"}]}})
    d.start(first_run_after=100.0)
    cluster.run_for(2)
    cluster.network.isolate("descheduler")
    (_, key, _, result), = d.run_once()
    assert key == "default/web" and result == "i/o timeout"
