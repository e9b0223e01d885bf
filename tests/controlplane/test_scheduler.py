"""kube-scheduler (``pkg/scheduler``): the profile, the plugins, the queue, the cycle."""

from __future__ import annotations

import pytest

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.controlplane.scheduler import (
    DEFAULT_MULTIPOINT,
    KubeScheduler,
    Profile,
    SchedulerConfigError,
    num_feasible_nodes_to_find,
)
from k8sbook.controlplane.scheduler.framework import NodeInfo
from k8sbook.controlplane.scheduler.plugins import FILTERS, REGISTRY, SCORES
from k8sbook.controlplane.scheduler.queue import QueuedPodInfo, SchedulingQueue
from k8sbook.core.status import StatusError
from k8sbook.textbook.scenarios import run
from tests.helpers import snapshot


def _status(fn) -> dict:
    with pytest.raises(StatusError) as err:
        fn()
    return err.value.status


@pytest.mark.parametrize("nodes,expected", [(5, 5), (99, 99), (100, 100), (500, 230),
                                             (1000, 420), (5000, 500), (6000, 300)])
def test_num_feasible_nodes_to_find(nodes, expected):
    assert num_feasible_nodes_to_find(nodes) == expected


def test_default_profile_weights_are_upstreams():
    weights = {n: w for n, w in DEFAULT_MULTIPOINT if w}
    assert weights == {"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1,
                       "PodTopologySpread": 2, "InterPodAffinity": 2,
                       "NodeResourcesBalancedAllocation": 1, "ImageLocality": 1}


def test_plugin_tables_are_importable_from_the_package():
    assert list(FILTERS) == ["NodeUnschedulable", "NodeName", "TaintToleration",
                             "NodeAffinity", "NodePorts", "NodeResourcesFit"]
    assert set(SCORES) <= REGISTRY and set(FILTERS) <= REGISTRY
    # one module per upstream plugin package
    assert FILTERS["TaintToleration"].__module__.endswith("plugins.tainttoleration")
    assert SCORES["NodeResourcesBalancedAllocation"].__module__.endswith(
        "plugins.noderesources")


def test_queue_backoff_doubles_from_1s_to_10s():
    q = SchedulingQueue(Cluster(0).clock)
    info = QueuedPodInfo("default/p", {}, 0.0)
    durations = []
    for attempts in range(1, 7):
        info.attempts = attempts
        durations.append(q.backoff_duration(info))
    assert durations == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


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


@pytest.fixture(scope="module")
def scheduling_run():
    """Chapter 4's run, once for the tests that only read it."""
    return run("scheduling")


def test_unschedulable_pod_gets_the_condition_and_is_retried_when_a_node_is_added(
        scheduling_run):
    facts = scheduling_run.facts
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
    # the retry came after the node was added, and bound the pod there
    retry = [a for a in facts["attempts"] if a["pod"] == "default/batch"][-1]
    assert retry["t"] >= facts["node_added_at"] and retry["node"] == "node-d"


def test_the_scheduler_binds_where_its_scores_point(scheduling_run):
    result = scheduling_run
    web = next(a for a in result.facts["attempts"] if a["pod"] == "default/web")
    totals = {n: sum(s.values()) for n, s in web["scores"].items()}
    assert web["node"] == max(totals, key=lambda n: (totals[n], n == web["node"]))
    binding = next(m for m in result.messages if m.resource == "pods/binding"
                   and m.name == "default/web")
    assert binding.src == "kube-scheduler/cp-1" and binding.result == "201"


def test_scheduler_talks_only_to_the_apiserver(scheduling_run):
    result = scheduling_run
    paths = {m.path for m in result.messages if "kube-scheduler" in (m.src.split("/")[0],
                                                                      m.dst.split("/")[0])}
    assert paths == {"kube-scheduler->kube-apiserver"}


def test_preemption_evicts_the_lower_priority_pod():
    facts = run("preemption").facts
    assert facts["nominated"] == "node-a"
    assert facts["preemption"] == [{"node": "node-a", "victims": ["default/batch"]}]
    assert facts["pods"] == {"critical": "node-a"}
    assert facts["priorities"] == {"critical": 1000000}


def test_filter_plugins_give_the_real_reasons():
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


