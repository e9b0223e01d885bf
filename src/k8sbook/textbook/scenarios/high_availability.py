"""Scenarios of chapter 14, "More than one of everything": a control plane of three nodes
(kubeadm's stacked topology: an etcd member and a kube-apiserver on each, a load balancer in
front), and what happens when parts of it fail.

The book's own code (no Kubernetes counterpart). Each run builds
``Cluster(seed, control_plane_nodes=3)``, injects one failure (a process stops, a partition)
and reads what the components did off their own state and the trace: Raft's state changes
(``raft.history``), the load balancer's health checks, the Leases, what the apiserver
answered (:func:`~k8sbook.textbook.scenarios.outcome`).

The module is over 400 lines because it also holds the variants chapter 14's exercise
solutions run (:func:`writes_with_members_down`, :func:`follower_partition`), next to the runs
they vary.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

from k8sbook.api import objects
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.leaderelection import leaders_at
from k8sbook.client.rest import Client
from k8sbook.cluster import Cluster
from k8sbook.core.trace import Message
from k8sbook.storage.etcd_cluster import EtcdCluster, EtcdMember
from k8sbook.textbook.scenarios import ScenarioResult, outcome, scenario

CHAPTER = "14-more-than-one-of-everything"
PEER_PATH = "etcd->etcd"


def _etcd(cluster: Cluster) -> EtcdCluster:
    assert cluster.etcd_cluster is not None, "a highly available cluster"
    return cluster.etcd_cluster


def _leader(cluster: Cluster) -> EtcdMember:
    leader = _etcd(cluster).leader()
    assert leader is not None, "an etcd leader"
    return leader


def raft_timeline(cluster: Cluster, since: float = 0.0) -> list[tuple[float, str, int, str, str]]:
    """(time, member, term, state, leader) of every Raft state change after ``since``."""
    rows = [(round(t, 1), m.name, term, state, lead or "-")
            for m in _etcd(cluster).members.values()
            for t, term, state, lead in m.raft.history if t >= since]
    return sorted(rows)


def peer_verbs(messages: list[Message]) -> dict[str, int]:
    """How many Raft messages of each type crossed the peer path."""
    return dict(sorted(Counter(m.verb for m in messages if m.path == PEER_PATH).items()))


def revisions(cluster: Cluster) -> dict[str, int]:
    """Each running member's store revision (equal when they agree)."""
    return {m.name: m.store.revision for m in _etcd(cluster).members.values() if m.running}


def _pod(name: str) -> dict[str, Any]:
    return objects.pod(name)


@scenario("ha-etcd-write", "One write in a three-member etcd cluster: the leader replicates "
          "it to a quorum before kube-apiserver gets its answer", CHAPTER)
def one_write(seed: int = 0) -> ScenarioResult:
    cluster = Cluster(seed, control_plane_nodes=3)
    admin = cluster.admin()
    cluster.run_for(0.05)
    mark = cluster.trace.mark()
    answer = outcome(lambda: admin.create(_pod("web")), cluster.trace)
    messages = [m for m in cluster.trace.since(mark) if m.verb != "MsgHeartbeat"]
    leader = _leader(cluster)
    facts = {"answer": answer, "leader": leader.name, "term": leader.raft.term,
             "revisions": revisions(cluster), "peer_verbs": peer_verbs(messages)}
    return ScenarioResult("ha-etcd-write", cluster, messages, facts)


@scenario("ha-etcd-leader-loss", "Three etcd members: the leader stops, the other two elect a "
          "new one; writes fail only in between", CHAPTER)
