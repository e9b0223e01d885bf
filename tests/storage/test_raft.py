"""Raft as etcd runs it (k8sbook.storage.raft): elections, replication to a quorum,
CheckQuorum and ReadIndex, on three nodes joined by a transport the test controls."""

from __future__ import annotations

import random

import pytest

from k8sbook.core.clock import Clock
from k8sbook.storage.raft import ELECTION_TICKS, TICK, Entry, Message, NotLeaderError, Raft


class Net:
    """Three Raft nodes whose messages are delivered unless a link is cut."""

    def __init__(self, n: int = 3, seed: int = 0) -> None:
        self.clock = Clock()
        self.cut: set[frozenset[str]] = set()
        self.applied: dict[str, list[object]] = {}
        names = [f"n{i}" for i in range(1, n + 1)]
        rng = random.Random(seed)
        self.nodes = {name: Raft(name, [p for p in names if p != name], self.clock, rng,
                                 self.send, self._applier(name)) for name in names}
        for node in self.nodes.values():
            node.start()

    def _applier(self, name: str):  # type: ignore[no-untyped-def]
        self.applied[name] = []

        def apply(entry: Entry) -> None:
            if entry.data is not None:
                self.applied[name].append(entry.data)
        return apply

    def send(self, m: Message) -> Message | None:
        if frozenset((m.frm, m.to)) in self.cut or not self.nodes[m.to].running:
            return None
        return self.nodes[m.to].step(m)

    def isolate(self, name: str) -> None:
        self.cut |= {frozenset((name, other)) for other in self.nodes if other != name}

    def leaders(self) -> list[Raft]:
        return [n for n in self.nodes.values() if n.running and n.state == "StateLeader"]

    def leader(self, exclude: str = "") -> Raft:
        for _ in range(100):
            live = [n for n in self.leaders() if n.id != exclude]
            if live:
                return live[0]
            self.clock.run_for(TICK)
        raise AssertionError("no leader")


def test_first_election_happens_within_one_to_two_election_timeouts() -> None:
    net = Net()
    leader = net.leader()
    elected = next(t for t, _term, state, _ in leader.history if state == "StateLeader")
    assert ELECTION_TICKS * TICK <= elected < 2 * ELECTION_TICKS * TICK
    assert leader.term == 1 and len(net.leaders()) == 1
    assert all(n.lead == leader.id for n in net.nodes.values())


def test_a_write_commits_only_with_a_quorum_and_every_node_applies_it() -> None:
    net = Net()
    leader = net.leader()
    index = leader.propose("a")
    assert leader.committed(index)
    assert all(net.applied[n] == ["a"] for n in net.nodes)
    for other in leader.peers:
        net.nodes[other].stop()
    index = leader.propose("b")
    assert not leader.committed(index)  # one node of three: no quorum
    assert net.applied[leader.id] == ["a"]


def test_losing_the_leader_elects_another_in_a_higher_term_with_every_committed_entry() -> None:
    net = Net()
    old = net.leader()
    old.propose("a")
    old.stop()
    net.clock.run_for(3)
    new = net.leader()
    assert new.id != old.id and new.term > old.term
    new.propose("b")
    assert net.applied[new.id] == ["a", "b"]


def test_a_cut_off_leader_steps_down_and_cannot_serve_read_index() -> None:
    net = Net()
    old = net.leader()
    net.isolate(old.id)
    net.clock.run_for(3)
    assert old.state != "StateLeader"  # CheckQuorum
    with pytest.raises(NotLeaderError):
        old.read_index()
    new = net.leader(exclude=old.id)
    assert new.read_index() == new.commit


def test_a_follower_reads_at_the_leaders_commit_index() -> None:
    net = Net()
    leader = net.leader()
    leader.propose("x")
    follower = net.nodes[leader.peers[0]]
    assert follower.read_index() == leader.commit


def test_never_two_leaders_in_one_term() -> None:
    net = Net(5, seed=3)
    for step in range(60):
        if step % 15 == 0 and net.leaders():
            net.leaders()[0].stop()
            if step == 30:
                for n in net.nodes.values():
                    if not n.running:
                        n.start()
        net.clock.run_for(0.5)
        terms = [n.term for n in net.leaders()]
        assert len(terms) == len(set(terms))
