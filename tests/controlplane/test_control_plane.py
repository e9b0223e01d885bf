"""The control-plane components: leader election, controllers, scheduler, descheduler, cloud."""

from __future__ import annotations

import pytest

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.client.leaderelection import (
    LEASE_DURATION,
    RENEW_DEADLINE,
    RETRY_PERIOD,
    LeaderElector,
    leaders_at,
)
from k8sbook.cluster import Cluster
from k8sbook.controlplane.cloud import CloudAPI
from k8sbook.controlplane.controller_manager import KubeControllerManager
from k8sbook.controlplane.scheduler import (
    DEFAULT_MULTIPOINT,
    KubeScheduler,
    Profile,
    SchedulerConfigError,
    num_feasible_nodes_to_find,
)
from k8sbook.controlplane.scheduler.queue import QueuedPodInfo, SchedulingQueue
from k8sbook.core.status import StatusError
from k8sbook.textbook.scenarios import run
from tests.helpers import snapshot

# -- leader election ----------------------------------------------------------------------


def test_leader_election_defaults_are_the_components_defaults():
    assert (LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD) == (15.0, 10.0, 2.0)
    with pytest.raises(ValueError):
        LeaderElector(Cluster(0).client("kube-scheduler"), "kube-system", "x", "me",
                      lease_duration=10, renew_deadline=10)


def test_leader_cut_off_steps_down_before_the_other_takes_over():
    facts = run("controllers-leader-election").facts
    assert facts["overlap"] == []
    (one,), (two,) = facts["terms"].values()
    assert one == [0.0, 30.0]  # last renewal at 20 s, renew deadline 10 s
    assert two[0] >= 20.0 + LEASE_DURATION and two[1] is None
    assert facts["cp1_exited"] and facts["cp2_leading"]
    assert facts["lease_spec"]["leaseTransitions"] == 1
    assert facts["lease_spec"]["holderIdentity"] == facts["identities"]["cp-2"]
    assert facts["pods_created_by"] == ["kube-controller-manager/cp-2"]


def test_crashed_leader_is_replaced_after_the_lease_expires():
    cluster = Cluster(0)
    one = KubeControllerManager(cluster, "kube-controller-manager/cp-1", controllers=())
    two = KubeControllerManager(cluster, "kube-controller-manager/cp-2", controllers=())
    one.start()
    two.start()
    cluster.clock.run_until(10.0)
    one.stop()  # killed: no release, the Lease simply stops being renewed
    cluster.clock.run_until(40.0)
    (t1,), (t2,) = one.elector.terms, two.elector.terms
    assert t1 == [0.0, 10.0] and 10.0 + LEASE_DURATION <= t2[0] <= 10.0 + LEASE_DURATION + 2
    assert all(len(leaders_at([one.elector, two.elector], t / 4)) <= 1 for t in range(160))


def test_two_candidates_racing_for_a_free_lease_only_one_wins():
    cluster = Cluster(0)
    a = LeaderElector(cluster.client("kube-scheduler/a"), "kube-system", "kube-scheduler", "a")
    b = LeaderElector(cluster.client("kube-scheduler/b"), "kube-system", "kube-scheduler", "b")
    assert a.try_acquire_or_renew() is True
    assert b.try_acquire_or_renew() is False
    lease = cluster.admin().get("leases", "kube-scheduler", "kube-system")
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["renewTime"].endswith("Z") and "." in lease["spec"]["renewTime"]


# -- controllers --------------------------------------------------------------------------


def test_replicaset_controller_creates_and_deletes_owned_pods():
    facts = run("controllers-replicaset").facts
    assert len(facts["pods_after_create"]) == 3 and len(facts["pods_after_scale_down"]) == 1
    ref = facts["owner_reference"]
    assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == \
        ("ReplicaSet", "web", True, True)
    assert facts["generate_name"] == "web-"
    assert facts["pod_node"] == [""]  # nobody scheduled them: that is not the controller's job
    assert facts["rs_status"]["replicas"] == 1
    assert facts["rs_status"]["observedGeneration"] == facts["rs_generation"] == 2
    assert [e[1] for e in facts["events"]].count("SuccessfulCreate") == 3
    assert [e[1] for e in facts["events"]].count("SuccessfulDelete") == 2
    assert facts["informer_identity"] == "system:kube-controller-manager"
    assert facts["controller_identity"] == \
        "system:serviceaccount:kube-system:replicaset-controller"


