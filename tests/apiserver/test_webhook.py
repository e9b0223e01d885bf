"""Admission webhooks: matching, denial, mutation, failure policy."""

import base64
import json

import pytest

from k8sbook.api import objects
from k8sbook.apiserver.webhook import WebhookServer
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.textbook.scenarios import run
from tests.helpers import snapshot


def config(kind: str, failure: str = "Fail") -> dict:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": "demo"},
            "webhooks": [{"name": "demo.example.com",
                          "clientConfig": {"service": {"namespace": "hooks", "name": "srv"}},
                          "rules": [{"operations": ["CREATE"], "apiGroups": [""],
                                     "apiVersions": ["v1"], "resources": ["configmaps"]}],
                          "sideEffects": "None", "admissionReviewVersions": ["v1"],
                          "failurePolicy": failure}]}


def test_mutating_webhook_patches_the_object():
    cluster = Cluster()
    patch = [{"op": "add", "path": "/data/added-by", "value": "webhook"}]

    def handler(req):
        return {"uid": req["uid"], "allowed": True, "patchType": "JSONPatch",
                "patch": base64.b64encode(json.dumps(patch).encode()).decode()}

    server = cluster.apiserver.webhooks.register(WebhookServer("srv.hooks.svc", handler))
    admin = cluster.admin()
    admin.create(config("MutatingWebhookConfiguration"))
    out = admin.create(objects.configmap("c", data={"k": "v"}))
    assert out["data"] == {"added-by": "webhook", "k": "v"}
    review = server.received[0]
    assert review["operation"] == "CREATE" and review["userInfo"]["username"] == \
        "kubernetes-admin"
    assert [m.path for m in cluster.trace if m.dst == "webhook"] == ["kube-apiserver->webhook"]


def test_unmatched_requests_do_not_call_the_webhook():
    cluster = Cluster()
    server = cluster.apiserver.webhooks.register(
        WebhookServer("srv.hooks.svc", lambda r: {"uid": r["uid"], "allowed": False}))
    admin = cluster.admin()
    admin.create(config("ValidatingWebhookConfiguration"))
    admin.create(objects.pod("p"))  # pods are not in the rules
    assert server.received == []


def test_denial_without_message_and_timeout():
    cluster = Cluster()
    server = cluster.apiserver.webhooks.register(
        WebhookServer("srv.hooks.svc", lambda r: {"uid": r["uid"], "allowed": False}))
    admin = cluster.admin()
    admin.create(config("ValidatingWebhookConfiguration"))
    before = snapshot(cluster)
    with pytest.raises(StatusError) as err:
        admin.create(objects.configmap("c"))
    assert err.value.code == 403
    assert err.value.status["message"] == ('admission webhook "demo.example.com" denied the '
                                           "request without explanation")
    server.latency = 11  # longer than the default 10 s timeout
    with pytest.raises(StatusError) as err:
        admin.create(objects.configmap("c"))
    assert err.value.code == 500 and "context deadline exceeded" in err.value.status["message"]
    assert snapshot(cluster) == before


def test_scenario_webhook_failure_policy():
    facts = run("hub-admission-webhook").facts
    assert facts["store_unchanged_when_failing"]
    assert facts["reviews_received"] == 2
