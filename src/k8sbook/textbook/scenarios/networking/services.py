"""Chapter 10, "Services": a Service, its EndpointSlices, kube-proxy's rules and packets.

The client pod's connections to a ClusterIP are dialled through the network fabric from the
pod, via its node: node-a's translator, which kube-proxy installed, runs each through the
rules kube-proxy rendered (``iptables-save`` text), so the packet is DNATed to one endpoint
(or REJECTed) and the backend pod answers with its hostname. Nothing here records on the
trace: the fabric does, on ``pod->pod``.
"""

from __future__ import annotations

from typing import Any

from k8sbook.client.http import HTTPResponse
from k8sbook.client.network import DialError
from k8sbook.node.kube_proxy import walk_iptables, walk_nftables
from k8sbook.textbook.scenarios import ScenarioResult, scenario
from k8sbook.textbook.scenarios.networking.common import (
    app_pod,
    client_pod,
    is_ready,
    last_walk,
    pod_get,
    pods_ready,
    service,
    slice_summary,
    spread,
    start_network,
    wait_until,
)


def _reply(r: HTTPResponse | DialError) -> str:
    """What the application saw: ``200 web-0``, or the dial error."""
    if isinstance(r, DialError):
        return str(r)
    return f"{r.status} {r.body}"


CH10 = "10-services"


@scenario("services", "A Service, its EndpointSlices, kube-proxy's rules and packets "
          "through them", CH10)