def test_replicaset_is_level_triggered_a_deleted_pod_is_replaced():
    cluster = Cluster(0)
    KubeControllerManager(cluster).start()
    cluster.run_for(3)
    admin = cluster.admin()
    admin.create(objects.replicaset("web", replicas=2))
    cluster.run_for(2)
    victim = admin.list("pods", "default")["items"][0]["metadata"]["name"]
    admin.delete("pods", victim, "default")
    cluster.run_for(2)
    names = [p["metadata"]["name"] for p in admin.list("pods", "default")["items"]]
    assert len(names) == 2 and victim not in names


def test_disruption_controller_computes_the_budget():
    facts = run("rescheduling-eviction").facts
    assert facts["pdb_refusing"] == {"currentHealthy": 2, "desiredHealthy": 2,
                                     "disruptionsAllowed": 0, "expectedPods": 2}
    assert facts["pdb_allowing"]["disruptionsAllowed"] == 1


# -- the scheduler ------------------------------------------------------------------------


@pytest.mark.parametrize("nodes,expected", [(5, 5), (99, 99), (100, 100), (500, 230),
                                             (1000, 420), (5000, 500), (6000, 300)])
def test_num_feasible_nodes_to_find(nodes, expected):
    assert num_feasible_nodes_to_find(nodes) == expected


def test_default_profile_weights_are_upstreams():
    weights = {n: w for n, w in DEFAULT_MULTIPOINT if w}
    assert weights == {"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1,
                       "PodTopologySpread": 2, "InterPodAffinity": 2,
                       "NodeResourcesBalancedAllocation": 1, "ImageLocality": 1}


def test_queue_backoff_doubles_from_1s_to_10s():
    q = SchedulingQueue(Cluster(0).clock)
    info = QueuedPodInfo("default/p", {}, 0.0)
    durations = []
    for attempts in range(1, 7):
        info.attempts = attempts
        durations.append(q.backoff_duration(info))
    assert durations == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_unschedulable_pod_gets_the_condition_and_is_retried_when_a_node_is_added():
    facts = run("scheduling").facts
    cond = facts["batch_condition"]
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    assert cond["message"] == (
        "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint(s), "
        "1 node(s) were unschedulable. no new claims to deallocate, preemption: 0/3 nodes are "
        "available: 1 No preemption victims found for incoming pod, 2 Preemption is not "
        "helpful for scheduling.")
    assert facts["nodes"] == {"batch": "node-d", "web": "node-a"}
    assert facts["batch_condition_after"]["status"] == "True"
    assert ("default-scheduler", "FailedScheduling", "Pod/batch", cond["message"]) in \
        facts["events"]
    assert facts["scheduler_peers"] == ["kube-apiserver"]


def test_scheduler_talks_only_to_the_apiserver():
    result = run("scheduling")
    paths = {m.path for m in result.messages if "kube-scheduler" in (m.src.split("/")[0],
                                                                      m.dst.split("/")[0])}
    assert paths == {"kube-scheduler->kube-apiserver"}


def test_preemption_evicts_the_lower_priority_pod():
    facts = run("preemption").facts
    assert facts["nominated"] == "node-a"
    assert facts["preemption"] == [{"node": "node-a", "victims": ["default/batch"]}]
    assert facts["pods"] == {"critical": "node-a"}
    assert facts["priorities"] == {"critical": 1000000}


# -- bad input ----------------------------------------------------------------------------


def _status(cluster: Cluster, fn) -> dict:
    with pytest.raises(StatusError) as err:
        fn()
    return err.value.status


def test_negative_replicas_is_invalid_and_stores_nothing():
    cluster = Cluster(0)
    before = snapshot(cluster)
    rs = objects.replicaset("web", replicas=-1)
    st = _status(cluster, lambda: cluster.admin().create(rs))
    assert (st["code"], st["reason"]) == (422, "Invalid")
    assert "spec.replicas" in st["message"] and "must be greater than or equal to 0" in \
        st["message"]
    assert snapshot(cluster) == before