def leader_loss(seed: int = 0) -> ScenarioResult:
    cluster = Cluster(seed, control_plane_nodes=3)
    admin = cluster.admin()
    admin.create(_pod("before"))
    cluster.run_for(2)
    old = _leader(cluster)
    before = {"leader": old.name, "term": old.raft.term}
    mark, t0 = cluster.trace.mark(), cluster.clock.now()
    old.stop()
    during = outcome(lambda: admin.create(_pod("during")), cluster.trace)
    new = _etcd(cluster).wait_for_leader()
    elected = next(t for t, name, _term, state, _ in raft_timeline(cluster, t0)
                   if name == new.name and state == "StateLeader")
    after = outcome(lambda: admin.create(_pod("after")), cluster.trace)
    cluster.run_for(1)
    messages = cluster.trace.since(mark)
    facts = {
        "before": before, "after": {"leader": new.name, "term": new.raft.term},
        "stopped_at": round(t0, 1), "elected_at": elected,
        "seconds_without_leader": round(elected - t0, 1),
        "write_during_election": during, "write_after": after,
        "timeline": raft_timeline(cluster, t0),
        "revisions": revisions(cluster),
        "pods": sorted(p["metadata"]["name"] for p in admin.list("pods")["items"]),
        "peer_verbs": peer_verbs(messages),
    }
    return ScenarioResult("ha-etcd-leader-loss", cluster, messages, facts)


@scenario("ha-etcd-quorum-loss", "Two of three etcd members stop: no quorum, writes fail, "
          "reads from the watch cache go on; one member back, quorum back", CHAPTER)
def quorum_loss(seed: int = 0) -> ScenarioResult:
    cluster = Cluster(seed, control_plane_nodes=3)
    admin = cluster.admin()
    admin.create(_pod("web"))
    sched = cluster.add_scheduler("kube-scheduler/cp-1")
    sched.start()
    cluster.run_for(5)
    members = _etcd(cluster).members
    mark, t0 = cluster.trace.mark(), cluster.clock.now()
    stopped = sorted(members)[1:]
    for name in stopped:
        members[name].stop()
    cluster.run_for(3)
    answers = {
        "create": outcome(lambda: admin.create(_pod("new")), cluster.trace),
        "get (from etcd)": outcome(lambda: admin.get("pods", "web", "default"), cluster.trace),
        "list rv=0 (watch cache)": outcome(
            lambda: admin.list("pods", "default", resourceVersion="0"), cluster.trace),
    }
    cluster.run_for(12)
    assert sched.elector is not None
    leading_during = sched.elector.leading
    members[stopped[0]].start()
    _etcd(cluster).wait_for_leader()
    cluster.run_for(3)
    back = outcome(lambda: admin.create(_pod("new")), cluster.trace)
    messages = cluster.trace.since(mark)
    facts = {
        "stopped": stopped, "answers": answers, "write_after_restart": back,
        "scheduler_terms": [[round(s or 0, 1), None if e is None else round(e, 1)]
                            for s, e in sched.elector.terms],
        "scheduler_leading_without_quorum": leading_during,
        "timeline": raft_timeline(cluster, t0), "revisions": revisions(cluster),
    }
    return ScenarioResult("ha-etcd-quorum-loss", cluster, messages, facts)


@scenario("ha-etcd-partition", "The etcd leader is cut off from its two peers: it steps down, "
          "they elect a new leader, its linearizable reads time out", CHAPTER)
def partition(seed: int = 0) -> ScenarioResult:
    cluster = Cluster(seed, control_plane_nodes=3)
    admin = cluster.admin()
    admin.create(_pod("web"))
    old = _leader(cluster)
    others = sorted(n for n in _etcd(cluster).members if n != old.name)
    mark, t0 = cluster.trace.mark(), cluster.clock.now()
    for name in others:
        cluster.network.partition(old.instance, f"etcd/{name}")
    cluster.run_for(3)
    new = _leader(cluster)
    read_on_cut_off = outcome(lambda: old.store.range("/registry/pods/default/web"))
    through = _read_through(cluster, old)
    write = outcome(lambda: admin.create(_pod("during")), cluster.trace)
    term_cut_off = old.raft.term
    cluster.network.heal()
    cluster.run_for(3)
    healed = _etcd(cluster).wait_for_leader()
    messages = cluster.trace.since(mark)
    facts = {
        "cut_off": old.name, "new_leader": new.name,
        "reads_by_the_apiserver_on_its_node": through,
        "serializable_local_read": "served" if read_on_cut_off.ok else read_on_cut_off,
        "write_through_apiserver": write,
        "cut_off_term_before_heal": term_cut_off,
        "leader_after_heal": {"leader": healed.name, "term": healed.raft.term},
        "timeline": raft_timeline(cluster, t0), "revisions": revisions(cluster),
        "peer_verbs": peer_verbs(messages),
    }
    return ScenarioResult("ha-etcd-partition", cluster, messages, facts)


