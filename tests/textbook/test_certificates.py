"""Chapter 13's certificate-lifecycle and Konnectivity-packet runs report what the components did.

The chapter's own seed-0 runs of ``serving-certificate``, ``csr-cleaner`` and
``rotation-reconnects`` are checked where they are shown, by the hidden check cell of
notebooks/13-who-is-calling.ipynb (and their stored outputs, by nbval); their determinism and
the schemas of what they write at another seed by tests/textbook/test_scenarios_schema.py.
Here: the variants the exercises use, and the cheap Konnectivity run."""

from k8sbook.textbook import scenarios
from k8sbook.textbook.scenarios import certificates


def test_serving_certificate_never_approved():
    f = certificates.serving_certificate(approve=False).facts
    assert f["serving"] is None and f["kubectl_approve"] == ""
    assert f["logs_after_approval"].endswith("remote error: tls: internal error")
    assert f["table_after"][0][3] == "Pending"


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