def test_selector_not_matching_template_is_invalid_and_stores_nothing():
    cluster = Cluster(0)
    before = snapshot(cluster)
    rs = objects.replicaset("web")
    rs["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    st = _status(cluster, lambda: cluster.admin().create(rs))
    assert (st["code"], st["reason"]) == (422, "Invalid")
    assert "`selector` does not match template `labels`" in st["message"]
    assert snapshot(cluster) == before


def test_unknown_scheduler_plugin_stops_the_scheduler_before_any_request():
    cluster = Cluster(0)
    before, sent = snapshot(cluster), len(cluster.trace)
    with pytest.raises(SchedulerConfigError, match='FilterPlugin "NodeFoo" does not exist'):
        KubeScheduler(cluster, profile=Profile(filter=("NodeFoo",)))
    with pytest.raises(SchedulerConfigError, match='PreFilterPlugin "Bogus" does not exist'):
        KubeScheduler(cluster, profile=Profile(plugins=(("Bogus", 1),)))
    assert snapshot(cluster) == before and len(cluster.trace) == sent


def test_binding_to_a_missing_node_is_accepted_as_upstream_does():
    """BindingREST does not look the node up: the pod is bound to a node that does not
    exist, and stays Pending until such a kubelet appears."""
    cluster = Cluster(0)
    cluster.admin().create(objects.pod("web"))
    out = cluster.client("kube-scheduler").bind("default", "web", "no-such-node")
    assert out["status"] == "Success"
    assert cluster.admin().get("pods", "web", "default")["spec"]["nodeName"] == "no-such-node"
    st = _status(cluster, lambda: cluster.client("kube-scheduler").bind("default", "web",
                                                                        "node-a"))
    assert (st["code"], st["reason"]) == (409, "Conflict")


def test_eviction_of_a_missing_pod_is_404_and_stores_nothing():
    cluster = Cluster(0)
    before = snapshot(cluster)
    st = _status(cluster, lambda: cluster.admin().evict("default", "ghost"))
    assert (st["code"], st["reason"]) == (404, "NotFound")
    assert st["message"] == 'pods "ghost" not found'
    assert snapshot(cluster) == before


def test_unknown_priority_class_is_forbidden_and_stores_nothing():
    cluster = Cluster(0)
    before = snapshot(cluster)
    pod = objects.pod("web", priorityClassName="nope")
    st = _status(cluster, lambda: cluster.admin().create(pod))
    assert (st["code"], st["reason"]) == (403, "Forbidden")
    assert st["message"] == 'pods "web" is forbidden: no PriorityClass with name nope was found'
    assert snapshot(cluster) == before


def test_pods_get_priority_zero_without_a_class():
    cluster = Cluster(0)
    pod = cluster.admin().create(objects.pod("web"))
    assert (pod["spec"]["priority"], pod["spec"]["preemptionPolicy"]) == \
        (0, "PreemptLowerPriority")


# -- descheduler and cloud ----------------------------------------------------------------


def test_descheduler_only_evicts_and_a_pdb_refuses_with_429():
    facts = run("rescheduling-eviction").facts
    assert facts["eviction_results"] == ["429 TooManyRequests", "201"]
    assert facts["descheduler_peers"] == ["kube-apiserver"]
    assert facts["descheduler_identity"] == "system:serviceaccount:kube-system:descheduler-sa"
    evicted = facts["evictions"][-1][1].split("/")[1]
    assert evicted in facts["before"] and evicted not in facts["after"]
    assert sorted(facts["after"].values()) == ["node-a", "node-b"]
    assert len(facts["pods_running"]) == 2


def test_eviction_api_is_all_the_descheduler_may_use_to_remove_pods():
    cluster = Cluster(0)
    from k8sbook.controlplane.descheduler import Descheduler, manifests
    for o in manifests():
        cluster.admin().create(o)
    d = Descheduler(cluster)
    st = _status(cluster, lambda: d.client.request(Request(
        "create", "pods", "", "default", "web", "binding",
        body={"kind": "Binding", "apiVersion": "v1", "metadata": {"name": "web"},
              "target": {"name": "node-a"}})))
    assert st["code"] == 403


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


def test_cloud_api_unknown_instance_is_an_error():
    from k8sbook.controlplane.cloud import CloudClient, InstanceNotFound
    cluster = Cluster(0)
    client = CloudClient(CloudAPI(), "cloud-controller-manager", cluster.clock, cluster.trace)
    with pytest.raises(InstanceNotFound):
        client.instance_metadata("nope")
    assert cluster.trace.messages[-1].result == "404 InstanceNotFound"


# -- plugins, the queue, the disruption arithmetic, the service controller's clean-up --------


def test_filter_plugins_give_the_real_reasons():
    from k8sbook.controlplane.scheduler.framework import NodeInfo
    from k8sbook.controlplane.scheduler.plugins import FILTERS
    node = objects.node("n", cpu="1", labels={"disk": "ssd"},
                        taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])
    tolerating = objects.pod("p", tolerations=[{"key": "k", "operator": "Equal", "value": "v",
                                                "effect": "NoSchedule"}])
    assert FILTERS["TaintToleration"](objects.pod("p"), NodeInfo(node)).reasons == \
        ("node(s) had untolerated taint(s)",)
    assert FILTERS["TaintToleration"](tolerating, NodeInfo(node)).ok
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "disk", "operator": "In", "values": ["hdd"]}]}]}}}
    assert FILTERS["NodeAffinity"](objects.pod("p", affinity=affinity), NodeInfo(node)).reasons \
        == ("node(s) didn't match Pod's node affinity/selector",)
    assert FILTERS["NodeAffinity"](objects.pod("p", nodeSelector={"disk": "ssd"}),
                                   NodeInfo(node)).ok
    web = objects.pod("w", containers=[{"name": "a", "image": "x:1",
                                        "ports": [{"containerPort": 80, "hostPort": 8080}]}])
    assert FILTERS["NodePorts"](web, NodeInfo(node, [web])).reasons == \
        ("node(s) didn't have free ports for the requested pod ports",)
    big = objects.pod("b", containers=[objects.container("a", "x:1",
                                                          requests={"cpu": "2", "memory": "1Gi"})])
    assert FILTERS["NodeResourcesFit"](big, NodeInfo(node)).reasons == ("Insufficient cpu",)
    node["spec"]["unschedulable"] = True
    assert FILTERS["NodeUnschedulable"](objects.pod("p"), NodeInfo(node)).reasons == \
        ("node(s) were unschedulable",)


