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
  (``numFeasibleNodesToFind``) on clusters of fake nodes, as scheduler_perf builds them;
* :func:`endpoint_update`: what one endpoint's change makes kube-apiserver send every
  kube-proxy, for one Endpoints object and for EndpointSlices (KEP-752), and
  :func:`kep752_comparison`, the KEP's table beside the model's;
* :func:`zone_outage`: the node lifecycle controller's NoExecute taints and the pods the
  taint eviction controller deletes when a zone, part of one, or the whole cluster goes dark.

The module is over 400 lines because it holds the runs of all five of the chapter's sections,
each a few functions that share the cluster set-up.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from k8sbook.api import objects
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


# -- a zone outage: the node lifecycle controller's eviction rates ----------------------------
ZONE_LABEL, REGION_LABEL = "topology.kubernetes.io/zone", "topology.kubernetes.io/region"
#: what goes dark in :func:`zone_outage`
OUTAGES = ("zone", "partial", "cluster")


def zone_outage(outage: str = "zone", *, zones: int = 3,
                nodes_per_zone: int | tuple[int, ...] = 5,
                dark: int | None = None, after: float = 420.0,
                seed: int = 0) -> dict[str, Any]:
    """Nodes in ``zones`` zones (``topology.kubernetes.io/zone`` zone-a, zone-b ...; each of
    ``nodes_per_zone`` nodes, or as many as its entry in a tuple of sizes), one pod
    on each, kube-controller-manager with the node lifecycle and taint eviction controllers.
    At 60 s the network cuts kubelets off (``outage``): every node of zone-a (``"zone"``),
    the first ``dark`` nodes of zone-a (``"partial"``, default 3) or every node
    (``"cluster"``). Reports, ``after`` seconds on, when each node got the NoExecute taint
    and each pod was deleted (the controllers' own logs), each zone's state changes and the
    rates read off the taint times."""
    if outage not in OUTAGES:
        raise ValueError(f"outage must be one of {OUTAGES}")
    cluster = Cluster(seed)
    cluster.trace.level = COUNTS
    kcm = cluster.add_controller_manager(controllers=("nodelifecycle", "tainteviction"))
    kcm.start()
    cluster.run_for(1)
    names: dict[str, list[str]] = {}
    sizes = nodes_per_zone if isinstance(nodes_per_zone, tuple) else (nodes_per_zone,) * zones
    for z, size in enumerate(sizes):
        zone = f"zone-{chr(ord('a') + z)}"
        for i in range(size):
            name = f"{zone}-{i:02d}"
            names.setdefault(zone, []).append(name)
            cluster.add_kubelet(name, labels={ZONE_LABEL: zone,
                                              REGION_LABEL: "region-1"}).start()
    cluster.run_for(19)
    admin = cluster.admin()
    for zone in sorted(names):
        for name in names[zone]:
            admin.create(objects.pod(f"web-{name}", node_name=name))
    cluster.clock.run_until(60)
    if outage == "zone":
        cut = names["zone-a"]
    elif outage == "partial":
        cut = names["zone-a"][:3 if dark is None else dark]
    else:
        cut = [n for zone in sorted(names) for n in names[zone]]
    for name in cut:
        cluster.network.isolate(f"kubelet/{name}")
    cluster.clock.run_until(60 + after)
    lifecycle = kcm.controllers["nodelifecycle"]
    eviction = kcm.controllers["tainteviction"]
    tainted = [(round(t, 3), node) for t, node, what in lifecycle.log
               if what.startswith("taint ")]
    unknown = [(round(t, 3), node) for t, node, what in lifecycle.log if what == "Ready=Unknown"]
    deleted = [(round(t, 3), key.split("/", 1)[1].removeprefix("web-"))
               for t, key, what in eviction.log if what == "deleted"]
    by_zone: dict[str, list[float]] = {}
    for t, node in tainted:
        by_zone.setdefault(node.rsplit("-", 1)[0], []).append(t)
    gaps = {zone: sorted({round(b - a, 3) for a, b in itertools.pairwise(times)})
            for zone, times in sorted(by_zone.items())}
    return {"outage": outage, "zones": len(sizes), "nodes_per_zone": list(sizes),
            "dark": len(cut), "cut_at": 60.0, "until": 60.0 + after,
            "unknown": unknown, "tainted": tainted, "deleted": deleted,
            "seconds_between_taints": gaps,
            "zone_states": [(round(t, 3), zone, state, qps)
                            for t, zone, state, qps in lifecycle.zone_log if t > 60],
            "rate_per_s": {zone: qps for _, zone, _, qps in lifecycle.zone_log},
            "master_disruption": any(what.startswith("all nodes not Ready")
                                     for _, _, what in lifecycle.log)}


