"""Scenario variants the chapters' exercise solutions run (keyword arguments of a scenario)."""

from __future__ import annotations

from k8sbook.textbook.scenarios.controllers import leader_election


def test_a_crashed_leader_is_replaced_when_the_lease_expires_not_sooner() -> None:
    """Chapter 3, exercise 1: killed at 20 s, cp-1 releases nothing; cp-2 takes the Lease 15 s
    after it last saw it change (21 s), on its next retry: 37 s, as after the network cut."""
    f = leader_election(crash=True).facts
    one, two = (f["identities"][n] for n in ("cp-1", "cp-2"))
    assert f["terms"][one] == [[0.0, 20.0]] and f["terms"][two] == [[37.0, None]]
    assert f["overlap"] == [] and f["lease_spec"]["leaseTransitions"] == 1
    assert f["pods_created_by"] == ["kube-controller-manager/cp-2"] and len(f["pods"]) == 2
    cut = leader_election().facts
    assert cut["terms"][cut["identities"]["cp-2"]] == [[37.0, None]]


def test_a_tolerated_taint_makes_node_b_the_only_feasible_node() -> None:
    """Chapter 4, exercise 1."""
    from k8sbook.textbook.scenarios.scheduling import scheduling

    f = scheduling(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                 "effect": "NoSchedule"}]).facts
    batch = [a for a in f["attempts"] if a["pod"] == "default/batch"]
    assert len(batch) == 1 and batch[0]["node"] == "node-b"
    assert sorted(batch[0]["filtered"]) == ["node-a", "node-c"]
    assert batch[0]["scores"]["node-b"]["TaintToleration"] == 300
    assert f["nodes"] == {"batch": "node-b", "web": "node-a"}


def test_uncordoning_node_c_moves_batch_on_a_node_update() -> None:
    """Chapter 4, exercise 3."""
    from k8sbook.textbook.scenarios.scheduling import scheduling

    f = scheduling(uncordon=True).facts
    assert [m[2:] for m in f["queue_moves"] if m[1] == "default/batch"][-1] == (
        "activeQ", "NodeUpdate")
    assert f["nodes"] == {"batch": "node-c", "web": "node-a"}