def writes_with_members_down(members: int, down: int, seed: int = 0) -> list[str]:
    """Chapter 14's exercises: a control plane of ``members`` nodes (a stacked etcd member and
    a kube-apiserver on each; one node: a single etcd), then ``down`` etcd followers stopped
    one after the other. Before the first stop and after each one, kubectl creates a Pod;
    what the apiserver answered each time."""
    cluster = Cluster(seed, control_plane_nodes=members) if members > 1 else Cluster(seed)
    admin = cluster.admin()
    answers = [str(outcome(lambda: admin.create(_pod("p0")), cluster.trace))]
    if down:
        etcd = _etcd(cluster)
        leader = _leader(cluster)
        followers = [m for n, m in sorted(etcd.members.items()) if m is not leader]
        for i, member in enumerate(followers[:down], start=1):
            member.stop()
            answers.append(str(outcome(partial(admin.create, _pod(f"p{i}")), cluster.trace)))
    return answers


def follower_partition(seed: int = 0) -> ScenarioResult:
    """Chapter 14's exercise: like :func:`partition`, but a *follower* is cut off from its two
    peers for 5 s. The leader keeps its quorum; the follower campaigns in vain, raising its
    term; when the network heals, its higher term makes the leader step down (no pre-vote, as
    in etcd 3.4) and the cluster elects again."""
    cluster = Cluster(seed, control_plane_nodes=3)
    admin = cluster.admin()
    admin.create(_pod("web"))
    leader = _leader(cluster)
    term_before = leader.raft.term
    cut = min(n for n in _etcd(cluster).members if n != leader.name)
    member = _etcd(cluster).members[cut]
    mark, t0 = cluster.trace.mark(), cluster.clock.now()
    for name in sorted(_etcd(cluster).members):
        if name != cut:
            cluster.network.partition(member.instance, f"etcd/{name}")
    cluster.run_for(5)
    writes: dict[str, str] = {}
    for apiserver in cluster.apiservers:  # an administrator on each node, dialling its apiserver
        direct = Client("kubectl", admin.credentials, network=cluster.network,
                        server=apiserver.address, clock=cluster.clock)
        pod = _pod(f"during-{apiserver.instance.split('/')[1]}")
        writes[apiserver.instance] = str(outcome(partial(direct.create, pod), cluster.trace))
    during = {"leader": _leader(cluster).name, "leader_term": _leader(cluster).raft.term,
              "cut_off_term": member.raft.term, "writes": writes}
    cluster.network.heal()
    healed_at = cluster.clock.now()
    cluster.run_for(3)
    after = _etcd(cluster).wait_for_leader()
    stepped_down = any(t >= healed_at and state == "StateFollower"
                       for t, _term, state, _lead in leader.raft.history)
    facts = {"leader_before": leader.name, "term_before": term_before, "cut_off": cut,
             "during": during, "leader_stepped_down_after_heal": stepped_down,
             "after": {"leader": after.name, "term": after.raft.term},
             "timeline": raft_timeline(cluster, t0)}
    return ScenarioResult("ha-etcd-follower-partition", cluster, cluster.trace.since(mark), facts)


def _read_through(cluster: Cluster, member: EtcdMember) -> list[str]:
    """``kubectl --server`` the apiserver on ``member``'s node gets a Pod (a read from etcd):
    what each of that apiserver's Range calls to etcd answered, in order."""
    apiserver = next(a for a in cluster.apiservers if a.instance.endswith("/" + member.name))
    kubectl = Client("kubectl", cluster.credentials_for("kubectl"), network=cluster.network,
                     server=apiserver.address, clock=cluster.clock)
    mark = cluster.trace.mark()
    kubectl.get("pods", "web", "default")
    return [f"{m.dst}: {m.result}" for m in cluster.trace.since(mark)
            if m.src == apiserver.instance and m.verb == "Range"]


@scenario("ha-apiserver-failover", "One of three kube-apiservers dies: clients reconnect through "
          "the load balancer, watches resume, the kubernetes endpoints drop it", CHAPTER)