def zone_outage_timeline(runs: dict[str, dict[str, Any]]) -> Figure:
    """Two lanes per run: a marker when a node got the NoExecute taint, over a grey span
    while the nodes are cut off, and a marker when its pod was deleted."""
    lanes = []
    spans: list[tuple[str, float, float, str, str]] = []
    points: list[tuple[str, float, str]] = []
    for label, run_ in runs.items():
        taint_lane, delete_lane = f"{label}: taints", f"{label}: pods deleted"
        lanes += [taint_lane, delete_lane]
        spans.append((taint_lane, run_["cut_at"], run_["until"], "", "#e5e7e9"))
        for t, _ in run_["tainted"]:
            points.append((taint_lane, t, ""))
        for t, _ in run_["deleted"]:
            points.append((delete_lane, t, ""))
    return figures.timeline(lanes, spans, points,
                            title="NoExecute taints (grey: the nodes are cut off) and pod "
                                  "deletions")


# -- KEP-752: what one endpoint's change sends to every kube-proxy -----------------------------
PROXY_PATH = "kube-proxy->kube-apiserver"
CONTROLLER_PATH = "kube-controller-manager->kube-apiserver"
#: the container port the Service targets, and the readiness probe on it
APP_PORT = 8080


def _app_pod(name: str, node: str) -> dict[str, Any]:
    from k8sbook.node.kubelet.prober import http_probe

    container = objects.container("app", "nginx:1.27", ports=[APP_PORT])
    container["readinessProbe"] = http_probe(APP_PORT)
    return objects.pod(name, labels={"app": "web"}, containers=[container], node_name=node)