def services(seed: int = 0, *, web3_port_name: str = "web",
             delete_pod: str = "") -> ScenarioResult:
    """A NodePort Service ``web`` over three ready pods (a fourth matches its selector but
    names its port ``web`` instead of ``http``) and a Service ``ghost`` that selects nothing;
    a client pod connects to both; then ``web-2`` turns unready and leaves the rules.

    Chapter 10's exercises vary it: ``web3_port_name`` names web-3's port; with
    ``delete_pod`` that pod is deleted instead of web-2 failing its probe, and
    ``facts["slices_after"]`` is read while it terminates."""
    net = start_network(seed)
    cluster, admin = net.cluster, net.cluster.admin()
    mark = cluster.trace.mark()
    admin.create(service("web", selector={"app": "web"}, type_="NodePort",
                         ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    admin.create(service("ghost", selector={"app": "ghost"},
                         ports=[{"name": "http", "port": 80, "targetPort": 8080}]))
    placement = {"web-0": "node-a", "web-1": "node-b", "web-2": "node-a", "web-3": "node-b"}
    for name, node in placement.items():
        admin.create(app_pod(name, node, labels={"app": "web"},
                             port_name=web3_port_name if name == "web-3" else "http"))
    admin.create(client_pod())
    took = wait_until(cluster, lambda: pods_ready(net, [*placement, "client"]))
    cluster.settle(2.0)
    web = admin.get("services", "web", "default")
    ghost = admin.get("services", "ghost", "default")
    ip, node_port = web["spec"]["clusterIP"], web["spec"]["ports"][0]["nodePort"]
    client = net.pod("client")
    proxy_a, proxy_b = net.proxies["node-a"], net.proxies["node-b"]
    slices_before = slice_summary(net, "web")
    rules_before = proxy_a.iptables_save
    nft_before = proxy_a.nft_ruleset
    pod_ip = client["status"]["podIP"]
    # three connections from the client pod to the ClusterIP: the fabric runs each through
    # node-a's rules (kube-proxy's), which DNAT it to one endpoint; the pod there answers
    first, first_walks = [], []
    for _ in range(3):
        first.append(pod_get(net, client, ip, 80))
        first_walks.append(last_walk(proxy_a))
    spread_before = spread(rules_before, src=pod_ip, dst=ip, dport=80, n=600, seed=seed,
                           local_ips=[proxy_a.node_ip])
    refused = pod_get(net, client, ghost["spec"]["clusterIP"], 80)
    refused_walk = last_walk(proxy_a)
    nodeport = walk_iptables(proxy_b.iptables_save, src="192.168.0.100", dst=proxy_b.node_ip,
                             dport=node_port, local_ips=[proxy_b.node_ip], seed=seed)
    nft_walk = walk_nftables(nft_before, src=pod_ip, dst=ip, dport=80,
                             local_ips=[proxy_a.node_ip], seed=seed)
    nft_refused = walk_nftables(nft_before, src=pod_ip, dst=ghost["spec"]["clusterIP"],
                                dport=80, local_ips=[proxy_a.node_ip], seed=seed)
    # web-2's application starts failing its readiness probe
    t_unhealthy = cluster.clock.now()
    victim = net.pod(delete_pod or "web-2")
    seen: list[dict[str, Any]] = []
    if delete_pod:  # watch the slices as `kubectl get endpointslices -w` would
        watcher = cluster.client("kubectl").watch(
            "endpointslices", lambda e: seen.append(e) if e else None, "default")
        cluster.settle(0.5)
        admin.delete("pods", delete_pod, "default")
        took_unready = wait_until(
            cluster, lambda: victim["status"]["podIP"] not in proxy_a.iptables_save, timeout=10)
        watcher.stop()
    else:
        net.kubelet_of(victim).set_app_healthy("default", "web-2", False)
        took_unready = wait_until(cluster, lambda: not is_ready(net.pod("web-2")), timeout=120)
    wait_until(cluster, lambda: victim["status"]["podIP"] not in proxy_a.iptables_save,
               timeout=10)
    t_rules = cluster.clock.now()
    cluster.settle(1.0)
    rules_after = proxy_a.iptables_save
    after = [pod_get(net, client, ip, 80) for _ in range(6)]
    spread_after = spread(rules_after, src=pod_ip, dst=ip, dport=80, n=600,
                          seed=seed, local_ips=[proxy_a.node_ip])
    messages = cluster.trace.since(mark)
    pods = {p: victim if p == delete_pod else net.pod(p) for p in [*placement, "client"]}
    behind = {pods[p]["status"]["podIP"]: p for p in pods}
    facts = {
        "cluster_ip": ip, "node_port": node_port, "ghost_ip": ghost["spec"]["clusterIP"],
        "pod_ips": {p: pods[p]["status"]["podIP"] for p in sorted(pods)},
        "first_backends": [behind[w.destination.rsplit(":", 1)[0]] for w in first_walks],
        "ready_after": took, "slices_before": slices_before,
        "slices_after": slice_summary(net, "web"), "ghost_slices": slice_summary(net, "ghost"),
        "iptables_before": rules_before, "iptables_after": rules_after,
        "nftables_before": nft_before,
        "first_connections": [w.verdict for w in first_walks],
        "first_replies": [_reply(r) for r in first],
        "first_walk": first_walks[0].steps, "spread_before": spread_before,
        "spread_after": spread_after, "refused": refused_walk.verdict,
        "refused_error": _reply(refused),
        "refused_walk": refused_walk.steps, "nodeport_walk": nodeport.steps,
        "nodeport_verdict": nodeport.verdict, "nodeport_masquerade": nodeport.packet.masquerade,
        "nft_walk": nft_walk.steps, "nft_verdict": nft_walk.verdict,
        "nft_refused_walk": nft_refused.steps, "nft_refused": nft_refused.verdict,
        "unready_after": took_unready, "rules_updated_after": round(t_rules - t_unhealthy, 6),
        "after_replies": [_reply(r) for r in after],
        "proxy_syncs": {n: p.syncs for n, p in sorted(net.proxies.items())},
        "endpointslice_log": net.endpointslices.log,
    }
    if delete_pod:  # the victim's endpoint in each slice event the watch delivered
        facts["victim_endpoint_events"] = [
            (ev["type"], ep["conditions"]) for ev in seen
            for ep in ev["object"].get("endpoints") or []
            if ep.get("targetRef", {}).get("name") == delete_pod and ev["type"] != "ADDED"]
    cluster.components["net"] = net
    return ScenarioResult("services", cluster, messages, facts)



def service_story(result: ScenarioResult) -> list[Any]:
    """Chapter 10's sequence: the Service is created, the controller writes its slices,
    kube-proxy on node-a hears of them, then the client pod's connections (the fabric
    records them; a REJECTed one names the ClusterIP it was for, no component)."""
    msgs = [m for m in result.messages
            if (m.src == "kubectl" and m.verb == "CREATE" and m.resource == "services"
                and m.name == "default/web")
            or (m.dst == "kube-controller-manager" and m.resource in ("services",)
                and m.name == "default/web")
            or (m.src == "kube-controller-manager" and m.resource == "endpointslices"
                and m.verb in ("CREATE", "UPDATE") and m.name in ("default",)
                and m.verb == "CREATE")
            or (m.src == "kube-controller-manager" and m.resource == "endpointslices"
                and m.verb == "UPDATE" and "web" in m.name)
            or (m.dst == "kube-proxy/node-a" and m.resource in ("services", "endpointslices")
                and "web" in m.name)
            or m.src == "pod/client"]
    return msgs[:12] + [m for m in msgs[12:] if m.src == "pod/client"]


def unready_story(result: ScenarioResult) -> list[Any]:
    """Chapter 10's second sequence: web-2 fails its probes and leaves the rules."""
    t0 = next(m.t for m in result.messages if m.path == "kubelet->pod" and "web-2" in m.dst
              and "503" in m.result)
    return [m for m in result.messages if m.t >= t0 and (
        (m.path == "kubelet->pod" and m.dst == "pod/web-2")
        or (m.src.startswith("kubelet/") and m.resource == "pods/status" and "web-2" in m.name)
        or (m.dst == "kube-controller-manager" and m.resource == "pods" and "web-2" in m.name)
        or (m.src == "kube-controller-manager" and m.resource == "endpointslices"
            and m.verb == "UPDATE")
        or (m.dst == "kube-proxy/node-a" and m.resource == "endpointslices")
        or m.src == "pod/client")]



def iptables_excerpt(ruleset: str, services: tuple[str, ...]) -> str:
    """The ``iptables-save`` rules that a packet for the named Services (``ns/name``) can meet:
    every rule whose comment names one of them, and every rule of a chain those rules jump to
    (the ``KUBE-EXT-`` chain's unlabelled jump, for instance), each under its table's name."""
    rules = [line for line in ruleset.splitlines() if line.startswith(("*", "-A "))]
    wanted = {f"{service}:" for service in services}
    chains: set[str] = set()
    for line in rules:
        if any(w in line for w in wanted) and " -j " in line:
            chains.add(line.rsplit(" -j ", 1)[1].split()[0])
    out: list[str] = []
    for line in rules:
        if line.startswith("*") or any(w in line for w in wanted) or line.split()[1] in chains:
            out.append(line)
    # a table none of whose rules was kept is not shown
    return "\n".join(line for i, line in enumerate(out)
                     if not (line.startswith("*") and (i + 1 == len(out)
                                                       or out[i + 1].startswith("*"))))


def nft_excerpt(ruleset: str, services: tuple[str, ...]) -> str:
    """The table's dispatch rules and the sections of the named Services (``ns/name``)."""
    lines = ruleset.splitlines()
    out = [line for line in lines if line.startswith(("add table", ("add rule ip kube-proxy "
                                                      "services "), ("add rule ip kube-proxy "
                                                      "nat-prerouting"), ("add rule ip kube-proxy "
                                                      "reject-chain")))]
    keep = False
    for line in lines:
        if line.startswith("# "):
            keep = line[2:] in services
        if keep:
            out.append(line)
    return "\n".join(out)
