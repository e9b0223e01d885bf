"""An etcd cluster in the model: three (or five) members, each with its own MVCC store,
agreeing through Raft over the peer port.

Mirrors ``go.etcd.io/etcd/server/v3/etcdserver`` (``server.go``, ``v3_server.go``,
``apply.go``) and its peer transport (``etcdserver/api/rafthttp``): a member serves clients on
2379 and its peers on 2380 (https://etcd.io/docs/v3.5/op-guide/clustering/). Every member
applies the same committed log to its own store (:class:`~k8sbook.storage.etcd.MemoryEtcd`, the
one store implementation of the model), so every member has the same revisions.

* **Writes** (``Txn``, ``Put``, ``DeleteRange``, ``Compact``, ``LeaseGrant``,
  ``LeaseRevoke``) become Raft proposals; a follower forwards them to its leader. The member
  answers once it has applied the entry, which needs a quorum to hold it first. With no
  quorum the request times out: etcd's ``ReqTimeout`` is 5 s plus two election timeouts
  (:data:`REQUEST_TIMEOUT`) and the message is ``etcdserver: request timed out`` (no leader),
  or ``etcdserver: request timed out, possibly due to connection lost`` when the member's leader
  (or, on the leader, a quorum) has not been reachable (``parseProposeCtxErr``). The model
  answers at once with that error, as if the timeout had passed, and says how long it was.
  A proposal that timed out may still commit later, when the quorum is back: etcd's docs warn
  that a timed-out request's outcome is unknown.
* **Reads** are linearizable (a ``Range`` without ``serializable``): the member gets a read
  index from the leader (ReadIndex, see :mod:`k8sbook.storage.raft`) and serves from its store;
  a member cut off from the quorum answers ``etcdserver: request timed out``.
* **Watches** are served from the member's own store. kube-apiserver opens them "require
  leader" (``clientv3.WithRequireLeader``), so a member with no leader refuses a new one with
  ``etcdserver: no leader`` and ends open ones after three election timeouts without a leader
  (``monitorLeader``, ``maxNoLeaderCnt = 3``); the client reopens them on another member from
  the revision after the last one it received.
* **Leases**: only the leader's lessor expires leases (``Promote`` on becoming leader gives
  each its TTL plus an election timeout; ``Demote`` on losing it), and an expiry is proposed as
  a ``LeaseRevoke`` through Raft; a keep-alive sent to a follower is forwarded to the leader.
* **The peer path** is mutual TLS with certificates from the etcd CA (kubeadm:
  ``/etc/kubernetes/pki/etcd/ca.crt``, each member's ``peer.crt`` with
  ``--peer-client-cert-auth``; https://etcd.io/docs/v3.5/op-guide/security/): the dialler checks
  the member's serving certificate and the member checks the dialler's client certificate
  (both in the network fabric's handshake: a peer whose certificate another CA signed gets
  ``remote error: tls: unknown certificate authority``). The client port on 2379 requires a
  client certificate from the same CA (``--client-cert-auth``).

Simplified: see :mod:`k8sbook.storage.raft`; no learners, no member add/remove, no defrag.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from k8sbook.client.network import Address, Connection, DialError, Network
from k8sbook.core.clock import Clock, Timer
from k8sbook.storage.etcd import MemoryEtcd
from k8sbook.storage.etcd_api import EtcdError, UnavailableError
from k8sbook.storage.raft import ELECTION_TICKS, TICK, Entry, Message, NotLeaderError, Raft

CLIENT_PORT = 2379
PEER_PORT = 2380
PEER_PROTOCOL = "Raft over HTTPS (peer mTLS)"
CLIENT_PROTOCOL = "gRPC (etcd v3, mTLS)"
#: the issuer of every member's peer certificate (kubeadm's ``etcd-ca``)
PEER_CA = "etcd-ca"
ELECTION_TIMEOUT = ELECTION_TICKS * TICK
#: ``ServerConfig.ReqTimeout``: 5 s + 2 * election timeout
REQUEST_TIMEOUT = 5.0 + 2 * ELECTION_TIMEOUT
#: ``monitorLeader`` ends require-leader streams after this many election timeouts
MAX_NO_LEADER = 3

ERR_TIMEOUT = "etcdserver: request timed out"
ERR_CONNECTION_LOST = "etcdserver: request timed out, possibly due to connection lost"
ERR_NO_LEADER = "etcdserver: no leader"

_WRITES = ("txn", "put", "delete_range", "compact", "lease_grant", "lease_revoke")


class EtcdMember:
    """One member: ``etcd/<name>``, its Raft node and its store, on ``host``:2379 and :2380."""

    def __init__(self, name: str, host: str, peers: dict[str, str], network: Network,
                 clock: Clock, rng: random.Random) -> None:
        self.name, self.host = name, host
        self.instance = f"etcd/{name}"
        self.network, self.clock = network, clock
        #: peer name -> host
        self.peers = peers
        self.store = MemoryEtcd(clock)
        self.store.lessor_primary = False
        self.store.on_expire = self._expire_lease
        self.raft = Raft(name, sorted(peers), clock, rng, self._send, self._apply,
                         on_state=self._on_state)
        self.client_address = Address.tcp(host, CLIENT_PORT)
        self.peer_address = Address.tcp(host, PEER_PORT)
        self._waits: dict[str, tuple[bool, Any]] = {}
        self._next_request = 0
        self._streams: list[Connection] = []
        self._no_leader_timer: Timer | None = None

    # -- the process -----------------------------------------------------------------------
    def start(self) -> None:
        self.network.listen(self.client_address, self.instance, self._serve_client,
                            protocol=CLIENT_PROTOCOL, certificate=PEER_CA, client_ca=PEER_CA)
        self.network.listen(self.peer_address, self.instance, self._serve_peer,
                            protocol=PEER_PROTOCOL, certificate=PEER_CA, client_ca=PEER_CA)
        self.store.running = True
        self.raft.start()

    def stop(self) -> None:
        """The process stops: both ports close, open streams break; log and data stay."""
        self.network.close(self.client_address)
        self.network.close(self.peer_address)
        self.raft.stop()
        self.store.demote()
        self._end_streams()

    @property
    def running(self) -> bool:
        return self.raft.running

    # -- Raft plumbing ---------------------------------------------------------------------
    def _send(self, m: Message) -> Message | None:
        host = self.peers[m.to]
        try:
            out = self.network.dial(self.instance, Address.tcp(host, PEER_PORT),
                                    (self.instance, m), protocol=PEER_PROTOCOL,
                                    verb=m.type, resource=_summary(m),
                                    result=lambda reply: _describe(m, reply), verify=PEER_CA,
                                    client_certificate=PEER_CA)
        except DialError:
            return None
        return out if isinstance(out, Message) else None

    def _serve_peer(self, request: tuple[str, Any]) -> Any:
        _who, payload = request  # the handshake checked the peer's certificate
        if isinstance(payload, Message):
            return self.raft.step(payload)
        return self.store.lease_keepalive(payload)  # a keep-alive a follower forwarded

    def _apply(self, entry: Entry) -> None:
        if entry.data is None:
            return
        request_id, method, args, kwargs = entry.data
        try:
            result: tuple[bool, Any] = (True, getattr(self.store, method)(*args, **kwargs))
        except EtcdError as err:
            result = (False, err)
        if request_id.startswith(self.name + "#"):
            self._waits[request_id] = result

    def _on_state(self, raft: Raft) -> None:
        if raft.running and raft.state == "StateLeader":
            if not self.store.lessor_primary:
                self.store.promote(extend=ELECTION_TIMEOUT)
        elif self.store.lessor_primary:
            self.store.demote()
        if raft.running and raft.lead is None and self._no_leader_timer is None:
            self._no_leader_timer = self.clock.call_later(
                MAX_NO_LEADER * ELECTION_TIMEOUT, self._monitor_leader,
                label=f"etcd {self.name} monitorLeader")
        elif raft.lead is not None and self._no_leader_timer is not None:
            self._no_leader_timer.cancel()
            self._no_leader_timer = None

    def _monitor_leader(self) -> None:
        self._no_leader_timer = None
        if self.raft.running and self.raft.lead is None:
            self._end_streams()

    def _end_streams(self) -> None:
        streams, self._streams = self._streams, []
        for conn in streams:
            conn.cut()

    def _expire_lease(self, lease_id: int) -> None:
        try:
            self._propose("lease_revoke", (lease_id,), {})
        except EtcdError:
            pass  # the lessor tries again on its next round; the model leaves it

    # -- the client port -------------------------------------------------------------------
    def _serve_client(self, call: Any) -> Any:
        if isinstance(call, tuple) and len(call) == 2 and isinstance(call[1], Connection):
            return self._open_watch(call[0], call[1])
        method, args, kwargs = call
        if method in _WRITES:
            return self._propose(method, args, kwargs)
        if method == "lease_keepalive":
            return self._keepalive(args[0])
        if method == "range" and not kwargs.pop("serializable", False):
            self._read_index()
        return getattr(self.store, method)(*args, **kwargs)

    def _open_watch(self, call: tuple[str, tuple[Any, ...], dict[str, Any]],
                    conn: Connection) -> Any:
        if self.raft.lead is None:  # answered on the stream, which the client then closes
            return UnavailableError(ERR_NO_LEADER, ERR_NO_LEADER)
        _method, args, kwargs = call
        handle = self.store.watch(*args, **kwargs)
        self._streams.append(conn)
        conn.on_break = _chain(conn.on_break, handle.cancel)
        return handle

    def _propose(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._next_request += 1
        request_id = f"{self.name}#{self._next_request}"
        try:
            self.raft.propose((request_id, method, args, kwargs))
        except NotLeaderError:
            pass
        done = self._waits.pop(request_id, None)
        if done is None:
            raise _timeout(self._why())
        ok, value = done
        if not ok:
            raise value
        return value

    def _why(self) -> str:
        return ERR_TIMEOUT if self.raft.lead is None else ERR_CONNECTION_LOST

    def _read_index(self) -> None:
        try:
            self.raft.read_index()
        except NotLeaderError as err:
            raise _timeout(ERR_TIMEOUT) from err

    def _keepalive(self, lease_id: int) -> int:
        if self.raft.state == "StateLeader":
            return self.store.lease_keepalive(lease_id)
        lead = self.raft.lead
        if lead is None:
            raise _timeout(ERR_TIMEOUT)
        try:
            out = self.network.dial(self.instance, Address.tcp(self.peers[lead], PEER_PORT),
                                    (self.instance, lease_id), protocol=PEER_PROTOCOL,
                                    verb="LeaseKeepAlive", resource=f"lease {lease_id:x}",
                                    result=lambda ttl: f"ttl {ttl}s", verify=PEER_CA,
                                    client_certificate=PEER_CA)
        except DialError as err:
            raise _timeout(ERR_CONNECTION_LOST) from err
        return int(out)


class EtcdCluster:
    """``members`` etcd members named ``names`` on ``hosts``, started and electing."""

    def __init__(self, network: Network, clock: Clock, rng: random.Random,
                 names: list[str], hosts: list[str]) -> None:
        everyone = dict(zip(names, hosts, strict=True))
        self.members = {n: EtcdMember(n, h, {p: q for p, q in everyone.items() if p != n},
                                      network, clock, rng) for n, h in everyone.items()}
        self.clock = clock

    def start(self) -> None:
        for member in self.members.values():
            member.start()

    @property
    def endpoints(self) -> list[Address]:
        """The client URLs, as ``--etcd-servers`` lists them."""
        return [m.client_address for m in self.members.values()]

    def leader(self) -> EtcdMember | None:
        leaders = [m for m in self.members.values()
                   if m.running and m.raft.state == "StateLeader"]
        return max(leaders, key=lambda m: m.raft.term) if leaders else None

    def wait_for_leader(self, limit: float = 10.0) -> EtcdMember:
        """Run virtual time until some member leads (an election takes 1-2 s)."""
        end = self.clock.now() + limit
        while self.clock.now() < end:
            leader = self.leader()
            if leader is not None and all(m.raft.lead == leader.name
                                          for m in self.members.values() if m.running
                                          and m.raft.term == leader.raft.term):
                return leader
            self.clock.run_for(TICK)
        raise RuntimeError("no etcd leader elected")

    @property
    def quorum(self) -> int:
        return quorum(len(self.members))


def quorum(members: int) -> int:
    """A majority: ``members // 2 + 1`` (etcd's FAQ: a cluster of N tolerates
    ``(N - 1) // 2`` failures, https://etcd.io/docs/v3.5/faq/)."""
    return members // 2 + 1


def _timeout(message: str) -> UnavailableError:
    return UnavailableError(f"{message} (after {REQUEST_TIMEOUT:g}s)", message)


def _chain(first: Callable[[], None] | None, then: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        if first is not None:
            first()
        then()
    return both


def _summary(m: Message) -> str:
    """What a Raft message carries, for the trace."""
    if m.type == "MsgVote":
        return f"term {m.term}, last index {m.index}"
    if m.type == "MsgApp":
        return f"term {m.term}, {len(m.entries)} entries, commit {m.commit}"
    if m.type == "MsgHeartbeat":
        return f"term {m.term}, commit {m.commit}"
    return f"term {m.term}"


def _describe(m: Message, reply: Any) -> str:
    if m.type == "MsgProp":
        return "forwarded to the leader"
    if not isinstance(reply, Message):
        return "ignored" if reply is None else str(reply)
    if reply.type == "MsgVoteResp":
        return f"term {reply.term}, {'rejected' if reply.reject else 'granted'}"
    if reply.reject:
        return f"term {reply.term}, rejected"
    return f"term {reply.term}, index {reply.index}"
