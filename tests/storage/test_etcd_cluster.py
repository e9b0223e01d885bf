"""The model's etcd cluster (k8sbook.storage.etcd_cluster) and the apiserver's storage client
over several members (k8sbook.storage.etcd3.Storage with a list of --etcd-servers)."""

from __future__ import annotations

import random

import pytest

from k8sbook.client.network import Address, DialError, Network
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError
from k8sbook.core.trace import Trace
from k8sbook.storage.etcd3 import Storage
from k8sbook.storage.etcd_api import Compare, Event, Put, UnavailableError
from k8sbook.storage.etcd_cluster import (
    ELECTION_TIMEOUT,
    ERR_CONNECTION_LOST,
    ERR_NO_LEADER,
    ERR_TIMEOUT,
    PEER_CA,
    PEER_PROTOCOL,
    EtcdCluster,
    EtcdMember,
)

NAMES = ["cp-1", "cp-2", "cp-3"]
HOSTS = ["192.168.0.2", "192.168.0.3", "192.168.0.4"]


@pytest.fixture
def etcd() -> EtcdCluster:
    clock = Clock()
    cluster = EtcdCluster(Network(clock, Trace()), clock, random.Random(0), NAMES, HOSTS)
    cluster.start()
    cluster.wait_for_leader()
    return cluster


def call(member: EtcdMember, method: str, *args: object, **kwargs: object) -> object:
    net = member.network
    return net.dial("kube-apiserver", member.client_address, (method, args, kwargs),
                    protocol="gRPC", verb=method, client_certificate=PEER_CA)


def followers(etcd: EtcdCluster) -> list[EtcdMember]:
    leader = etcd.leader()
    return [m for m in etcd.members.values() if m is not leader]


def test_a_write_to_a_follower_is_forwarded_and_every_member_applies_it(
        etcd: EtcdCluster) -> None:
    trace = followers(etcd)[0].network.trace
    mark = trace.mark()
    rev = call(followers(etcd)[0], "put", "/k", "v")
    assert {m.store.revision for m in etcd.members.values()} == {rev}
    peer = [m for m in trace.since(mark) if m.path == "etcd->etcd"]
    assert {m.protocol for m in peer} == {PEER_PROTOCOL}
    assert "MsgProp" in {m.verb for m in peer} and "MsgApp" in {m.verb for m in peer}
    out = call(etcd.members["cp-3"], "txn", [Compare("/k", "MOD", "=", rev)], [Put("/k", "w")],
               [])
    assert out.succeeded  # type: ignore[attr-defined]


def test_the_peer_port_wants_the_etcd_ca_both_ways(etcd: EtcdCluster) -> None:
    member = etcd.members["cp-1"]
    with pytest.raises(DialError, match="certificate signed by unknown authority"):
        member.network.dial("etcd/rogue", member.peer_address, None, protocol=PEER_PROTOCOL,
                            verb="MsgApp", verify="kubernetes")  # trusts another CA
    with pytest.raises(DialError, match="remote error: tls: unknown certificate authority"):
        member.network.dial("etcd/rogue", member.peer_address, ("x", None),
                            protocol=PEER_PROTOCOL, verb="MsgApp", verify=PEER_CA,
                            client_certificate="kubernetes")


def test_the_client_port_wants_a_client_certificate_from_the_etcd_ca(
        etcd: EtcdCluster) -> None:
    member = etcd.members["cp-1"]
    with pytest.raises(DialError) as err:
        member.network.dial("kube-apiserver", member.client_address, ("range", ("/k",), {}),
                            protocol="gRPC", verb="range", client_certificate="kubernetes")
    assert str(err.value) == "remote error: tls: unknown certificate authority"
    with pytest.raises(DialError, match="remote error: tls: certificate required"):
        member.network.dial("kube-apiserver", member.client_address, ("range", ("/k",), {}),
                            protocol="gRPC", verb="range")


def test_without_quorum_writes_and_linearizable_reads_time_out(etcd: EtcdCluster) -> None:
    call(etcd.members["cp-1"], "put", "/k", "v")
    for name in ("cp-2", "cp-3"):
        etcd.members[name].stop()
    etcd.clock.run_for(3)
    alone = etcd.members["cp-1"]
    for method, args in (("put", ("/k", "w")), ("range", ("/k",))):
        with pytest.raises(UnavailableError) as err:
            call(alone, method, *args)
        assert str(err.value) == ERR_TIMEOUT
    assert alone.store.range("/k").kvs[0].value == "v"  # the data is still there
    etcd.clock.run_for(3 * ELECTION_TIMEOUT)
    watch = alone.network.open("kube-apiserver", alone.client_address,
                               ("watch", ("/k", None, 0, lambda evs: None), {}),
                               protocol="gRPC", verb="Watch", client_certificate=PEER_CA)[1]
    assert str(watch) == ERR_NO_LEADER