def endpoint_update(endpoints: int = 200, nodes: int = 50, *, per_slice: int = 100,
                    seed: int = 0) -> dict[str, Any]:
    """``endpoints`` Pods spread over ``nodes`` nodes (real kubelets, a readiness probe on
    each Pod), then a Service selecting them; kube-controller-manager's Endpoints controller
    and its EndpointSlice controller (``--max-endpoints-per-slice=per_slice``), and on every
    node a kube-proxy watching Endpoints and EndpointSlices (what kube-proxy watched before
    EndpointSlices, and what it watches now). Then one endpoint changes: the network refuses
    the first Pod's port, its readiness probe fails three times, the kubelet reports it not
    Ready, and each controller rewrites what holds it. Reports what kube-apiserver's watches
    sent the kube-proxies for that one change, per resource (the trace's counts), and what
    the controllers wrote."""
    from k8sbook.client.network import Address
    from k8sbook.controlplane.controllers import endpointslice

    cluster = Cluster(seed)
    cluster.trace.level = COUNTS
    kcm = cluster.add_controller_manager(controllers=("endpoint",))
    kcm.start()
    endpointslice.start(cluster.service_account_client("kube-controller-manager", "kube-system",
                                                       endpointslice.NAME),
                        cluster.client("kube-controller-manager"),
                        max_endpoints_per_slice=per_slice)
    names = [bench.node_name(i) for i in range(nodes)]
    for name in names:
        cluster.add_kubelet(name).start()
    cluster.run_for(2)
    admin = cluster.admin()
    for i in range(endpoints):
        admin.create(_app_pod(f"web-{i:05d}", names[i % nodes]))
    cluster.run_for(30)  # started and probed Ready
    # the Service comes last, so each controller sees every Pod in its first sync and packs
    # full slices (Pods that become Ready one by one would leave the slices as they filled)
    admin.create(objects.service("web", selector={"app": "web"},
                                 ports=[{"name": "http", "port": 80, "targetPort": APP_PORT}]))
    cluster.run_for(2)
    for name in names:
        proxy = cluster.client(f"kube-proxy/{name}")
        for resource in ("endpoints", "endpointslices"):
            proxy.watch(resource, lambda event: None)
    cluster.run_for(1)
    before = admin.get("endpoints", "web", "default")
    cluster.trace.tallies.clear()
    first = admin.get("pods", "web-00000", "default")
    cluster.network.refuse(Address(first["status"]["podIP"], APP_PORT))
    cluster.run_for(40)  # three failed probes, 10 s apart; the kubelet's status; the rewrites
    after = admin.get("endpoints", "web", "default")
    tallies = cluster.trace.tallies

    def sent(resource: str) -> dict[str, int]:
        events, nbytes = tallies.get((PROXY_PATH, "MODIFIED", resource), [0, 0])
        return {"watch_events": events, "bytes": nbytes,
                "bytes_per_event": nbytes // max(events, 1)}

    def written(resource: str) -> int:
        return tallies.get((CONTROLLER_PATH, "UPDATE", resource), [0, 0])[0]

    slices = [s for s in admin.list("endpointslices", "default")["items"]
              if s["metadata"]["labels"].get("kubernetes.io/service-name") == "web"]
    changed = next(s for s in slices
                   if any(e["targetRef"]["name"] == "web-00000" for e in s["endpoints"]))

    def addresses(ep: dict[str, Any], field: str) -> int:
        return sum(len(s.get(field) or []) for s in ep.get("subsets") or [])

    return {"endpoints": endpoints, "nodes": nodes, "watchers": nodes,
            "per_slice": per_slice, "slices": len(slices),
            "endpoints_object": {**sent("endpoints"), "writes": written("endpoints"),
                                 "protobuf_bytes_per_event": protobuf_event_bytes(after),
                                 "addresses": addresses(after, "addresses"),
                                 "not_ready_addresses": addresses(after, "notReadyAddresses"),
                                 "ready_before": addresses(before, "addresses"),
                                 "annotations": sorted(after["metadata"].get("annotations")
                                                        or {})},
            "endpointslices": {**sent("endpointslices"), "writes": written("endpointslices"),
                               "protobuf_bytes_per_event": protobuf_event_bytes(changed),
                               "endpoints_in_changed_slice": len(changed["endpoints"])}}


def protobuf_event_bytes(obj: dict[str, Any]) -> int:
    """The size of a MODIFIED watch event for ``obj`` in kube-proxy's content type
    (``application/vnd.kubernetes.protobuf``, its ``clientConnection.contentType`` default):
    one length-prefixed ``WatchEvent`` frame (:func:`k8sbook.api.protobuf.watch_frame`)."""
    from k8sbook.api import protobuf

    return len(protobuf.watch_frame({"type": "MODIFIED", "object": obj}))


#: KEP-752's "Sample Case 1: 20,000 endpoints, 5,000 nodes", "Single Endpoint Update": the
#: object sent, the watch events and the bytes transmitted, for one Endpoints object and for
#: EndpointSlices of 100 and of 1 endpoint
KEP752_SINGLE_UPDATE: dict[str, Any] = {"endpoints": 20000, "nodes": 5000, "rows": {
    "Endpoints": {"object_bytes": 2.0e6, "watch_events": 5000, "total_bytes": 10e9},
    "EndpointSlices of 100": {"object_bytes": 10e3, "watch_events": 5000, "total_bytes": 50e6},
    "EndpointSlices of 1": {"object_bytes": 1e3, "watch_events": 5000, "total_bytes": 5e6}}}


def endpoints_bytes_at(small: dict[str, Any], large: dict[str, Any], addresses: int, *,
                       field: str = "bytes_per_event") -> int:
    """The Endpoints watch event's size at ``addresses`` addresses, on the line through two
    measured runs (the size grows by the same bytes for each address: each is one more
    ``{ip, nodeName, targetRef}``)."""
    a, b = small["endpoints_object"], large["endpoints_object"]
    na, nb = a["addresses"] + a["not_ready_addresses"], b["addresses"] + b["not_ready_addresses"]
    per = (b[field] - a[field]) / (nb - na)
    return round(a[field] + per * (addresses - na))


def kep752_comparison(slices_100: dict[str, Any], slices_1: dict[str, Any],
                      capped: dict[str, Any], *, endpoints: int = 20000,
                      watchers: int = 5000) -> list[dict[str, Any]]:
    """KEP-752's single-endpoint-update table beside the model's: per row the bytes of the
    watch event each kube-proxy gets (JSON as the trace counts it, and protobuf, kube-proxy's
    content type), the watch events (one per watcher: the runs show each watcher gets
    exactly one) and the total at ``watchers`` watchers. Endpoints are given as the KEP
    counted them, before the 1000-address cap (the size at ``endpoints`` addresses, on the
    line through the run ``slices_100`` and the over-capacity run ``capped``), and as the
    controller writes them today (truncated: ``capped``'s own size)."""
    def row(name: str, json_b: int, proto_b: int, events_per_watcher: float,
            kep: dict[str, float] | None) -> dict[str, Any]:
        events = round(events_per_watcher * watchers)
        out: dict[str, Any] = {"row": name, "json_bytes": json_b, "protobuf_bytes": proto_b,
                               "watch_events": events,
                               "total_json_bytes": json_b * events,
                               "total_protobuf_bytes": proto_b * events}
        if kep:
            out["kep_object_bytes"] = kep["object_bytes"]
            out["kep_total_bytes"] = kep["total_bytes"]
            out["protobuf_vs_kep"] = round(proto_b / kep["object_bytes"] - 1, 2)
        return out

    kep = KEP752_SINGLE_UPDATE["rows"]
    ep_json = endpoints_bytes_at(slices_100, capped, endpoints)
    ep_proto = endpoints_bytes_at(slices_100, capped, endpoints,
                                  field="protobuf_bytes_per_event")
    per = {name: run_[res]["watch_events"] / run_["watchers"]
           for name, run_, res in (("ep", slices_100, "endpoints_object"),
                                   ("s100", slices_100, "endpointslices"),
                                   ("s1", slices_1, "endpointslices"))}
    cap = capped["endpoints_object"]
    return [row(f"Endpoints, {endpoints:,} addresses (before the cap)", ep_json, ep_proto,
                per["ep"], kep["Endpoints"]),
            row("Endpoints, truncated to 1,000 (today)", cap["bytes_per_event"],
                cap["protobuf_bytes_per_event"], per["ep"], None),
            row("EndpointSlices of 100", slices_100["endpointslices"]["bytes_per_event"],
                slices_100["endpointslices"]["protobuf_bytes_per_event"], per["s100"],
                kep["EndpointSlices of 100"]),
            row("EndpointSlices of 1", slices_1["endpointslices"]["bytes_per_event"],
                slices_1["endpointslices"]["protobuf_bytes_per_event"], per["s1"],
                kep["EndpointSlices of 1"])]