def test_unknown_scheduler_plugin_stops_the_scheduler_before_any_request():
    cluster = Cluster(0)
    before, sent = snapshot(cluster), len(cluster.trace)
    with pytest.raises(SchedulerConfigError, match='FilterPlugin "NodeFoo" does not exist'):
        cluster.add_scheduler(profile=Profile(filter=("NodeFoo",)))
    with pytest.raises(SchedulerConfigError, match='PreFilterPlugin "Bogus" does not exist'):
        KubeScheduler(cluster.client("kube-scheduler"), cluster.clock, identity="x",
                      random=cluster.ids.random, profile=Profile(plugins=(("Bogus", 1),)))
    assert snapshot(cluster) == before and len(cluster.trace) == sent


def test_scheduler_takes_its_random_source_for_ties():
    cluster = Cluster(0)
    for name in ("node-a", "node-b"):
        cluster.admin().create(objects.node(name, cpu="2"))
    sched = KubeScheduler(cluster.client("kube-scheduler"), cluster.clock, identity="x",
                          random=lambda: 0.0, leader_elect=False)  # always take the newcomer
    assert sched.select_host({"node-a": 5, "node-b": 5}) == "node-b"
    sched.random = lambda: 0.99  # never take it
    assert sched.select_host({"node-a": 5, "node-b": 5}) == "node-a"


def test_binding_to_a_missing_node_is_accepted_as_upstream_does():
    """BindingREST does not look the node up: the pod is bound to a node that does not
    exist, and stays Pending until such a kubelet appears."""
    cluster = Cluster(0)
    cluster.admin().create(objects.pod("web"))
    out = cluster.client("kube-scheduler").bind("default", "web", "no-such-node")
    assert out["status"] == "Success"
    assert cluster.admin().get("pods", "web", "default")["spec"]["nodeName"] == "no-such-node"
    st = _status(lambda: cluster.client("kube-scheduler").bind("default", "web", "node-a"))
    assert (st["code"], st["reason"]) == (409, "Conflict")


def test_unknown_priority_class_is_forbidden_and_stores_nothing():
    cluster = Cluster(0)
    before = snapshot(cluster)
    pod = objects.pod("web", priorityClassName="nope")
    st = _status(lambda: cluster.admin().create(pod))
    assert (st["code"], st["reason"]) == (403, "Forbidden")
    assert st["message"] == 'pods "web" is forbidden: no PriorityClass with name nope was found'
    assert snapshot(cluster) == before


def test_pods_get_priority_zero_without_a_class():
    cluster = Cluster(0)
    pod = cluster.admin().create(objects.pod("web"))
    assert (pod["spec"]["priority"], pod["spec"]["preemptionPolicy"]) == \
        (0, "PreemptLowerPriority")


def test_node_info_keeps_requests_summed_as_pods_come_and_go():
    """``NodeInfo.AddPod``/``RemovePod``: the sums follow the pods, a pod added again moves
    to the end instead of counting twice, and each change bumps the generation."""
    def pod(name, cpu):
        return objects.pod(name, containers=[objects.container(
            "c", "img", requests={"cpu": cpu, "memory": "1Mi"})])
    ni = NodeInfo(objects.node("n"), [pod("a", "100m"), pod("b", "250m")])
    assert ni.requested() == {"cpu": 350.0, "memory": 2 * 2**20}
    gen = ni.generation
    ni.add_pod(pod("a", "100m"))
    assert [p["metadata"]["name"] for p in ni.pods] == ["b", "a"] and len(ni) == 2
    assert ni.requested()["cpu"] == 350.0 and ni.generation > gen
    b = ni.pods[0]
    assert ni.has_pod(b) and ni.remove_pod(b) and not ni.remove_pod(b) and not ni.has_pod(b)
    assert ni.requested() == {"cpu": 100.0, "memory": 2**20}
    # pods that request nothing count with the scoring defaults (100m, 200Mi)
    ni.add_pod(objects.pod("c"))
    assert ni.requested(non_zero=True) == {"cpu": 200.0, "memory": 2**20 + 200 * 2**20}
    assert ni.allocatable() == {"cpu": 4000.0, "memory": 8 * 2**30, "pods": 110.0}