def apiserver_failover(seed: int = 0) -> ScenarioResult:
    cluster = Cluster(seed, control_plane_nodes=3)
    admin = cluster.admin()
    watcher = SharedIndexInformer(cluster.client("kube-scheduler/cp-1"), "pods")
    watcher.run()
    cluster.run_for(12)
    admin.create(_pod("before"))
    cluster.run_for(1)
    balancer = cluster.load_balancer
    assert balancer is not None
    serving = next(a for a in cluster.apiservers if any(
        c.src == "kube-scheduler/cp-1" for c in cluster.network.connections(a.instance)))
    mark, t0 = cluster.trace.mark(), cluster.clock.now()
    serving.stop()
    cluster.run_for(1)
    admin.create(_pod("after"))
    cluster.run_for(35)
    messages = cluster.trace.since(mark)
    leases = admin.list("leases", "kube-system",
                        labelSelector="apiserver.kubernetes.io/identity=kube-apiserver")
    slice_ = admin.get("endpointslices", "kubernetes", "default")
    changes = sorted((round(t, 1), ips) for a in cluster.apiservers
                     if a.endpoint_reconciler is not None
                     for t, ips in a.endpoint_reconciler.changes if t >= t0)
    facts = {
        "died": serving.instance, "died_at": round(t0, 1),
        "watcher_history": [h for h in watcher.reflector.history if h[0] >= t0],
        "watcher_pods": sorted(p["metadata"]["name"] for p in watcher.lister()),
        "balancer": [(round(t, 1), str(b), s) for t, b, s in balancer.transitions],
        "endpoints": sorted(a for e in slice_["endpoints"] for a in e["addresses"]),
        "endpoint_changes": changes,
        "identity_leases": sorted((lease["metadata"]["labels"]["kubernetes.io/hostname"],
                                   lease["metadata"]["name"], lease["spec"]["renewTime"])
                                  for lease in leases["items"]),
    }
    watcher.stop()
    return ScenarioResult("ha-apiserver-failover", cluster, messages, facts)


@scenario("ha-leader-failover", "Two kube-schedulers and two kube-controller-managers: the "
          "leaders are killed, the Leases change hands after the lease duration", CHAPTER)
def leader_failover(seed: int = 0) -> ScenarioResult:
    cluster = Cluster(seed, control_plane_nodes=3)
    scheds = [cluster.add_scheduler(f"kube-scheduler/cp-{i}") for i in (1, 2)]
    kcms = [cluster.add_controller_manager(f"kube-controller-manager/cp-{i}",
                                           controllers=("replicaset",)) for i in (1, 2)]
    for sched in scheds:
        sched.start()
    for kcm in kcms:
        kcm.start()
    cluster.run_for(10)
    admin = cluster.admin()

    def holder(name: str) -> str:
        lease: dict[str, Any] = admin.get("leases", name, "kube-system")
        return str(lease["spec"]["holderIdentity"])

    lead_sched = next(s for s in scheds if s.elector is not None and s.elector.leading)
    lead_kcm = next(k for k in kcms if k.elector.leading)
    before = {"kube-scheduler": holder("kube-scheduler"),
              "kube-controller-manager": holder("kube-controller-manager")}
    mark, t0 = cluster.trace.mark(), cluster.clock.now()
    lead_sched.stop()
    lead_kcm.stop()
    cluster.run_for(30)
    electors = {"kube-scheduler": [s.elector for s in scheds if s.elector is not None],
                "kube-controller-manager": [k.elector for k in kcms]}
    took_over = {name: next(round(t[0] or 0, 1) for e in es for t in e.terms
                            if t[0] is not None and t[0] > t0)
                 for name, es in electors.items()}
    steps = [t0 + 0.5 * i for i in range(-20, 61)]
    facts = {
        "killed_at": round(t0, 1), "holders_before": before,
        "holders_after": {"kube-scheduler": holder("kube-scheduler"),
                          "kube-controller-manager": holder("kube-controller-manager")},
        "took_over_at": took_over,
        "seconds_to_take_over": {k: round(v - t0, 1) for k, v in took_over.items()},
        "most_leaders_at_once": {name: max(len(leaders_at(es, t)) for t in steps)
                                 for name, es in electors.items()},
        "lease_transitions": {name: admin.get("leases", name, "kube-system")["spec"].get(
            "leaseTransitions", 0) for name in electors},
    }
    return ScenarioResult("ha-leader-failover", cluster, cluster.trace.since(mark), facts)


