"""Chapter 13's runs on the rest of the certificate lifecycle and on Konnectivity's packets.

The book's own code. Each scenario sets a cluster up, lets the components work (the kubelet's
certificate managers, csrapproving, csrsigning, csrcleaner, konnectivity-server and its
agents), injects faults through the network and reports what the servers answered
(:func:`~k8sbook.textbook.scenarios.outcome`) and what the trace shows.
"""

from __future__ import annotations

from typing import Any

from k8sbook.api import objects
from k8sbook.api.request import ClientCertificate
from k8sbook.apiserver.certificates import certificate_approve
from k8sbook.apiserver.konnectivity_client import encode, packet
from k8sbook.apiserver.kubelet_client import pod_logs
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controllers.csr_cleaner import why_clean
from k8sbook.core import pki
from k8sbook.core.trace import Message
from k8sbook.textbook.scenarios import ScenarioResult, outcome, scenario

CH = "13-who-is-calling"
RBAC = "rbac.authorization.k8s.io"
#: ``--kubelet-certificate-authority``: the cluster CA (``/etc/kubernetes/pki/ca.crt``)
KUBELET_CA = pki.CAS["ca"]


def csr_condition(csr: dict[str, Any]) -> str:
    """The CONDITION column of ``kubectl get csr`` (``extractCSRStatus``): Denied, else
    Approved, else Pending; then ``,Failed`` and ``,Issued``."""
    kinds = {c.get("type") for c in (csr.get("status") or {}).get("conditions") or []}
    out = "Denied" if "Denied" in kinds else "Approved" if "Approved" in kinds else "Pending"
    if "Failed" in kinds:
        out += ",Failed"
    if (csr.get("status") or {}).get("certificate"):
        out += ",Issued"
    return out


def csr_table(cluster: Cluster) -> list[list[str]]:
    """``kubectl get csr``: [NAME, SIGNERNAME, REQUESTOR, CONDITION], sorted by name."""
    items = cluster.admin().list("certificatesigningrequests")["items"]
    return [[o["metadata"]["name"], o["spec"]["signerName"], o["spec"].get("username", ""),
             csr_condition(o)] for o in sorted(items, key=lambda o: o["metadata"]["name"])]


def _subject(subject: tuple[str, tuple[str, ...]]) -> list[Any]:
    return [subject[0], list(subject[1])]


def _controller_manager(c: Cluster, signing_duration: float | None = None) -> Any:
    kcm = c.add_controller_manager(controllers=("csrapproving", "csrsigning", "csrcleaner"))
    kcm.start()
    c.run_for(20)
    if signing_duration is not None:
        kcm.controllers["csrsigning"].duration = signing_duration
    return kcm


