"""The one outcome helper the scenarios use: it reports what the server answered."""

from __future__ import annotations

import json

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios import outcome, run


def test_a_success_reports_the_code_the_trace_shows():
    cluster = Cluster(0)
    admin = cluster.admin()
    created = outcome(lambda: admin.create(objects.pod("web")), cluster.trace)
    assert created.code == 201 and created == "201 Created" and created.ok
    assert cluster.trace.messages[[m.resource for m in cluster.trace.messages].index("pods")
                                  ].result == "201"
    got = outcome(lambda: admin.get("pods", "web", "default"), cluster.trace)
    assert got.code == 200 and str(got) == "200 OK"


def test_a_refusal_reports_code_reason_and_message():
    cluster = Cluster(0)
    admin = cluster.admin()
    admin.create(objects.pod("web"))
    again = outcome(lambda: admin.create(objects.pod("web")), cluster.trace)
    assert (again.code, again.reason) == (409, "AlreadyExists") and not again.ok
    assert again == f"409 AlreadyExists: {again.message}"
    assert json.dumps({"x": again}) == json.dumps({"x": str(again)})


def test_no_answer_reports_the_network_error():
    cluster = Cluster(0)
    client = cluster.client("kube-scheduler")
    cluster.network.isolate("kube-scheduler")
    lost = outcome(lambda: client.get("pods", "web", "default"), cluster.trace)
    assert lost.code == 0 and lost.reason == "i/o timeout" and lost.startswith("i/o timeout: ")


def test_without_a_trace_a_success_is_allowed():
    cluster = Cluster(0)
    assert outcome(lambda: cluster.admin().list("pods")) == "allowed"


def test_webhook_outcomes_match_the_trace():
    result = run("hub-admission-webhook")
    kubectl = [m for m in result.messages if m.src == "kubectl" and m.resource == "pods"
               and m.verb == "CREATE"]
    codes = [o.code for o in result.facts["outcomes"].values()]
    assert codes == [int(m.result[:3]) for m in kubectl]
