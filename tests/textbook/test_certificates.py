"""Chapter 13's certificate-lifecycle and Konnectivity-packet runs report what the components did."""

from k8sbook.textbook import scenarios
from k8sbook.textbook.scenarios import certificates


def test_serving_certificate_pending_then_approved_then_verified():
    r = scenarios.run("serving-certificate")
    f = r.facts
    assert f["csr"]["signerName"] == "kubernetes.io/kubelet-serving"
    assert f["csr"]["usages"] == ["digital signature", "server auth"]
    assert f["csr"]["subject"] == ["system:node:node-c", ["system:nodes"]]
    assert f["csr"]["sans"] == [["node-c"], ["192.168.0.10"]]
    assert f["logs_before_approval"].endswith("remote error: tls: internal error")
    assert f["table_before"][0][3] == "Pending"
    assert f["approve_without_signer_permission"].startswith("403 Forbidden:") and \
        f["approve_without_signer_permission"].endswith(
            'user not permitted to approve requests with signerName '
            '"kubernetes.io/kubelet-serving"')
    assert f["table_after"][0][3] == "Approved,Issued"
    assert f["logs_after_approval"] == "allowed" and f["logs_text"]
    assert f["serving"]["issuer"] == "kubernetes"
    assert f["renewal"]["condition"] == "Pending"  # the rotation's CSR waits for a person too
    verbs = [(m.src.split("/")[0], m.verb, m.resource) for m in r.messages]
    assert ("kubectl", "UPDATE", "certificatesigningrequests/approval") in verbs
    assert ("kube-controller-manager", "UPDATE", "certificatesigningrequests/status") in verbs
    dials = [m.result for m in r.messages if m.path == "kube-apiserver->kubelet"]
    assert dials == ["remote error: tls: internal error", "200"]


def test_serving_certificate_never_approved():
    f = certificates.serving_certificate(approve=False).facts
    assert f["serving"] is None and f["kubectl_approve"] == ""
    assert f["logs_after_approval"].endswith("remote error: tls: internal error")
    assert f["table_after"][0][3] == "Pending"


def test_csr_cleaner_deletes_the_issued_csr_and_leaves_the_pending_ones():
    r = scenarios.run("csr-cleaner")
    f = r.facts
    assert [c["name"].startswith("node-csr-") for c in f["cleaned"]] == [True]
    assert f["cleaned"][0]["why"].startswith("more than approvedExpiration duration old")
    # a rotation gives up on its CSR every 15 minutes: four an hour pile up, pending
    assert f["pending"] == 8
    assert [r[3] for r in f["tables"]["after 2 h"]] == ["Pending"] * 8
    assert f["oldest_pending"]["at 24 h"] == "(kept)"
    assert f["oldest_pending"]["at 24 h + 1 s"].startswith("more than pendingExpiration")
    assert [(m.src, m.verb, m.result) for m in r.messages] == [
        ("kube-controller-manager/cp-1", "DELETE", "200")]


def test_konnectivity_packets_in_order_and_the_failures():
    r = scenarios.run("konnectivity-packets")
    f = r.facts
    verbs = [p[2] for p in f["packets"] if p[2] not in ("GET", "POST")]
    assert verbs == ["DIAL_REQ", "DIAL_REQ", "DIAL_RSP", "DIAL_RSP", "DATA", "DATA", "DATA",
                     "DATA", "CLOSE_REQ", "CLOSE_REQ", "CLOSE_RSP", "CLOSE_RSP"]
    assert f["dial_req_wire"].startswith("12 ") and f["dial_req_bytes"] == 31
    assert f["agent_gone"].endswith(": EOF")
    assert [p[2] for p in f["agent_gone_packets"]][-1] == "CLOSE_RSP"
    assert f["no_agent"].endswith(": No agent available")
    assert f["agent_back"] == "allowed"
    assert r.paths() == ["konnectivity-agent->konnectivity-server",
                         "konnectivity-agent->kubelet", "kube-apiserver->konnectivity-server",
                         "kubectl->kube-apiserver"]


def test_rotation_reconnects_with_the_new_certificate():
    r = scenarios.run("rotation-reconnects")
    f = r.facts
    assert {x["serial"] for x in f["before"]} == {f["first"]["serial"]}
    assert {x["serial"] for x in f["after"]} == {f["second"]["serial"]}
    assert [x["resource"] for x in f["after"]] == [x["resource"] for x in f["before"]]
    assert f["closes"] == 1 and f["closed"] == 2
    closed = [m.resource for m in r.messages if m.verb == "CLOSED"]
    rewatched = [m.resource for m in r.messages if m.verb == "WATCH"
                 and m.resource != "certificatesigningrequests"]
    assert sorted(rewatched) == ["nodes", "pods"] and {"nodes", "pods"} <= set(closed)


def test_same_run_same_bytes():
    a = scenarios.run("konnectivity-packets").to_dict()
    b = scenarios.run("konnectivity-packets").to_dict()
    assert a == b


def test_packet_lines_name_the_three_by_their_short_names():
    lines = certificates.packet_lines([
        ["kube-apiserver", "konnectivity-server", "DIAL_REQ", "node-a:10250", "random=7", ""],
        ["konnectivity-agent/node-a", "kubelet/node-a", "GET", "/containerLogs", "", "200"]])
    assert lines[0].split() == ["apiserver", "->", "server", "DIAL_REQ", "node-a:10250",
                                "random=7"]
    assert lines[1].split() == ["agent", "->", "kubelet", "GET", "/containerLogs", "200"]