def test_max_unavailable_takes_the_replicas_from_the_owner() -> None:
    """Chapter 5, exercise 1."""
    from k8sbook.textbook.scenarios.rescheduling import budget_status

    assert budget_status(max_unavailable=1) == {
        "currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1, "expectedPods": 2}
    assert budget_status(min_available=2)["disruptionsAllowed"] == 0


def test_a_pending_pod_is_evicted_whatever_the_budget_says() -> None:
    """Chapter 5, exercise 2: canIgnorePDB."""
    from k8sbook.textbook.scenarios.rescheduling import evict_pending

    r = evict_pending()
    assert r.facts["phase"] == "Pending" and r.facts["budget"]["disruptionsAllowed"] == 0
    assert r.facts["answer"] == "201 Created" and r.facts["pod_left"] is False
    assert [m.src for m in r.messages if m.resource == "pods/eviction"] == ["kubectl"]


def test_no_victim_of_equal_priority() -> None:
    """Chapter 5, exercise 3."""
    from k8sbook.textbook.scenarios.rescheduling import preemption

    f = preemption(batch_priority_class="high").facts
    assert f["preemption"] == [] and f["nominated"] == ""
    assert f["pods"] == {"batch": "node-a", "critical": ""}
    failed = [e[3] for e in f["events"] if e[1] == "FailedScheduling"]
    assert failed and failed[-1].endswith("1 No preemption victims found for incoming pod.")


def test_an_excluded_node_is_no_backend_and_a_deleted_service_loses_its_lb_first() -> None:
    """Chapter 6, exercises 2 and 3."""
    from k8sbook.textbook.scenarios.cloud import cloud

    ex = cloud(exclude_node_a=True).facts
    assert [b for _, b in ex["load_balancers"].values()] == [[]]
    r = cloud(delete_service=True)
    after = [(m.verb, m.dst) for m in r.messages if m.t >= r.facts["epilogue_from"]
             and (m.resource == "services" or m.dst == "cloud-api") and m.verb != "ListRoutes"]
    assert [v for v, _ in after] == ["DELETE", "MODIFIED", "EnsureLoadBalancerDeleted",
                                     "UPDATE", "DELETED"]
    assert r.facts["load_balancers"] == {} and r.facts["ingress"] == []


def test_tolerations_decide_when_an_unreachable_nodes_pod_is_evicted() -> None:
    """Chapter 7, exercise 1: 30 s after the taint, or never; and one deletion, not two."""
    from k8sbook.textbook.scenarios.node.kubelet_pulls import unreachable

    tol = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    soon = unreachable(tolerations=[{**tol, "tolerationSeconds": 30}]).facts
    tainted = next(t for t, _, what in soon["node_log"] if what.startswith("taint"))
    assert soon["eviction_log"] == [(tainted + 30, "default/web", "deleted")]
    never = unreachable(tolerations=[tol]).facts
    assert never["eviction_log"] == [] and never["pod_deletion_timestamp"] is None


def test_a_kubelet_that_comes_back_in_time_keeps_its_pod() -> None:
    """Chapter 7, exercise 3."""
    from k8sbook.textbook.scenarios.node.kubelet_pulls import unreachable

    f = unreachable(rejoin_at=200).facts
    assert [what for _, _, what in f["node_log"]] == [
        "Ready=Unknown", "taint node.kubernetes.io/unreachable", "taints removed"]
    assert f["taints"] == [] and f["node_conditions"]["Ready"][0] == "True"
    assert f["eviction_log"] == [] and f["pod_deletion_timestamp"] is None


def test_rbac_is_checked_on_every_request_of_a_valid_token() -> None:
    """Chapter 7, exercise 5."""
    from k8sbook.textbook.scenarios.node.workloads import pod_to_apiserver

    f = pod_to_apiserver(unbind=True).facts
    assert "app" in f["listed_pods"] and f["after_unbind"].startswith("403 Forbidden")
    gone = pod_to_apiserver(delete_pod=True).facts
    assert "app" in gone["listed_pods"]  # the token worked while its pod existed
    assert gone["after_delete"] == {"pod_gone": 404, "list": "401 Unauthorized: Unauthorized"}


def test_inside_the_node_variants() -> None:
    """Chapter 8's exercises: pull policy Always, CNI failing later, long runs, liveness."""
    from k8sbook.textbook.scenarios.node import crashloop, cri_lifecycle
    from k8sbook.textbook.scenarios.node.inside_the_node import cni_breaks_later, readiness_probe

    assert cri_lifecycle().facts["other_pulls"] == []
    assert cri_lifecycle(other_pull_policy="Always").facts["other_pulls"] == ["busybox:1.36"]
    later = cni_breaks_later().facts
    assert later["web"]["phase"] == "Running" and later["web"]["podIP"]
    assert later["late"]["phase"] == "Pending" and later["late"]["podIP"] is None
    assert [verb for verb, _ in later["cni_calls"]] == ["ADD"]
    patient = crashloop(script="sleep 700; exit 1", duration=2200).facts
    assert patient["gaps"] == [700.0, 700.0, 700.0]
    live = readiness_probe(kind="liveness").facts
    assert live["restarts"]["restart_count"] == 1 and live["ready"] == ["True"] * 3
    assert ("Killing", "Container app failed liveness probe, will be restarted") in \
        live["restarts"]["events"]


def test_top_lists_pods_only_after_the_second_scrape() -> None:
    """Chapter 9, exercise 1."""
    from k8sbook.textbook.scenarios import metrics as ms

    cluster, server, _ = ms.build(metric_resolution=60)
    assert ms.first_listed(cluster) == 65.0
    assert sorted({t for t, _, _ in server.scrapes}) == [5.0, 65.0]
    quiet, _, _ = ms.build()
    assert ms.first_listed(quiet, limit=0.0) is None


def test_service_variants() -> None:
    """Chapter 10, exercises 2 and 3."""
    from k8sbook.textbook.scenarios.networking import services

    named = services(web3_port_name="http").facts
    assert len(named["slices_before"]) == 1 and len(named["slices_before"][0]["endpoints"]) == 4
    probabilities = [line.split("--probability ")[1].split()[0]
                     for line in named["iptables_before"].splitlines()
                     if "default/web:http ->" in line and "probability" in line]
    assert probabilities == ["0.2500000000", "0.3333333333", "0.5000000000"]
    deleted = services(delete_pod="web-0").facts
    assert deleted["victim_endpoint_events"] == [
        ("MODIFIED", {"ready": False, "serving": True, "terminating": True})]
    assert deleted["pod_ips"]["web-0"] + ":8080" not in deleted["spread_after"]


def test_a_client_with_ndots_1_tries_the_name_as_it_is_first() -> None:
    """Chapter 11, exercise 1: new_client gives the kubelet's resolv.conf to a resolver."""
    from k8sbook.textbook.scenarios import run
    from k8sbook.textbook.scenarios.networking.cluster_dns import new_client

    result = run("cluster-dns")
    one = new_client(result, "ndots1", dnsConfig={"options": [{"name": "ndots", "value": "1"}]})
    assert one.cfg.options == ["ndots:1"]
    assert [a.qname for a in one.lookup("db.data").attempts] == [
        "db.data.", "db.data.default.svc.cluster.local.", "db.data.svc.cluster.local."]
    five = new_client(result, "ndots5")
    assert len(five.lookup("db.data").attempts) == 2


def test_quorum_decides_which_writes_commit() -> None:
    """Chapter 14, exercises 1 and 2."""
    from k8sbook.textbook.scenarios.high_availability import writes_with_members_down

    five = writes_with_members_down(5, 3)
    assert five[:3] == ["201 Created"] * 3 and five[3].startswith("500: etcdserver: request timed")
    two = writes_with_members_down(2, 1)
    assert two[0] == "201 Created" and two[1].startswith("500")
    assert writes_with_members_down(1, 0) == ["201 Created"]


def test_a_cut_off_follower_costs_its_apiserver_and_an_election_on_rejoining() -> None:
    """Chapter 14, exercise 3."""
    from k8sbook.textbook.scenarios.high_availability import follower_partition

    f = follower_partition().facts
    assert f["during"]["leader"] == f["leader_before"]
    assert f["during"]["cut_off_term"] > f["during"]["leader_term"] == f["term_before"]
    cut_apiserver = f"kube-apiserver/{f['cut_off']}"
    assert f["during"]["writes"][cut_apiserver].startswith("500")
    assert [a for k, a in f["during"]["writes"].items() if k != cut_apiserver] == \
        ["201 Created"] * 2
    assert f["leader_stepped_down_after_heal"] and f["after"]["term"] > f["during"]["cut_off_term"]


def test_a_watch_from_a_compacted_revision_is_410_with_the_watch_message() -> None:
    """Appendix a2, exercise 2 (interpretWatchError), on the embedded store."""
    import pytest

    from k8sbook.api import objects
    from k8sbook.cluster import Cluster
    from k8sbook.core.status import StatusError
    from k8sbook.storage.etcd_api import CompactedError

    cluster = Cluster(0)
    admin = cluster.admin()
    admin.create(objects.configmap("x", data={"v": "1"}))
    old = int(admin.get("configmaps", "x", "default")["metadata"]["resourceVersion"])
    admin.patch("configmaps", "x", {"data": {"v": "2"}}, "default")
    cluster.apiserver.compact()
    with pytest.raises(CompactedError):
        cluster.etcd.watch("/registry/configmaps/", None, old, lambda events: None)
    with pytest.raises(StatusError) as err:
        cluster.apiserver.storage.watch("/registry/configmaps/", old, lambda events: None)
    assert (err.value.code, err.value.reason) == (410, "Expired")
    assert err.value.status["message"] == "The resourceVersion for the provided watch is too old."


def test_konnectivity_packets_cut_after_dial_rsp():
    """Chapter 13, exercise 6: the agent's stream breaks before its DIAL_RSP is read."""
    from k8sbook.textbook.scenarios import certificates

    f = certificates.konnectivity_packets(cut_after="DIAL_RSP").facts
    assert f["agent_gone"].endswith(": dial timeout, context")
    assert [p[2] for p in f["agent_gone_packets"]][-2:] == ["DIAL_RSP", "DIAL_CLS"]
    assert f["no_agent"].endswith("No agent available") and f["agent_back"] == "allowed"


def test_endpoint_slices_of_fifty_for_chapter_15() -> None:
    """Exercise 4 of chapter 15: ``per_slice=50`` gives slices of 50 and 10; one change, one
    event per watcher, about half a slice of 100's bytes. (The 60 endpoints of the exercise on
    3 nodes instead of 15: the solution cell's own run, 15 watchers, is compared by nbval.)"""
    from k8sbook.textbook.scenarios import scale

    fifty = scale.endpoint_update(60, 3, per_slice=50)
    es = fifty["endpointslices"]
    assert fifty["slices"] == 2 and es["endpoints_in_changed_slice"] == 50
    assert es["watch_events"] == 3 and es["writes"] == 1
    assert 4000 < es["protobuf_bytes_per_event"] < 7000