def _jane(c: Cluster) -> Any:
    """A user who may read CSRs and write their ``/approval``, but holds no ``approve`` on
    any signer."""
    adm = c.admin()
    adm.create({"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
                "metadata": {"name": "csr-approval-writer"},
                "rules": [{"apiGroups": ["certificates.k8s.io"],
                           "resources": ["certificatesigningrequests",
                                         "certificatesigningrequests/approval"],
                           "verbs": ["get", "list", "update"]}]})
    adm.create({"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "jane-approval-writer"},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole",
                            "name": "csr-approval-writer"},
                "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "jane"}]})
    return c.client("kubectl", ClientCertificate("jane"))


def serving_messages(messages: list[Message]) -> list[Message]:
    """What the serving-certificate figure draws: the CSR's creation, the approval and the
    signature, and each ``kubectl logs`` with the apiserver's dial of port 10250."""
    keep = []
    for m in messages:
        if m.dst == "etcd" or m.verb in ("LIST", "WATCH"):
            continue
        if m.resource.startswith("certificatesigningrequests") and m.verb in (
                "CREATE", "UPDATE") or m.resource == "pods/log" \
                or m.path == "kube-apiserver->kubelet":
            keep.append(m)
    return keep


@scenario("serving-certificate", "A kubelet's serving certificate: requested, pending until a "
          "person approves it, then verified by the apiserver", CH)
def serving_certificate(seed: int = 0, approve: bool = True) -> ScenarioResult:
    """A kubelet with ``serverTLSBootstrap: true`` and an apiserver with
    ``--kubelet-certificate-authority``. ``approve=False``: nobody approves."""
    c = Cluster(seed)
    _controller_manager(c, signing_duration=3600.0)  # --cluster-signing-duration=1h
    c.apiserver.kubelet_client.certificate_authority = KUBELET_CA
    mark = c.trace.mark()
    kubelet = c.add_kubelet("node-c", server_tls_bootstrap=True).start()
    c.run_for(5)
    adm = c.admin()
    adm.create(objects.pod("web", node_name="node-c"))
    c.run_for(3)
    mgr = kubelet.serving_certificates
    assert mgr is not None
    name = mgr.requests[0]
    created = adm.get("certificatesigningrequests", name)
    from cryptography import x509  # a serving CSR is real x509

    request = x509.load_pem_x509_csr(created["spec"]["request"].encode())
    before = outcome(lambda: pod_logs(adm, "default", "web"), c.trace)
    table_before = csr_table(c)
    jane = outcome(lambda: certificate_approve(_jane(c), name), c.trace)
    approved = certificate_approve(adm, name) if approve else ""
    c.run_for(2)
    answers: list[str] = []
    after = outcome(lambda: answers.append(pod_logs(adm, "default", "web")))
    cert = mgr.current
    facts: dict[str, Any] = {
        "csr": {"name": name, "signerName": created["spec"]["signerName"],
                "usages": created["spec"]["usages"], "username": created["spec"]["username"],
                "subject": _subject(pki.subject_of_request(request)),
                "sans": [list(x) for x in pki.sans_of(request)[:2]]},
        "logs_before_approval": str(before),
        "table_before": table_before,
        "approve_without_signer_permission": str(jane),
        "kubectl_approve": approved,
        "table_after": csr_table(c),
        "logs_after_approval": str(after),
        "logs_text": answers[0] if answers else "",
        "serving": None if cert is None else {
            "issuer": pki.issuer_of(cert), "subject": _subject(pki.subject_of(cert)),
            "sans": [list(x) for x in pki.sans_of(cert)[:2]],
            "notAfter": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    if cert is not None and mgr.deadline is not None:
        c.run_for(mgr.deadline - c.clock.now() + 2)
        renewal = mgr.requests[-1]
        facts["renewal"] = {"name": renewal,
                            "condition": csr_condition(adm.get("certificatesigningrequests",
                                                               renewal))}
    return ScenarioResult("serving-certificate", c, serving_messages(c.trace.since(mark)),
                          facts)


@scenario("csr-cleaner", "Old CSRs are deleted: issued ones after an hour, unanswered ones "
          "after a day", CH)
def csr_cleaner(seed: int = 0, hours: int = 2) -> ScenarioResult:
    """One new node for ``hours`` of virtual time: its kubelet bootstraps (the client CSR
    approved and issued at once) and has ``serverTLSBootstrap``, whose serving CSRs nobody
    approves. (One kubelet shows both kinds of CSR: a second node would only double the
    heartbeats of two hours.)"""
    c = Cluster(seed)
    kcm = _controller_manager(c)
    c.add_kubelet("node-b", bootstrap=True, server_tls_bootstrap=True).start()
    c.run_for(10)
    tables = {"after 10 s": csr_table(c)}
    for h in range(1, hours + 1):
        c.run_for(3600 * h - (c.clock.now() - 30))
        tables[f"after {h} h"] = csr_table(c)
    cleaner = kcm.controllers["csrcleaner"]
    pending = [o for o in c.admin().list("certificatesigningrequests")["items"]
               if csr_condition(o) == "Pending"]
    oldest = min(pending, key=lambda o: o["metadata"]["creationTimestamp"]) if pending else None
    facts: dict[str, Any] = {
        "tables": tables,
        "cleaned": [{"t": round(t), "name": n, "why": why} for t, n, why in cleaner.cleaned],
        "pending": len(pending),
    }
    if oldest is not None:
        born = c.clock.parse(oldest["metadata"]["creationTimestamp"])
        facts["oldest_pending"] = {
            "name": oldest["metadata"]["name"],
            "at 24 h": why_clean(oldest, born + 24 * 3600) or "(kept)",
            "at 24 h + 1 s": why_clean(oldest, born + 24 * 3600 + 1)}
    deletes = [m for m in c.trace.messages if m.verb == "DELETE"
               and m.resource == "certificatesigningrequests"]
    return ScenarioResult("csr-cleaner", c, deletes, facts)


def _konnectivity_cluster(seed: int) -> Cluster:
    c = Cluster(seed)
    c.add_kubelet("node-a").start()
    c.run_for(2)
    c.admin().create(objects.pod("web", node_name="node-a"))
    c.run_for(5)
    c.network.firewall("kube-apiserver", "kubelet")  # the control plane cannot dial nodes
    c.add_konnectivity()
    c.run_for(1)
    return c


def _tunnel(messages: list[Message]) -> list[list[str]]:
    return [[m.src, m.dst, m.verb, m.resource, m.name, m.result] for m in messages]


@scenario("konnectivity-packets", "One kubectl logs through Konnectivity, packet by packet, "
          "and the tunnel's failures", CH)
def konnectivity_packets(seed: int = 0, cut_after: str = "DATA") -> ScenarioResult:
    """A dial through the tunnel, then the same with no agent, then with the agent's stream
    breaking right after the packet ``cut_after`` (``DATA``: the request's first bytes;
    ``DIAL_RSP``: the agent's answer to the dial)."""
    c = _konnectivity_cluster(seed)
    adm = c.admin()
    mark = c.trace.mark()
    logs = pod_logs(adm, "default", "web")
    shown = ("kube-apiserver->konnectivity-server", "konnectivity-agent->konnectivity-server",
             "konnectivity-agent->kubelet")
    messages = [m for m in c.trace.since(mark)
                if m.path in shown or (m.src == "kubectl" and m.resource == "pods/log")]
    dial = next(m for m in messages if m.verb == "DIAL_REQ")
    random = int(dial.name.split("=", 1)[1])
    wire = encode(packet("DIAL_REQ", protocol="tcp", address=dial.resource, random=random))
    # the agent's stream breaks in the middle of the next request
    c.network.cut_after("konnectivity-agent->konnectivity-server", cut_after)
    mark = c.trace.mark()
    gone = outcome(lambda: pod_logs(adm, "default", "web"), c.trace)
    gone_packets = _tunnel([m for m in c.trace.since(mark) if "konnectivity" in m.path])
    # now there is no agent at all, until it dials again
    none = outcome(lambda: pod_logs(adm, "default", "web"), c.trace)
    c.run_for(6)  # --sync-interval: the agent is back
    back = outcome(lambda: pod_logs(adm, "default", "web"))
    facts = {"logs": logs, "packets": _tunnel(messages),
             "dial_req_wire": wire.hex(" "), "dial_req_bytes": len(wire),
             "agent_gone": str(gone), "agent_gone_packets": gone_packets,
             "no_agent": str(none), "agent_back": str(back)}
    return ScenarioResult("konnectivity-packets", c, messages, facts)


def rotation_messages(messages: list[Message], node: str) -> list[Message]:
    """What the rotation figure draws: the kubelet's renewal CSR, its approval (after a
    SubjectAccessReview) and signature, and the kubelet's watches ending and opening again
    (not their other events, not etcd)."""
    kubelet = f"kubelet/{node}"
    csr = "certificatesigningrequests"

    def keep(m: Message) -> bool:
        if m.dst == "etcd":
            return False
        if m.src == kubelet:
            return m.verb in ("CREATE", "WATCH") and not m.resource.startswith("events")
        if m.dst == kubelet:
            return m.verb == "CLOSED" or (m.resource == csr and m.verb == "MODIFIED")
        return m.src.startswith("kube-controller-manager") and m.verb in ("CREATE", "UPDATE") \
            and (m.resource.startswith(csr + "/") or m.resource == "subjectaccessreviews")
    return [m for m in messages if keep(m)]


@scenario("rotation-reconnects", "After rotation the kubelet closes its connections, and its "
          "watches come back with the new certificate", CH)
def rotation_reconnects(seed: int = 0) -> ScenarioResult:
    c = Cluster(seed)
    _controller_manager(c, signing_duration=3600.0)
    kubelet = c.add_kubelet("node-b", bootstrap=True).start()
    c.run_for(5)
    mgr = kubelet.certificates
    assert mgr is not None and mgr.current is not None and mgr.deadline is not None
    before = c.apiserver.peers.of("kubelet/node-b")
    first = mgr.current
    c.run_for(mgr.deadline - c.clock.now() - 1)
    mark = c.trace.mark()
    c.run_for(5)
    second = mgr.current
    after = c.apiserver.peers.of("kubelet/node-b")
    facts = {"before": before, "after": after,
             "first": {"serial": format(first.serial_number, "x"),
                       "notAfter": first.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")},
             "second": {"serial": format(second.serial_number, "x"),
                        "notAfter": second.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")},
             "closes": mgr.connection_closes, "closed": mgr.closed_connections}
    return ScenarioResult("rotation-reconnects", c,
                          rotation_messages(c.trace.since(mark), "node-b"), facts)


#: the short names :func:`packet_lines` prints
SHORT = {"kube-apiserver": "apiserver", "konnectivity-server": "server",
         "konnectivity-agent": "agent"}


def packet_lines(packets: list[list[str]]) -> list[str]:
    """One line per message of a packet run, as the chapter prints them: who sent it to
    whom (``apiserver``, ``server``, ``agent``, ``kubectl``, ``kubelet``), the packet type or
    HTTP verb, what it carries, the dial or connection id and the result."""
    def short(name: str) -> str:
        component = name.split("/", 1)[0]
        return SHORT.get(component, component)
    return [f"{short(src):>9} -> {short(dst):9} {verb:9} {what:43} {ids:26} {result}".rstrip()
            for src, dst, verb, what, ids, result in packets]
