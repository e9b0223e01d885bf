"""Chapter 15's runs: why the paths are shaped by scale.

The book's own code. Each function builds a cluster, lets the components do their work in
virtual time with the trace at the ``counts`` level (messages and wire bytes per path, verb and
resource: :mod:`k8sbook.core.trace`) and reports what the fabric counted:

* :func:`heartbeats`: kubelets renewing their Lease every 10 s and writing NodeStatus when it
  changes or every ``nodeStatusReportFrequency`` (5 min; KEP-589), against the same kubelets
  configured to report every 10 s, as every kubelet did before the Lease;
* :func:`watch_fanout`: how many etcd watches kube-apiserver holds while every kubelet,
  the scheduler and the controllers watch through it (the watch cache);
* :func:`feasible_nodes`: how many nodes kube-scheduler filters and scores per pod
  (``numFeasibleNodesToFind``) on clusters of fake nodes, as scheduler_perf builds them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from k8sbook.cluster import Cluster
from k8sbook.controlplane.scheduler.framework import num_feasible_nodes_to_find
from k8sbook.core.trace import COUNTS
from k8sbook.textbook import bench, figures
from k8sbook.textbook.scenarios import ScenarioResult, scenario

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.figure import Figure

CHAPTER = "15-scale-shapes-the-paths"
KUBELET_PATH = "kubelet->kube-apiserver"
ETCD_PATH = "kube-apiserver->etcd"


def _kubelets(nodes: int, seed: int, report_frequency: float | None) -> Cluster:
    cluster = Cluster(seed)
    cluster.trace.level = COUNTS
    for i in range(nodes):
        kubelet = cluster.add_kubelet(bench.node_name(i))
        if report_frequency is not None:
            kubelet.status_sync.report_frequency = report_frequency
        kubelet.start()
    cluster.run_for(60)  # registration and the first status writes are behind us
    cluster.trace.tallies.clear()
    return cluster


def heartbeats(nodes: int = 10, minutes: float = 10, *, seed: int = 0,
               report_frequency: float | None = None) -> dict[str, Any]:
    """Per node and minute: Lease renewals and NodeStatus writes (messages and bytes
    kubelet -> kube-apiserver), and the bytes kube-apiserver writes to etcd for each
    (``Txn`` on ``/registry/leases`` and ``/registry/minions``)."""
    cluster = _kubelets(nodes, seed, report_frequency)
    cluster.run_for(60 * minutes)
    per = nodes * minutes
    trace = cluster.trace

    def tally(path: str, verb: str, resource: str) -> list[int]:
        return trace.tallies.get((path, verb, resource), [0, 0])

    lease, status = tally(KUBELET_PATH, "UPDATE", "leases"), tally(KUBELET_PATH, "PATCH", "nodes/status")
    etcd_lease = tally(ETCD_PATH, "Txn", "/registry/leases")
    etcd_node = tally(ETCD_PATH, "Txn", "/registry/minions")
    return {"nodes": nodes, "minutes": minutes,
            "report_frequency_s": report_frequency or 300.0,
            "lease_updates_per_node_min": round(lease[0] / per, 2),
            "status_patches_per_node_min": round(status[0] / per, 2),
            "lease_bytes_per_update": lease[1] // max(lease[0], 1),
            "status_bytes_per_patch": status[1] // max(status[0], 1),
            "etcd_lease_bytes_per_write": etcd_lease[1] // max(etcd_lease[0], 1),
            "etcd_node_bytes_per_write": etcd_node[1] // max(etcd_node[0], 1),
            "etcd_heartbeat_bytes_per_node_min": round((etcd_lease[1] + etcd_node[1]) / per)}


def at_scale(run: dict[str, Any], nodes: int = 5000, *, node_object_bytes: int | None = None,
             leases: bool = True) -> dict[str, float]:
    """MB per minute that heartbeats write to etcd at ``nodes`` nodes, from a run's per-node
    rates (each kubelet's heartbeats are its own: the per-node rates do not depend on the
    size of the cluster). ``node_object_bytes`` replaces the model's Node size (KEP-589
    assumes 20 KB, ~30 KB with server-side apply); ``leases=False`` leaves the Lease
    renewals out, as before the Lease existed."""
    node_bytes = node_object_bytes or run["etcd_node_bytes_per_write"]
    status = run["status_patches_per_node_min"] * node_bytes * nodes / 1e6
    lease = run["lease_updates_per_node_min"] * run["etcd_lease_bytes_per_write"] * nodes / 1e6
    lease = lease if leases else 0.0
    return {"status_mb_per_min": round(status, 1), "lease_mb_per_min": round(lease, 1),
            "total_mb_per_min": round(status + lease, 1)}


def watch_fanout(nodes: int = 20, *, seed: int = 0) -> dict[str, Any]:
    """Client watches on kube-apiserver versus the etcd watches it holds for them."""
    cluster = Cluster(seed)
    cluster.trace.level = COUNTS
    for i in range(nodes):
        cluster.add_kubelet(bench.node_name(i)).start()
    cluster.add_scheduler().start()
    cluster.add_controller_manager().start()
    cluster.run_for(5)
    client = sum(v[0] for (path, verb, _), v in cluster.trace.tallies.items()
                 if verb == "WATCH" and path.endswith("->kube-apiserver"))
    kubelet = sum(v[0] for (path, verb, _), v in cluster.trace.tallies.items()
                  if verb == "WATCH" and path == KUBELET_PATH)
    # the watch caches opened their etcd watches when kube-apiserver started, one each
    return {"nodes": nodes, "client_watches": client, "kubelet_watches": kubelet,
            "etcd_watches": len(cluster.apiserver.caches)}


def feasible_nodes(nodes: int, pods: int = 20, *, seed: int = 0) -> dict[str, Any]:
    """Schedule ``pods`` scheduler_perf pods on ``nodes`` fake nodes; how many nodes each
    attempt scored (the feasible nodes found before the search stopped)."""
    cluster = Cluster(seed)
    cluster.trace.level = COUNTS
    admin = cluster.admin()
    for i in range(nodes):
        admin.create(bench.perf_node(bench.node_name(i)))
    sched = cluster.add_scheduler(leader_elect=False)
    sched.start()
    for i in range(pods):
        admin.create(bench.perf_pod(f"pod-{i:05d}"))
    cluster.run_for(2)
    scored = sorted({len(a.get("scores", {})) for a in sched.attempts})
    return {"nodes": nodes, "pods": pods, "bound": sum(
                1 for a in sched.attempts if a.get("result") == "bound"),
            "scored_per_pod": scored,
            "num_feasible_nodes_to_find": num_feasible_nodes_to_find(nodes)}


@scenario("scale-heartbeats", "Node heartbeats: Lease every 10 s, NodeStatus every 5 min",
          CHAPTER)
def heartbeats_scenario(seed: int = 0) -> ScenarioResult:
    """Three kubelets for five minutes: the paths the heartbeats use."""
    cluster = Cluster(seed)
    for i in range(3):
        cluster.add_kubelet(bench.node_name(i)).start()
    cluster.run_for(60)
    mark = cluster.trace.mark()
    cluster.run_for(300)
    messages = [m for m in cluster.trace.since(mark) if m.path in (KUBELET_PATH, ETCD_PATH)]
    facts = {"lease_updates": sum(1 for m in messages if m.verb == "UPDATE"
                                  and m.resource == "leases"),
             "status_patches": sum(1 for m in messages if m.verb == "PATCH"
                                   and m.resource == "nodes")}
    return ScenarioResult("scale-heartbeats", cluster, messages, facts)


def heartbeat_timeline(minutes: float = 11, *, seed: int = 0) -> Figure:
    """One kubelet's heartbeats on a timeline: every Lease renewal and every NodeStatus
    write it sends to kube-apiserver, read from the trace."""
    cluster = Cluster(seed)
    cluster.add_kubelet("node-a").start()
    cluster.run_for(60 * minutes)
    lanes = ["Lease UPDATE", "NodeStatus PATCH"]
    points = []
    for m in cluster.trace.filter(path=KUBELET_PATH):
        if m.verb == "UPDATE" and m.resource == "leases":
            points.append((lanes[0], m.t, ""))
        elif m.verb == "PATCH" and m.resource == "nodes/status":
            points.append((lanes[1], m.t, f"{m.t:.0f} s"))
    return figures.timeline(lanes, [], points,
                            title="node-a: a Lease every 10 s, its NodeStatus every 5 min")