# -- figures --------------------------------------------------------------------------------
STATE_COLOURS = {"StateLeader": "#326ce5", "StateFollower": "#2e8b57",
                 "StateCandidate": "#e67e22", "stopped": "#c0392b"}


def raft_states_timeline(result: ScenarioResult, title: str) -> Any:
    """Each etcd member's Raft state over the run (from ``raft.history``), with its term."""
    from k8sbook.textbook import figures

    cluster = result.cluster
    end = cluster.clock.now()
    spans, points = [], []
    for member in _etcd(cluster).members.values():
        rows: list[tuple[float, int, str, str]] = []
        for t, term, state, lead in member.raft.history:
            label = state.removeprefix("State").lower()
            if state == "StateFollower":
                label = f"follower of {lead}" if lead else "follower, no leader"
            if rows and rows[-1][0] == t:
                rows.pop()  # several changes at one instant: the last one holds
            rows.append((t, term, state, label))
        for i, (t, term, state, label) in enumerate(rows):
            stop = rows[i + 1][0] if i + 1 < len(rows) else end
            spans.append((f"etcd/{member.name}", t, stop, label, STATE_COLOURS[state]))
            if state == "StateLeader":
                points.append((f"etcd/{member.name}", t, f"term {term}"))
    lanes = [f"etcd/{n}" for n in _etcd(cluster).members]
    return figures.timeline(lanes, spans, points, title=title, width=11.0)


def apiserver_timeline(result: ScenarioResult) -> Any:
    """The apiserver that died, the load balancer's view of it, the ``kubernetes`` endpoints
    and an informer that was watching through it, all read off the run."""
    from k8sbook.textbook import figures

    a = result.facts
    t0, end = a["died_at"], result.cluster.clock.now()
    lane = a["died"].removeprefix("kube-")
    down = a["balancer"][0][0]
    dropped = a["endpoint_changes"][0][0]
    spans = [(lane, 0.0, t0, "serving", "#326ce5"), (lane, t0, end, "dead", "#c0392b"),
             ("load balancer", 0.0, down, "backend up", "#2e8b57"),
             ("load balancer", down, end, "backend down", "#c0392b"),
             ("endpoints", 0.0, dropped, "3 addresses", "#2e8b57"),
             ("endpoints", dropped, end, "2 addresses", "#e67e22")]
    points = [(lane, t0, "killed")]
    points += [("informer", t, h.split(" (")[0]) for t, h in a["watcher_history"]]
    return figures.timeline([lane, "load balancer", "endpoints", "informer"], spans, points,
                            title="A kube-apiserver dies", width=11.0)


def leases_timeline(result: ScenarioResult) -> Any:
    """Both replicas of kube-scheduler and kube-controller-manager: who led when."""
    from k8sbook.textbook import figures

    f = result.facts
    end = result.cluster.clock.now()
    t0 = f["killed_at"]
    spans: list[tuple[str, float, float, str, str]] = []
    points: list[tuple[str, float, str]] = []
    lanes = []
    for comp, short in (("kube-scheduler", "scheduler"), ("kube-controller-manager", "kcm")):
        old = f["holders_before"][comp].split("_")[0]
        new = f["holders_after"][comp].split("_")[0]
        took = f["took_over_at"][comp]
        lanes += [f"{short} {old}", f"{short} {new}"]
        spans += [(f"{short} {old}", 0.0, t0, "leader", "#326ce5"),
                  (f"{short} {old}", t0, end, "killed", "#c0392b"),
                  (f"{short} {new}", 0.0, took, "candidate", "#999999"),
                  (f"{short} {new}", took, end, "leader", "#326ce5")]
        points.append((f"{short} {new}", took, f"Lease taken after {took - t0:g} s"))
    return figures.timeline(lanes, spans, points, width=11.0,
                            title="Both leaders killed: the Leases change hands")