def test_a_leader_cut_off_from_its_peers_reports_connection_lost(etcd: EtcdCluster) -> None:
    leader = etcd.leader()
    assert leader is not None
    for other in followers(etcd):
        leader.network.partition(leader.instance, other.instance)
    with pytest.raises(UnavailableError) as err:
        call(leader, "put", "/k", "v")
    assert str(err.value) == ERR_CONNECTION_LOST
    etcd.clock.run_for(3)
    assert leader.raft.state != "StateLeader"
    new = etcd.leader()
    assert new is not None and new is not leader and new.raft.term > 1


def test_only_the_leader_expires_leases_and_a_new_leader_gives_them_their_ttl_again(
        etcd: EtcdCluster) -> None:
    leader = etcd.leader()
    assert leader is not None
    lease = call(leader, "lease_grant", 10)
    call(leader, "put", "/leased", "v", lease=lease)
    assert [m.store.lessor_primary for m in etcd.members.values()].count(True) == 1
    etcd.clock.run_for(5)
    leader.stop()
    new = etcd.wait_for_leader()
    promoted = etcd.clock.now()
    etcd.clock.run_for(10)  # 10 s after promotion: TTL + election timeout not yet over
    assert new.store.get("/leased") is not None
    etcd.clock.run_for(ELECTION_TIMEOUT + 0.5)
    assert etcd.clock.now() > promoted + 10 + ELECTION_TIMEOUT
    assert {m.store.get("/leased") for m in etcd.members.values() if m.running} == {None}
    assert len({m.store.revision for m in etcd.members.values() if m.running}) == 1


def test_the_storage_client_fails_over_and_its_watch_resumes_without_gaps(
        etcd: EtcdCluster) -> None:
    net, clock = etcd.members["cp-1"].network, etcd.clock
    storage = Storage(net, clock, etcd.endpoints)
    seen: list[Event] = []
    storage.watch("/registry/", 1, seen.extend)
    storage.create("/registry/a", {"metadata": {"name": "a"}})
    etcd.members["cp-1"].stop()  # the endpoint it uses first
    clock.run_for(3)
    storage.create("/registry/b", {"metadata": {"name": "b"}})
    clock.run_for(1)
    assert storage.address == Address.tcp(HOSTS[1], 2379)
    assert [e.kv.key for e in seen] == ["/registry/a", "/registry/b"]
    for name in ("cp-2", "cp-3"):
        etcd.members[name].stop()
    with pytest.raises(StatusError) as err:
        storage.create("/registry/c", {"metadata": {"name": "c"}})
    assert err.value.code == 500 and "etcdserver: request timed out" in str(err.value.status)


def _cluster(names: list[str]) -> EtcdCluster:
    clock = Clock()
    hosts = [f"192.168.0.{i + 2}" for i in range(len(names))]
    cluster = EtcdCluster(Network(clock, Trace()), clock, random.Random(1), names, hosts)
    cluster.start()
    cluster.wait_for_leader()
    return cluster


def test_five_members_tolerate_two_failures_not_three() -> None:
    etcd = _cluster([f"m{i}" for i in range(1, 6)])
    leader = etcd.leader()
    assert leader is not None
    down = [m for m in etcd.members.values() if m is not leader]
    for member in down[:2]:
        member.stop()
    assert call(leader, "put", "/k", "1")
    down[2].stop()
    with pytest.raises(UnavailableError):
        call(leader, "put", "/k", "2")


def test_two_members_tolerate_no_failure() -> None:
    etcd = _cluster(["m1", "m2"])
    leader = etcd.leader()
    assert leader is not None and etcd.quorum == 2
    next(m for m in etcd.members.values() if m is not leader).stop()
    with pytest.raises(UnavailableError):
        call(leader, "put", "/k", "1")


def test_a_cut_off_follower_rejoins_with_a_higher_term_and_forces_an_election(
        etcd: EtcdCluster) -> None:
    """Without pre-vote (etcd 3.4's default), as chapter 14's exercise 3 says."""
    leader = etcd.leader()
    assert leader is not None
    follower = followers(etcd)[0]
    for other in etcd.members.values():
        if other is not follower:
            follower.network.partition(follower.instance, other.instance)
    etcd.clock.run_for(5)
    assert etcd.leader() is leader  # the majority did not need an election
    term, cut_off_term = leader.raft.term, follower.raft.term
    assert cut_off_term > term
    follower.network.heal()
    healed = etcd.clock.now()
    etcd.clock.run_for(3)
    new = etcd.wait_for_leader()
    assert new.raft.term > cut_off_term > term  # an election the cluster did not need
    assert any(t >= healed and state == "StateFollower"
               for t, _term, state, _lead in leader.raft.history)  # the leader stepped down
