"""client-go leader election (``k8sbook.client.leaderelection``) as the components use it."""

from __future__ import annotations

import pytest

from k8sbook.client.leaderelection import (
    LEASE_DURATION,
    RENEW_DEADLINE,
    RETRY_PERIOD,
    LeaderElector,
    leaders_at,
)
from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios import run


def test_leader_election_defaults_are_the_components_defaults():
    assert (LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD) == (15.0, 10.0, 2.0)
    with pytest.raises(ValueError):
        LeaderElector(Cluster(0).client("kube-scheduler"), "kube-system", "x", "me",
                      lease_duration=10, renew_deadline=10)


def test_leader_cut_off_steps_down_before_the_other_takes_over():
    facts = run("controllers-leader-election").facts
    assert facts["overlap"] == []
    (one,), (two,) = facts["terms"].values()
    # the leader stops one renew deadline after its last successful renewal ...
    assert one == [facts["started"]["cp-1"], facts["cp1_last_renewal"] + RENEW_DEADLINE]
    # ... and the other takes over no sooner than a lease duration after it saw that renewal
    assert facts["cp1_last_renewal"] + LEASE_DURATION <= two[0] <= \
        facts["cp1_last_renewal"] + LEASE_DURATION + RETRY_PERIOD and two[1] is None
    assert facts["cp1_last_renewal"] <= facts["cp1_cut_at"] < one[1]
    assert facts["cp1_exited"] and facts["cp2_leading"]
    assert facts["lease_spec"]["leaseTransitions"] == 1
    assert facts["lease_spec"]["holderIdentity"] == facts["identities"]["cp-2"]
    assert facts["pods_created_by"] == ["kube-controller-manager/cp-2"]


def test_isolated_leader_requests_time_out_on_the_fabric():
    result = run("controllers-leader-election")
    cut = result.facts["cp1_cut_at"]
    after = [m for m in result.messages if m.src == "kube-controller-manager/cp-1" and m.t > cut]
    assert after and all("i/o timeout" in m.result for m in after)


def test_crashed_leader_is_replaced_after_the_lease_expires():
    cluster = Cluster(0)
    one = cluster.add_controller_manager("kube-controller-manager/cp-1", controllers=())
    two = cluster.add_controller_manager("kube-controller-manager/cp-2", controllers=())
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


def test_elector_uses_the_clock_it_is_given():
    cluster = Cluster(0)
    from k8sbook.core.clock import Clock
    other = Clock()
    e = LeaderElector(cluster.client("kube-scheduler/a"), "kube-system", "x", "a", clock=other)
    assert e.clock is other


def _lease_calls(cluster: Cluster, src: str, mark: int) -> list[str]:
    return [m.verb for m in cluster.trace.since(mark)
            if m.src == src and m.resource == "leases"]


def test_the_leader_renews_on_the_fast_path_and_falls_back_on_a_conflict():
    """client-go's ``tryAcquireOrRenew`` step 1: a leader whose Lease is still valid updates the
    Lease it last saw, with no GET; a failed update sends it to the slow path (GET, UPDATE)."""
    cluster = Cluster(0)
    cm = cluster.add_controller_manager("kube-controller-manager/cp-1", controllers=())
    cm.start()
    cluster.clock.run_until(1.0)
    assert cm.elector.leading
    mark = cluster.trace.mark()
    cluster.clock.run_until(7.0)  # three renewals
    assert _lease_calls(cluster, "kube-controller-manager/cp-1", mark) == ["UPDATE"] * 3
    # someone else writes the Lease: the next optimistic update conflicts (409)
    admin = cluster.admin()
    lease = admin.get("leases", "kube-controller-manager", "kube-system")
    lease["metadata"].setdefault("labels", {})["touched"] = "yes"
    admin.update(lease)
    mark = cluster.trace.mark()
    cluster.clock.run_until(9.0)
    assert _lease_calls(cluster, "kube-controller-manager/cp-1", mark) == [
        "UPDATE", "GET", "UPDATE"]
    assert cm.elector.leading
    assert admin.get("leases", "kube-controller-manager", "kube-system")["spec"][
        "holderIdentity"] == cm.elector.identity