def test_queue_moves_a_backing_off_pod_to_backoffq_then_flushes_it():
    cluster = Cluster(0)
    q = SchedulingQueue(cluster.clock)
    q.add(objects.pod("p", namespace="default"))
    info = q.pop()
    q.add_unschedulable(info, {"NodeResourcesFit"})
    q.move_all_to_active_or_backoff("NodeAdd")  # at once: still within the 1 s back-off
    assert q.pending() == {"activeQ": [], "backoffQ": ["default/p"], "unschedulable": []}
    cluster.clock.run_for(1.0)
    q.flush_backoff_completed()
    assert q.pending()["activeQ"] == ["default/p"]


def test_disruption_controller_max_unavailable_uses_the_owners_scale():
    from k8sbook.controlplane.controllers.disruption import DisruptionController
    cluster = Cluster(0)
    KubeControllerManager(cluster).start()
    cluster.run_for(3)
    admin = cluster.admin()
    admin.create(objects.replicaset("web", replicas=4))
    admin.create(objects.pdb("web", selector={"app": "web"}, max_unavailable="25%"))
    cluster.run_for(3)
    status = admin.get("poddisruptionbudgets", "web", "default")["status"]
    # no kubelet: no pod is Ready, so none is healthy and nothing may be disrupted
    assert (status["expectedPods"], status["desiredHealthy"], status["currentHealthy"],
            status["disruptionsAllowed"]) == (4, 3, 0, 0)
    assert status["conditions"][0]["reason"] == "InsufficientPods"
    assert DisruptionController.__module__.endswith("disruption")


def test_service_controller_deletes_the_load_balancer_before_the_service():
    result = run("cloud")
    cluster = result.cluster
    api = cluster.components["cloud-controller-manager/cp-1"].cloud.api
    cluster.admin().delete("services", "web", "default")
    cluster.run_for(2)
    assert api.load_balancers == {}
    with pytest.raises(StatusError):
        cluster.admin().get("services", "web", "default")
    verbs = [m.verb for m in cluster.trace.messages
             if m.dst == "cloud-api" and m.resource == "loadbalancers"]
    assert verbs == ["EnsureLoadBalancer", "EnsureLoadBalancerDeleted"]
