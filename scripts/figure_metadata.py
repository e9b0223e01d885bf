"""Give every figure cell of the notebooks its caption, name and alt text (MyST-NB metadata).

Usage: ``python scripts/figure_metadata.py`` (idempotent; run after adding a figure here).

MyST-NB reads ``metadata.mystnb.figure`` (``caption``, ``name``: a figure with a caption,
numbered here "Figure <chapter>.<n>" from the notebook's file name, referable as
``{ref}`fig-...```) and ``metadata.mystnb.image`` (``alt``; ``width``,
which also makes Sphinx link the image to its full-size SVG, so a reader can open and zoom
it). A figure cell is a code cell whose source calls ``figures.show(``; each one must be listed
in :data:`FIGURES` (by notebook and the first words of its source), or this script fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent

# notebook -> list of (a snippet of the cell's source, name, caption, alt text), in order
FIGURES: dict[str, list[tuple[str, str, str, str]]] = {
    "01-the-map": [
        ("atlas.real_map(", "fig-map-real",
         ("Every communication path of a current cluster, drawn from the side that opens the "
         "connection to the side that accepts it, coloured by plane; labels are ports."),
         ("Graph of Kubernetes components. Almost every arrow points into kube-apiserver; "
         "only kube-apiserver reaches etcd; the kubelet drives the container runtime, which "
         "drives the CNI plugin and the OCI runtime; only the cloud-controller-manager reaches "
         "the cloud API.")),
        ("atlas.seed_map(", "fig-map-seed",
         ("The seed's graph: the connections its claims assert. Grey edges exist; red dashed "
         "edges do not, or not as described. Labels are claim ids."),
         ("Graph of the connections asserted by the seed page, with its wrong edges drawn red "
         "and dashed, labelled with the ids of the claims that assert them.")),
    ],
    "02-the-hub": [
        ("write.messages", "fig-hub-create",
         ("A Pod is created, watched and bound: every component talks only to kube-apiserver, "
         "and only kube-apiserver talks to etcd."),
         ("Sequence diagram: kubectl creates a Pod; kube-apiserver writes it to etcd and sends "
         "watch events to the scheduler and the controller manager; the scheduler posts a "
         "binding.")),
        ("occ.messages", "fig-hub-conflict",
         ("Two writers, one resourceVersion: the second update, based on a stale version, "
         "is refused with 409 Conflict."),
         ("Sequence diagram: two kubectl clients read the same object and update it; the first "
         "update succeeds, the second is answered 409 Conflict.")),
        ("relist_timeline(", "fig-hub-relist",
         ("A watch that falls too far behind: etcd compacts, the watch gets 410 Gone, and the "
         "reflector lists again."),
         ("Timeline with lanes for the connection, the reflector and etcd, showing the watch, "
         "the compaction, the 410 Gone answer and the relist.")),
    ],
    "03-controllers": [
        ("api_messages(rs)", "fig-controllers-replicaset",
         ("A ReplicaSet of 3, scaled to 1: the controller manager watches and creates, then "
         "deletes, Pods through kube-apiserver."),
         ("Sequence diagram: kubectl creates a ReplicaSet; the controller manager, notified by "
         "watch events, creates three Pods; after the scale-down it deletes two.")),
        ("leader_timeline(", "fig-controllers-leader",
         ("Leader election with a Lease: one controller manager holds the lease and renews "
         "it; when it stops, the other takes over after the lease expires."),
         ("Timeline of two controller-manager instances: the leader's terms, its renewals, "
         "and the takeover by the other instance.")),
        ("deletion_messages(gc)", "fig-controllers-garbage-collection",
         ("A foreground deletion: kubectl's DELETE only marks the Deployment; the garbage "
          "collector, woken by its watches, deletes the ReplicaSet and Pods, then removes the "
          "finalizers."),
         ("Sequence diagram: kubectl deletes a Deployment with propagation Foreground; the "
          "controller manager receives watch events, looks objects up with GETs, deletes the "
          "ReplicaSet and its two Pods and patches away the foregroundDeletion finalizers, "
          "after which the apiserver deletes each object.")),
    ],
    "04-scheduling": [
        ("api_messages(s)", "fig-scheduling-sequence",
         "Two pods, four nodes: one pod is bound at once, the other only after a node joins.",
         ("Sequence diagram: the scheduler watches two new pods, binds the first, and binds the "
         "second after a new node is registered.")),
        ("queue_timeline(", "fig-scheduling-queue",
         ("The unschedulable pod in the scheduling queue: attempts, back-off, and the node "
         "event that moves it back to the active queue."),
         "Timeline with lanes for the queue, the scheduling attempts and the nodes."),
    ],
    "05-rescheduling-is-eviction": [
        ("atlas.seed_map(", "fig-rescheduling-seed",
         "The seed's rescheduler edges (claims B12 to B14).",
         "Graph of the seed's rescheduler connections, with the wrong ones red and dashed."),
        ("eviction_story(r)", "fig-rescheduling-eviction",
         ("Evict, refuse, allow, replace, reschedule: the descheduler asks kube-apiserver to "
         "evict; a PodDisruptionBudget refuses with 429 until it allows; the ReplicaSet "
         "replaces the pod and the scheduler binds the new one."),
         ("Sequence diagram: the descheduler posts evictions; the first is refused with 429, a "
         "later one succeeds; the controller manager creates a replacement pod and the "
         "scheduler binds it.")),
        ("api_messages(p, only", "fig-rescheduling-preemption",
         "Preemption: the pod of priority class critical displaces a batch pod.",
         ("Sequence diagram: the scheduler deletes the lower-priority batch pod, nominates a "
         "node for the critical pod, and binds it.")),
    ],
    "06-the-cloud": [
        ("path_edges(c)", "fig-cloud-paths",
         ("The paths the cloud scenario used, labelled with message counts: only the "
         "cloud-controller-manager reaches the cloud."),
         ("Graph: every component talks to kube-apiserver; a single arrow goes from the "
         "cloud-controller-manager to the cloud API.")),
        ("api_messages(c, only", "fig-cloud-sequence",
         ("Node initialisation, a route and a load balancer: the cloud-controller-manager "
         "watches through kube-apiserver and calls the cloud API."),
         ("Sequence diagram between the scheduler, kube-apiserver, the cloud-controller-manager "
         "and the cloud API: the node's taint is removed after initialisation, then a route "
         "and a load balancer are created.")),
        ("atlas.seed_map(", "fig-cloud-seed",
         "The seed's cloud edge (claim B16).",
         "Graph of the seed's single cloud connection."),
    ],
    "07-the-kubelet-pulls": [
        ("api_side", "fig-kubelet-registers",
         ("A kubelet registers its Node, watches for its pods, and reports their status: "
         "every connection is opened by the kubelet."),
         ("Sequence diagram: the kubelet creates its Node, lists and watches pods bound to it, "
         "and patches pod status; kube-apiserver only answers.")),
        ("Heartbeats of a quiet node", "fig-kubelet-heartbeats",
         ("Heartbeats of a quiet node: the Lease is renewed every 10 s, the NodeStatus only "
         "when it changes or every 5 minutes."),
         "Timeline with two lanes: frequent Lease renewals and rare NodeStatus writes."),
        ("unreachable_timeline(", "fig-kubelet-unreachable",
         ("A node goes silent: the Node becomes Unknown, the unreachable taint is added, and "
         "the pod is evicted after its toleration runs out."),
         ("Timeline with lanes for the kubelet, the Node's Ready condition, the taint and "
         "the pod web.")),
        ("back.messages", "fig-kubelet-streams",
         ("kubectl logs, exec and port-forward: kube-apiserver opens the connection to the "
         "kubelet, which streams from the container runtime."),
         ("Sequence diagram: for logs, exec and port-forward, kubectl calls kube-apiserver, "
         "which dials the kubelet, which calls the container runtime.")),
        ("proxied.messages", "fig-kubelet-proxy",
         "pods/proxy: kube-apiserver dials the pod itself.",
         ("Sequence diagram: kubectl requests pods/proxy; kube-apiserver opens a connection "
         "to the pod and relays its answer.")),
        ("inside.messages", "fig-kubelet-token",
         ("A bound service account token for the pod, then the pod's own requests to "
         "kube-apiserver."),
         ("Sequence diagram: the kubelet requests a token for the pod's service account; the "
         "pod then calls kube-apiserver with it.")),
    ],
    "08-inside-the-node": [
        ("node_local", "fig-node-start",
         ("Starting a two-container pod: the kubelet's CRI calls, and the runtime's calls to "
         "the CNI plugin and the OCI runtime (the once-a-second CRI polls left out)."),
         ("Sequence diagram: RunPodSandbox, CNI ADD, OCI create and start, then for each "
         "container PullImage, CreateContainer and StartContainer.")),
        ("crashloop_timeline(", "fig-node-crashloop",
         ("CrashLoopBackOff: each restart waits twice as long as the one before, up to five "
         "minutes."),
         "Timeline of one container: short runs separated by back-offs that double."),
        ("csi.messages", "fig-node-csi",
         "A CSI volume is staged and published before the sandbox starts.",
         ("Sequence diagram: the kubelet calls NodeStageVolume and NodePublishVolume on the "
         "CSI node plugin, then RunPodSandbox on the container runtime.")),
    ],
    "10-services": [
        ("net.service_story(run)", "fig-services-story",
         ("A Service comes to life: the EndpointSlice controller, kube-proxy and the kubelet "
         "all learn about it through watches on kube-apiserver."),
         ("Sequence diagram: kubectl creates a Service; the controller manager writes its "
         "EndpointSlice; kube-proxy receives both by watch and programs its rules.")),
        ("net.unready_story(run)", "fig-services-unready",
         ("web-2 becomes unready and leaves the rules: the kubelet reports the condition, the "
         "EndpointSlice is updated, kube-proxy rewrites its rules."),
         ("Sequence diagram: the kubelet patches pod status to not ready; the controller "
         "manager updates the EndpointSlice; kube-proxy gets the change by watch.")),
        ("net.paths_graph(run", "fig-services-paths",
         "The paths the Services scenario used, labelled with message counts.",
         ("Graph: kube-proxy, the kubelet and the controller manager each talk to "
         "kube-apiserver; no component talks to another directly.")),
    ],
    "11-cluster-dns": [
        ("net.dns_story(run)", "fig-dns-story",
         ("CoreDNS watches Services and EndpointSlices, then answers the client's queries "
         "from memory."),
         ("Sequence diagram: CoreDNS lists and watches Services and EndpointSlices on "
         "kube-apiserver; a client pod sends DNS queries to CoreDNS and gets answers, "
         "including NXDOMAIN for a name that does not exist.")),
        ("net.paths_graph(run", "fig-dns-paths",
         "The paths the cluster DNS scenario used, labelled with message counts.",
         "Graph: CoreDNS talks to kube-apiserver; the pod talks to CoreDNS on port 53."),
    ],
    "12-ingress": [
        ("net.ingress_story(run)", "fig-ingress-story",
         ("The ingress controller watches Ingresses and EndpointSlices, then proxies client "
         "requests straight to the pods."),
         ("Sequence diagram: the ingress controller watches kube-apiserver; a client's HTTP "
         "request goes to the controller, which forwards it to a pod's address.")),
        ("net.paths_graph(run", "fig-ingress-paths",
         "The paths the Ingress scenario used, labelled with message counts.",
         ("Graph: the ingress controller talks to kube-apiserver and to the pods; the client "
         "talks only to the ingress controller.")),
    ],
    "13-who-is-calling": [
        ("identity.pki_figure()", "fig-identity-pki",
         ("The PKI kubeadm builds: the cluster CA signs the apiserver's serving certificate and "
          "every client certificate the apiserver trusts; etcd and the aggregation layer have "
          "CAs of their own."),
         ("Graph: the cluster CA points to the apiserver, apiserver-kubelet-client, admin.conf, "
          "controller-manager.conf, scheduler.conf and the kubelet client certificate; the etcd "
          "CA to etcd's certificates and apiserver-etcd-client; the front-proxy CA to "
          "front-proxy-client.")),
        ("boot.messages", "fig-identity-bootstrap",
         ("TLS bootstrapping: the kubelet creates a CSR with its bootstrap token; the controller "
          "manager approves it after a SubjectAccessReview and signs it; the kubelet then "
          "registers its Node with the new certificate."),
         ("Sequence diagram between the kubelet, kube-apiserver and kube-controller-manager: "
          "CREATE certificatesigningrequests, watch events, CREATE subjectaccessreviews, UPDATE "
          "approval, UPDATE status, then CREATE nodes.")),
        ("serve.messages", "fig-identity-serving",
         ("A serving certificate: the kubelet's CSR stays pending and the apiserver's dial of "
          "port 10250 fails in the handshake; a user without approve on the signer is refused; "
          "the administrator approves, the controller manager signs, and the same dial "
          "succeeds. At rotation a new CSR is created, pending again."),
         ("Sequence diagram between the kubelet, kube-apiserver, kubectl and "
          "kube-controller-manager: CREATE certificatesigningrequests by the kubelet; GET "
          "pods/log and a failed GET /containerLogs with remote error tls internal error; "
          "UPDATE approval refused with 403, then UPDATE approval and UPDATE status; GET "
          "pods/log and GET /containerLogs with 200; a later CREATE certificatesigningrequests.")),
        ("rot.messages", "fig-identity-rotation",
         ("A client-certificate rotation: the kubelet creates its renewal CSR and waits on a "
          "watch; the controller manager approves it after a SubjectAccessReview and signs it; "
          "when the certificate arrives the kubelet's open watches are closed and opened "
          "again, now presenting the new certificate."),
         ("Sequence diagram between the kubelet, kube-apiserver and kube-controller-manager: "
          "CREATE and WATCH certificatesigningrequests by the kubelet; CREATE "
          "subjectaccessreviews, UPDATE approval and UPDATE status by the controller manager, "
          "each followed by a MODIFIED event to the kubelet; then CLOSED for the CSR, pod and "
          "node watches, and new WATCH requests for pods and nodes.")),
        ("konn.messages", "fig-identity-konnectivity",
         ("kubectl logs through Konnectivity: the apiserver dials the server's socket, the server "
          "sends the dial down the agent's tunnel, and the agent reaches the kubelet from the "
          "node."),
         ("Sequence diagram: kubectl asks kube-apiserver for logs; kube-apiserver sends DIAL_REQ to "
          "konnectivity-server, which forwards it on the agent's connection; the agent calls the "
          "kubelet, which checks with a SubjectAccessReview, and the answer returns.")),
        ("pk.messages", "fig-identity-packets",
         ("One kubectl logs through Konnectivity, packet by packet: DIAL_REQ and DIAL_RSP with "
          "the connection's id, DATA both ways, CLOSE_REQ and CLOSE_RSP, each relayed by the "
          "server between the apiserver's stream and the agent's."),
         ("Sequence diagram between kubectl, kube-apiserver, konnectivity-server, "
          "konnectivity-agent and the kubelet: GET pods/log; POST /ProxyService/Proxy; DIAL_REQ "
          "to the server and on to the agent; DIAL_RSP back with connectID 1; DATA with the "
          "request to the agent, which GETs /containerLogs from the kubelet; DATA with the "
          "response back; CLOSE_REQ and CLOSE_RSP the same way.")),
    ],
    "09-metrics-and-aggregation": [
        ("ms.scrape_timeline(", "fig-metrics-scrapes",
         ("metrics-server scrapes every kubelet every 15 s; kubectl top reads the last two "
         "samples, so it has no answer until the second scrape."),
         ("Timeline with lanes for kubectl, kube-apiserver, metrics-server and two kubelets: "
         "scrapes every 15 seconds and kubectl top requests.")),
        ("ms.top_story(", "fig-metrics-top",
         ("One scrape round, then one kubectl top pods through the aggregator: kube-apiserver "
         "proxies to metrics-server, which checks the user with a SubjectAccessReview. The "
         "kubelets' once-a-second CRI polls are summarised, one dotted row per node."),
         ("Sequence diagram: metrics-server GETs /metrics/resource from both kubelets; kubectl "
         "LISTs pods metrics on kube-apiserver, which proxies to metrics-server, which creates "
         "a SubjectAccessReview; nothing reaches etcd.")),
        ("ms.down_timeline(", "fig-metrics-down",
         ("metrics-server down: 503 before and after the availability check marks the "
         "APIService Available=False."),
         ("Timeline with lanes for kubectl, kube-apiserver and the APIService: failing dials, "
         "503 answers, and the condition flipping to FailedDiscoveryCheck.")),
    ],
    "a1-kubectl-against-the-model": [
        ("with_etcd_calls(applied)", "fig-kubectl-apply",
         "kubectl apply: a read, then a create, for each object.",
         ("Sequence diagram: for each object kubectl GETs it (404), then creates it; "
         "kube-apiserver reads and writes etcd.")),
        ("logs, participants", "fig-kubectl-logs",
         "kubectl logs goes through kube-apiserver to the kubelet.",
         ("Sequence diagram: kubectl GETs pods/log; kube-apiserver reads the pod from etcd and "
         "calls the kubelet, which returns the log.")),
        ("exec_trace, participants", "fig-kubectl-exec",
         "kubectl exec: a WebSocket to kube-apiserver, relayed to the kubelet and containerd.",
         ("Sequence diagram: kubectl opens pods/exec with a WebSocket upgrade; kube-apiserver "
          "calls the kubelet, which checks with a SubjectAccessReview, asks the container "
          "runtime for a streaming URL and connects to it; the runtime runs the command "
          "through runc and the exit code comes back.")),
    ],
    "14-more-than-one-of-everything": [
        ("write.messages,", "fig-ha-write",
         ("One write on a three-member etcd cluster: the member kube-apiserver dials forwards "
          "it to the leader, which replicates it to both followers before the answer."),
         ("Sequence diagram: kubectl creates a Pod through kube-apiserver on cp-1; its etcd "
          "member forwards the proposal to the leader, which sends MsgApp to both followers, "
          "then the commit index, before the Txn is answered.")),
        ("ha.raft_states_timeline(", "fig-ha-leader-loss",
         ("The etcd leader stops: the followers keep following it until their election "
          "timeouts run out, then one of them wins an election in term 2."),
         ("Timeline of three etcd members' Raft states: all followers, one becomes leader in "
          "term 1 and later stops; after an election timeout another becomes leader in "
          "term 2.")),
        ("fold=quiet", "fig-ha-partition",
         ("A partition cuts the leader off from its two peers: its heartbeats are lost, the "
          "others elect a new leader, and after the heal the old leader follows it."),
         ("Sequence diagram between three etcd members: heartbeats from the cut-off leader are "
          "lost, a vote request is granted by the third member, the new leader appends, and "
          "after the heal it catches the old leader up.")),
        ("ha.apiserver_timeline(", "fig-ha-apiserver",
         ("A kube-apiserver dies: the informer reconnects through the load balancer at once, "
          "the balancer marks the backend down after two checks, the endpoints drop it after "
          "its masterlease expires."),
         ("Timeline with lanes for the dead apiserver, the load balancer, the kubernetes "
          "endpoints and an informer's back-off and new watch.")),
        ("ha.leases_timeline(", "fig-ha-leases",
         ("The leading kube-scheduler and kube-controller-manager are killed; each standby "
          "takes the Lease after the lease duration, never overlapping."),
         ("Timeline with two lanes per component: the killed leader and the standby, which "
          "becomes leader about 16 seconds later.")),
    ],
    "a2-real-etcd": [
        ("key_messages(real)", "fig-real-etcd",
         "The scenario on a real etcd: the same requests as on the model, as etcd sees them.",
         "Sequence diagram between kubectl, the scheduler, kube-apiserver and a real etcd."),
    ],
    "15-scale-shapes-the-paths": [
        ("scale.heartbeat_timeline(", "fig-scale-heartbeats",
         ("One kubelet's heartbeats over eleven minutes: a Lease renewal every 10 s, a "
          "NodeStatus write only every 5 minutes (KEP-589)."),
         ("Timeline with two lanes. The Lease lane has a marker every 10 seconds; the "
          "NodeStatus lane has markers at registration and then one every 300 seconds.")),
        ("scale.zone_outage_timeline(", "fig-scale-zone-outage",
         ("NoExecute taints and pod deletions after the network cuts nodes off at 60 s: one "
          "dark zone is tainted a node every 10 s, a mostly dark small zone not at all, a "
          "whole dark cluster not at all, a mostly dark zone of 51 nodes a node every 100 s; "
          "each pod is deleted 300 s after its node's taint."),
         ("Timeline with eight lanes, a taint lane and a deletion lane for each of four "
          "outages; each taint lane is grey from the cut at 60 s. One dark zone: four taints "
          "10 seconds apart from 110 s and four deletions 300 seconds later. Small partial "
          "zone and whole cluster: no marker at all. Large partial zone: taints at 110, 210 "
          "and 310 s.")),
    ],
}


def chapter_number(stem: str) -> str:
    """The chapter's number, from its file name: ``08-inside-the-node`` -> ``8``, ``a1-...`` ->
    ``A1``."""
    head = stem.split("-", 1)[0]
    return str(int(head)) if head.isdigit() else head.upper()


def figure_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code" and "figures.show(" in c.source]


def apply(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    cells = figure_cells(nb)
    listed = FIGURES.get(path.stem, [])
    if len(cells) != len(listed):
        sys.exit(f"{path.name}: {len(cells)} figure cells, {len(listed)} listed in FIGURES")
    changed = False
    chapter = chapter_number(path.stem)
    for k, (cell, (snippet, name, caption, alt)) in enumerate(
            zip(cells, listed, strict=True), start=1):
        if snippet not in cell.source:
            sys.exit(f"{path.name}: figure {name}: {snippet!r} not in its cell")
        want = {"figure": {"caption": f"**Figure {chapter}.{k}:** {caption}", "name": name},
                "image": {"alt": alt, "width": "100%"}}
        if cell.metadata.get("mystnb") != want:
            cell.metadata["mystnb"] = want
            changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def main() -> None:
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if apply(path):
            print(f"updated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