def test_node_info_sums_subtract_exactly_what_a_fresh_sum_gives():
    """``RemovePod`` subtracts; the result is bit for bit the sum over the pods that remain,
    also with requests that are no exact integers (then the sum is taken again)."""
    import random
    rng = random.Random(7)
    quantities = ["100m", "250m", "333m", "1", "1.5", "0.1", "7m", "500Mi", "1.1Gi", "3", "0"]

    def pod(i):
        p = objects.pod(f"p{i}", containers=[objects.container(
            "c", "img", requests={"cpu": rng.choice(quantities),
                                  "memory": rng.choice(quantities)})])
        p["metadata"]["uid"] = f"uid-{i}"
        return p
    ni = NodeInfo(objects.node("n"))
    here: dict[str, dict] = {}
    for step in range(600):
        if here and rng.random() < 0.45:
            gone = here.pop(rng.choice(sorted(here)))
            assert ni.remove_pod(gone)
        else:
            p = pod(step % 40)  # a uid seen before replaces its pod
            here.pop(p["metadata"]["uid"], None)
            here[p["metadata"]["uid"]] = p
            ni.add_pod(p)
        fresh = NodeInfo(objects.node("n"), list(here.values()))
        assert ni.requested() == fresh.requested()
        assert ni.requested(non_zero=True) == fresh.requested(non_zero=True)
        assert [q["metadata"]["uid"] for q in ni.pods] == list(here)


def test_filter_plugins_prefilter_once_and_agree_with_the_one_shot_filter():
    """A PreFilter that says Skip leaves out a Filter that would pass every node; otherwise
    PreFilter then Filter is the plugin's ``filter(pod, node_info)``."""
    from k8sbook.controlplane.scheduler.framework import SKIP
    from k8sbook.controlplane.scheduler.plugins import FILTER_PLUGINS
    plain = objects.pod("p")
    for name in ("NodeName", "NodeAffinity", "NodePorts"):
        assert FILTER_PLUGINS[name].pre_filter(plain) is SKIP
    nodes = [NodeInfo(objects.node("a", labels={"disk": "ssd"})),
             NodeInfo(objects.node("b", taints=[{"key": "k", "effect": "NoSchedule"}]))]
    nodes[1].node = {**nodes[1].node, "spec": {**nodes[1].node["spec"], "unschedulable": True}}
    pods = [plain, objects.pod("s", nodeSelector={"disk": "ssd"}),
            objects.pod("n", node_name="b"),
            objects.pod("t", tolerations=[{"operator": "Exists"}]),
            objects.pod("big", containers=[objects.container(
                "c", "img", requests={"cpu": "5", "memory": "1Mi"})])]
    for p in pods:
        for name, plugin in FILTER_PLUGINS.items():
            state = plugin.pre_filter(p)
            for ni in nodes:
                one_shot = FILTERS[name](p, ni)
                assert one_shot == (plugin.filter(state, ni) if state is not SKIP else
                                    one_shot) and (state is not SKIP or one_shot.ok)


def test_active_queue_pops_by_priority_then_age_from_a_heap():
    clock = Cluster(0).clock
    q = SchedulingQueue(clock)
    q.add(objects.pod("old"))
    clock.run_for(1)
    q.add(objects.pod("new"))
    q.add(objects.pod("urgent", priority=1000))
    q.add(objects.pod("gone"))
    q.delete(objects.pod("gone"))  # left activeQ: its heap entry is skipped
    order = [q.pop().key for _ in range(3)]
    assert order == ["default/urgent", "default/old", "default/new"] and q.pop() is None


def test_total_scores_add_up_columns_as_the_loop_does():
    """The one-pass sum over plugins that scored the nodes in order agrees with the loop
    (scores in another order, or no score plugin at all)."""
    from k8sbook.controlplane.scheduler.framework import total_scores
    names = ["a", "b", "c"]
    in_order = {"X": {"a": 1, "b": 2, "c": 3}, "Y": {"a": 10, "b": 0, "c": 5}}
    shuffled = {"X": {"c": 3, "a": 1, "b": 2}, "Y": {"a": 10, "b": 0, "c": 5}}
    want = {"a": 11, "b": 2, "c": 8}
    assert total_scores(names, in_order) == want
    assert total_scores(names, shuffled) == want
    assert total_scores(names, {}) == {"a": 0, "b": 0, "c": 0}
