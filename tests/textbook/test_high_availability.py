"""Chapter 14's scenarios (k8sbook.textbook.scenarios.high_availability): what the chapter
claims about a three-node control plane, asserted on the runs."""

from __future__ import annotations

import re

from k8sbook.storage.etcd_cluster import ELECTION_TIMEOUT
from k8sbook.textbook.scenarios import run


def test_leader_loss_elects_a_new_leader_within_two_election_timeouts() -> None:
    facts = run("ha-etcd-leader-loss").facts
    assert facts["after"]["leader"] != facts["before"]["leader"]
    assert facts["after"]["term"] > facts["before"]["term"]
    assert ELECTION_TIMEOUT <= facts["seconds_without_leader"] <= 2 * ELECTION_TIMEOUT + 0.1
    assert facts["write_during_election"].code == 500
    assert "etcdserver: request timed out" in facts["write_during_election"]
    assert facts["write_after"] == "201 Created"
    assert facts["pods"] == ["after", "before"] and len(set(facts["revisions"].values())) == 1


def test_quorum_loss_stops_writes_and_consistent_reads_but_not_cached_ones() -> None:
    facts = run("ha-etcd-quorum-loss").facts
    answers = facts["answers"]
    assert answers["create"] == "500: etcdserver: request timed out"
    assert answers["get (from etcd)"] == "500: etcdserver: request timed out"
    assert answers["list rv=0 (watch cache)"] == "200 OK"
    assert facts["scheduler_leading_without_quorum"] is False  # renew deadline passed
    assert facts["write_after_restart"] == "201 Created"
    states = {state for _t, _m, _term, state, _lead in facts["timeline"]}
    assert "StateCandidate" in states and "StateLeader" in states


def test_a_partitioned_leader_steps_down_and_refuses_linearizable_reads() -> None:
    result = run("ha-etcd-partition")
    facts = result.facts
    assert facts["new_leader"] != facts["cut_off"]
    cut_off, other = facts["reads_by_the_apiserver_on_its_node"]
    assert cut_off == f"etcd/{facts['cut_off']}: etcdserver: request timed out (after 7s)"
    assert re.search(r": 1 kv @rev \d+$", other)  # the client balancer's next endpoint answers
    assert facts["serializable_local_read"] == "served"
    assert facts["write_through_apiserver"] == "201 Created"
    assert any(m == facts["cut_off"] and s == "StateFollower" and lead == "-"
               for _t, m, _term, s, lead in facts["timeline"])
    assert "etcd->etcd" in result.paths()


def test_an_apiserver_dies_clients_reconnect_and_endpoints_drop_it() -> None:
    facts = run("ha-apiserver-failover").facts
    assert facts["died"] == "kube-apiserver/cp-1"
    assert facts["endpoints"] == ["192.168.0.3", "192.168.0.4"]
    assert facts["watcher_pods"] == ["after", "before"]
    assert any(h.startswith("watch from rv") for _t, h in facts["watcher_history"])
    assert not any(h.startswith("list") for _t, h in facts["watcher_history"])  # no relist
    assert [s for _t, _b, s in facts["balancer"]] == ["DOWN"]


def test_leases_change_hands_after_the_lease_duration_never_two_leaders() -> None:
    facts = run("ha-leader-failover").facts
    for component in ("kube-scheduler", "kube-controller-manager"):
        assert facts["holders_after"][component] != facts["holders_before"][component]
        assert 15 <= facts["seconds_to_take_over"][component] <= 15 + 2 + 0.1
        assert facts["most_leaders_at_once"][component] == 1
        assert facts["lease_transitions"][component] == 1
