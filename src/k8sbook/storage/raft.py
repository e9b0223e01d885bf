"""Raft, the consensus etcd members run between them: terms, leader election, log replication
to a quorum, heartbeats, CheckQuorum and ReadIndex.

Mirrors ``go.etcd.io/raft`` (``raft.go``: ``becomeFollower``/``becomeCandidate``/
``becomeLeader``, ``Step``, ``handleAppendEntries``, ``handleHeartbeat``, ``maybeCommit``;
``read_only.go``: ReadIndex) as etcd configures it (``server/etcdserver/raft.go``:
``CheckQuorum: true``; one tick is ``--heartbeat-interval``, 100 ms by default, and the election
timeout ``--election-timeout``, 1000 ms, is ten ticks; see
https://etcd.io/docs/v3.5/tuning/). The rules, from the Raft paper
(https://raft.github.io/raft.pdf) and the package's README:

* every node starts as a follower; one that hears nothing from a leader for its *randomized*
  election timeout (``electionTimeout + rand(electionTimeout)`` ticks, so between 1 s and 2 s:
  ``resetRandomizedElectionTimeout``) becomes a candidate: it increments its term, votes for
  itself and asks every peer for a vote (``MsgVote``);
* a node grants one vote per term, and only to a candidate whose log is at least as up to date
  as its own (last term, then last index); a candidate with votes from a quorum (more than half
  of the members) becomes leader and appends an empty entry in its term;
* the leader replicates entries with ``MsgApp`` (a follower accepts them only if it holds the
  entry just before them, with the same term) and commits an entry of its own term once a
  quorum holds it; followers learn the commit index from the next ``MsgApp`` or heartbeat;
* a message with a higher term makes any node a follower of that term;
* with CheckQuorum a leader that has not heard from a quorum within an election timeout steps
  down, and a follower that heard from its leader within the election timeout ignores votes
  (``inLease``);
* ReadIndex: to serve a linearizable read, the leader records its commit index and confirms it
  is still leader with a round of heartbeats a quorum answers; a follower asks the leader for
  that index (``MsgReadIndex``) and serves once it has applied up to it.

Simplifications, said out loud: messages are synchronous calls (a send returns the answer, or
None when the network lost it), so a round of replication happens within one instant of
virtual time; no pre-vote (etcd 3.4's default, ``--pre-vote=false``), no snapshots, no
membership changes, no flow control (an append carries every entry the follower lacks).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from k8sbook.core.clock import Clock, Timer

State = Literal["StateFollower", "StateCandidate", "StateLeader"]
MessageType = Literal["MsgProp", "MsgVote", "MsgVoteResp", "MsgApp", "MsgAppResp", "MsgHeartbeat",
                      "MsgHeartbeatResp", "MsgReadIndex", "MsgReadIndexResp"]

#: one tick: etcd's ``--heartbeat-interval`` default, 100 ms
TICK = 0.1
#: ``--election-timeout`` default 1000 ms, in ticks
ELECTION_TICKS = 10
HEARTBEAT_TICKS = 1


@dataclass(frozen=True)
class Entry:
    """One log entry: ``data`` is the request to apply (None: the leader's empty entry)."""

    term: int
    index: int
    data: Any = None


@dataclass(frozen=True)
class Message:
    """A Raft message (``raftpb.Message``): ``index``/``log_term`` are the entry before
    ``entries`` for an append, the last entry for a vote; ``reject_hint`` a follower's last
    index when it rejects an append."""

    type: MessageType
    frm: str
    to: str
    term: int
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0


#: ``send(message)`` returns the answer, or None when it was lost (peer down, partitioned)
Transport = Callable[[Message], "Message | None"]


class NotLeaderError(Exception):
    """A proposal or ReadIndex at a node that cannot serve it now."""


@dataclass
class Raft:
    """One member's Raft state machine. ``apply(entry)`` runs each committed entry in order on
    every member."""

    id: str
    peers: list[str]
    clock: Clock
    rng: random.Random
    send: Transport = field(repr=False)
    apply: Callable[[Entry], Any] = field(repr=False)
    on_state: Callable[[Raft], None] = field(default=lambda r: None, repr=False)
    tick: float = TICK
    election_ticks: int = ELECTION_TICKS
    heartbeat_ticks: int = HEARTBEAT_TICKS
    state: State = "StateFollower"
    term: int = 0
    vote: str | None = None
    lead: str | None = None
    log: list[Entry] = field(default_factory=list)
    commit: int = 0
    applied: int = 0
    running: bool = False
    #: (time, term, state, lead) at every change of state or leader, for observers
    history: list[tuple[float, int, str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._timer: Timer | None = None
        self._last_heard = 0.0
        self._timeout = 0.0
        self._match: dict[str, int] = {}
        self._next: dict[str, int] = {}
        self._active: set[str] = set()
        self._quorum_check = 0.0

    # -- the log ---------------------------------------------------------------------------
    @property
    def last_index(self) -> int:
        return self.log[-1].index if self.log else 0

    def term_at(self, index: int) -> int:
        return self.log[index - 1].term if 0 < index <= len(self.log) else 0

    @property
    def quorum(self) -> int:
        return (len(self.peers) + 1) // 2 + 1

    def _apply_committed(self) -> None:
        while self.applied < self.commit:
            self.applied += 1
            self.apply(self.log[self.applied - 1])

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start (or restart on the persisted term, vote and log) as a follower."""
        self.running = True
        self._become_follower(self.term, None)

    def stop(self) -> None:
        self.running = False
        if self._timer:
            self._timer.cancel()
        self._note()

    def _note(self) -> None:
        lead = self.lead if self.running else None
        state = self.state if self.running else "stopped"
        if not self.history or self.history[-1][1:] != (self.term, state, lead):
            self.history.append((self.clock.now(), self.term, state, lead))
        self.on_state(self)

    def _arm(self, delay: float, fn: Callable[[], None], label: str) -> None:
        if self._timer:
            self._timer.cancel()
        self._timer = self.clock.call_later(delay, fn, label=f"raft {self.id} {label}")

    def _reset_election(self) -> None:
        """``resetRandomizedElectionTimeout``: [electiontimeout, 2 * electiontimeout) ticks."""
        self._last_heard = self.clock.now()
        ticks = self.election_ticks + self.rng.randrange(self.election_ticks)
        self._timeout = ticks * self.tick
        self._arm(self._timeout, self._election_due, "election timeout")

    def _election_due(self) -> None:
        if not self.running or self.state == "StateLeader":
            return
        due = self._last_heard + self._timeout
        if self.clock.now() + 1e-9 < due:  # heard from the leader since: wait again
            self._arm(due - self.clock.now(), self._election_due, "election timeout")
            return
        self.campaign()

    # -- state changes ---------------------------------------------------------------------
    def _become_follower(self, term: int, lead: str | None) -> None:
        if term > self.term:
            self.term, self.vote = term, None
        self.state, self.lead = "StateFollower", lead
        self._reset_election()
        self._note()

    def campaign(self) -> None:
        """``becomeCandidate`` and ask every peer for its vote."""
        self.state, self.term, self.vote, self.lead = "StateCandidate", self.term + 1, self.id, None
        self._reset_election()
        self._note()
        votes = {self.id}
        for peer in self.peers:
            resp = self.send(Message("MsgVote", self.id, peer, self.term,
                                     log_term=self.term_at(self.last_index),
                                     index=self.last_index))
            if resp is None or self.state != "StateCandidate":
                continue
            if resp.term > self.term:
                self._become_follower(resp.term, None)
                return
            if not resp.reject:
                votes.add(peer)
        if self.state == "StateCandidate" and len(votes) >= self.quorum:
            self._become_leader()

    def _become_leader(self) -> None:
        self.state, self.lead = "StateLeader", self.id
        self._match = {p: 0 for p in self.peers}
        self._next = {p: self.last_index + 1 for p in self.peers}  # probe from the end
        self._active, self._quorum_check = set(), self.clock.now()
        self.log.append(Entry(self.term, self.last_index + 1))  # the empty entry of its term
        self._note()
        self._broadcast()
        self._arm(self.heartbeat_ticks * self.tick, self._heartbeat_tick, "heartbeat")

    # -- the leader ------------------------------------------------------------------------
    def propose(self, data: Any) -> int:
        """Append ``data`` to the log and replicate it; the entry's index. Whether a quorum
        has it: :meth:`committed`. A follower forwards it to its leader (``MsgProp``)."""
        if self.running and self.state == "StateFollower" and self.lead is not None:
            self.send(Message("MsgProp", self.id, self.lead, self.term,
                              entries=(Entry(self.term, 0, data),)))
            return 0
        if self.state != "StateLeader" or not self.running:
            raise NotLeaderError(self.lead)
        self.log.append(Entry(self.term, self.last_index + 1, data))
        index = self.last_index
        self._broadcast()
        return index

    def committed(self, index: int) -> bool:
        return self.commit >= index

    def _broadcast(self) -> None:
        for peer in self.peers:
            if self.state != "StateLeader":
                return
            self._replicate(peer)
        if self._maybe_commit():  # stepLeader: a new commit index goes out at once
            for peer in self.peers:
                if self.state == "StateLeader" and self._match.get(peer, 0) == self.last_index:
                    self._replicate(peer)

    def _replicate(self, peer: str) -> bool:
        """Send ``peer`` every entry it lacks (backing off on a rejection); True if it
        answered."""
        next_index = self._next.get(peer, self._match.get(peer, 0) + 1)
        while True:
            prev = next_index - 1
            resp = self.send(Message("MsgApp", self.id, peer, self.term, log_term=self.term_at(prev),
                                     index=prev, entries=tuple(self.log[prev:]),
                                     commit=self.commit))
            if resp is None:
                return False
            if self._stale(resp):
                return True
            self._active.add(peer)
            if not resp.reject:
                self._match[peer] = max(self._match.get(peer, 0), resp.index)
                self._next[peer] = self._match[peer] + 1
                return True
            next_index = max(1, min(next_index - 1, resp.reject_hint + 1))
            self._next[peer] = next_index

    def _stale(self, resp: Message) -> bool:
        if resp.term > self.term:
            self._become_follower(resp.term, None)
            return True
        return self.state != "StateLeader"

    def _maybe_commit(self) -> bool:
        if self.state != "StateLeader":
            return False
        matches = sorted([self.last_index, *self._match.values()], reverse=True)
        index = matches[self.quorum - 1]
        if index > self.commit and self.term_at(index) == self.term:
            self.commit = index
            self._apply_committed()
            return True
        return False

    def _heartbeat_tick(self) -> None:
        if not self.running or self.state != "StateLeader":
            return
        self.confirm_quorum()
        if self.state != "StateLeader":
            return
        now = self.clock.now()
        if now - self._quorum_check >= self.election_ticks * self.tick - 1e-9:
            if len(self._active) + 1 < self.quorum:  # CheckQuorum: step down
                self._become_follower(self.term, None)
                return
            self._active, self._quorum_check = set(), now
        self._arm(self.heartbeat_ticks * self.tick, self._heartbeat_tick, "heartbeat")

    def confirm_quorum(self) -> bool:
        """One heartbeat to every peer (an append to one that lacks entries); True if a quorum
        (counting this leader) answered in this term."""
        acks = 1
        for peer in self.peers:
            if self.state != "StateLeader":
                return False
            if self._match.get(peer, 0) < self.last_index:
                answered = self._replicate(peer)
            else:
                resp = self.send(Message("MsgHeartbeat", self.id, peer, self.term,
                                         commit=min(self._match.get(peer, 0), self.commit)))
                answered = resp is not None and not self._stale(resp)
                if answered:
                    self._active.add(peer)
            acks += answered
        self._maybe_commit()
        return self.state == "StateLeader" and acks >= self.quorum

    def read_index(self) -> int:
        """ReadIndex: the commit index, once a quorum confirmed this node still leads."""
        if not self.running:
            raise NotLeaderError(None)
        if self.state == "StateLeader":
            if self.term_at(self.commit) != self.term or not self.confirm_quorum():
                raise NotLeaderError(self.id)
            return self.commit
        if self.lead is None:
            raise NotLeaderError(None)
        resp = self.send(Message("MsgReadIndex", self.id, self.lead, self.term))
        if resp is None or resp.reject:
            raise NotLeaderError(self.lead)
        if self.applied < resp.index:
            raise NotLeaderError(self.lead)
        return resp.index

    # -- every node ------------------------------------------------------------------------
    def step(self, m: Message) -> Message | None:
        """Handle one message from a peer and answer it (None: ignored)."""
        if not self.running:
            return None
        if m.type == "MsgProp":  # forwarded by a follower; raft answers nothing
            if self.state == "StateLeader":
                self.propose(m.entries[0].data)
            return None
        if m.type == "MsgVote" and m.term > self.term and self.lead is not None and (
                self.state == "StateLeader"
                or self.clock.now() - self._last_heard < self.election_ticks * self.tick):
            return None  # inLease: a leader was heard from recently, ignore the vote
        if m.term > self.term:
            self._become_follower(m.term, None if m.type == "MsgVote" else m.frm)
        elif m.term < self.term:
            return Message(_RESPONSE[m.type], self.id, m.frm, self.term, reject=True)
        if m.type == "MsgVote":
            up_to_date = (m.log_term, m.index) >= (self.term_at(self.last_index),
                                                   self.last_index)
            grant = self.vote in (None, m.frm) and up_to_date
            if grant:
                self.vote = m.frm
                self._reset_election()
            return Message("MsgVoteResp", self.id, m.frm, self.term, reject=not grant)
        if m.type == "MsgReadIndex":
            return self._serve_read_index(m)
        if self.state != "StateFollower" or self.lead != m.frm:
            self._become_follower(self.term, m.frm)
        self._last_heard = self.clock.now()
        if m.type == "MsgHeartbeat":
            self._advance_commit(m.commit)
            return Message("MsgHeartbeatResp", self.id, m.frm, self.term, index=self.last_index)
        return self._append(m)

    def _append(self, m: Message) -> Message:
        if m.index > self.last_index or self.term_at(m.index) != m.log_term:
            return Message("MsgAppResp", self.id, m.frm, self.term, reject=True,
                           reject_hint=min(self.last_index, max(m.index - 1, 0)))
        for entry in m.entries:
            if self.term_at(entry.index) != entry.term:
                del self.log[entry.index - 1:]  # a conflicting suffix: the leader's wins
                self.log.append(entry)
        last_new = m.index + len(m.entries)
        self._advance_commit(min(m.commit, last_new))
        return Message("MsgAppResp", self.id, m.frm, self.term, index=last_new)

    def _advance_commit(self, commit: int) -> None:
        if commit > self.commit:
            self.commit = min(commit, self.last_index)
            self._apply_committed()

    def _serve_read_index(self, m: Message) -> Message:
        if self.state != "StateLeader" or self.term_at(self.commit) != self.term or \
                not self.confirm_quorum():
            return Message("MsgReadIndexResp", self.id, m.frm, self.term, reject=True)
        if self._match.get(m.frm, 0) < self.commit:
            self._replicate(m.frm)  # the follower applies up to the index before it serves
        return Message("MsgReadIndexResp", self.id, m.frm, self.term, index=self.commit)


_RESPONSE: dict[str, MessageType] = {
    "MsgProp": "MsgProp", "MsgVote": "MsgVoteResp", "MsgApp": "MsgAppResp", "MsgHeartbeat": "MsgHeartbeatResp",
    "MsgReadIndex": "MsgReadIndexResp"}
