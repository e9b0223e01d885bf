"""Admission webhooks (apiserver/webhook.py): matching, denial, mutation, failure policy, and
the call itself going through the network."""

import base64
import json

import pytest

from k8sbook.api import objects
from k8sbook.apiserver.webhook import WebhookServer, serve_behind_service
from k8sbook.client.network import Address
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.textbook.scenarios import run
from tests.helpers import snapshot


def config(kind: str, failure: str = "Fail", timeout: int | None = None,
           client_config: dict | None = None) -> dict:
    hook = {"name": "demo.example.com",
            "clientConfig": client_config or {"service": {"namespace": "hooks", "name": "srv",
                                                          "path": "/admit"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""],
                       "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "failurePolicy": failure}
    if timeout is not None:
        hook["timeoutSeconds"] = timeout
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": "demo"}, "webhooks": [hook]}


def deny(r):
    return {"uid": r["uid"], "allowed": False}


def serve(cluster: Cluster, handler) -> WebhookServer:
    return serve_behind_service(WebhookServer("srv.hooks.svc", handler), cluster.admin(),
                                cluster.network, "hooks", "srv")


def failure(admin, name="c") -> tuple[int, str]:
    with pytest.raises(StatusError) as err:
        admin.create(objects.configmap(name))
    return err.value.code, err.value.status["message"]


def test_mutating_webhook_patches_the_object():
    cluster = Cluster()
    patch = [{"op": "add", "path": "/data/added-by", "value": "webhook"}]

    def handler(req):
        return {"uid": req["uid"], "allowed": True, "patchType": "JSONPatch",
                "patch": base64.b64encode(json.dumps(patch).encode()).decode()}

    server = serve(cluster, handler)
    admin = cluster.admin()
    admin.create(config("MutatingWebhookConfiguration"))
    mark = cluster.trace.mark()
    out = admin.create(objects.configmap("c", data={"k": "v"}))
    assert out["data"] == {"added-by": "webhook", "k": "v"}
    review = server.received[0]
    assert review["operation"] == "CREATE" and review["userInfo"]["username"] == \
        "kubernetes-admin"
    calls = [m for m in cluster.trace.since(mark) if m.path == "kube-apiserver->webhook"]
    assert [(m.dst, m.verb, m.resource, m.name, m.result) for m in calls] == [
        ("webhook/srv.hooks.svc", "POST", "srv.hooks.svc", "demo.example.com", "allowed")]


def test_the_service_resolver_gives_the_cluster_ip():
    cluster = Cluster()
    server = serve(cluster, deny)
    svc = cluster.admin().get("services", "srv", "hooks")
    assert server.address == Address.tcp(svc["spec"]["clusterIP"], 443)
    resolve = cluster.apiserver.webhooks.resolve_service
    assert resolve("hooks", "srv", 443) == (svc["spec"]["clusterIP"], 443)


def test_unmatched_requests_do_not_call_the_webhook():
    cluster = Cluster()
    server = serve(cluster, deny)
    admin = cluster.admin()
    admin.create(config("ValidatingWebhookConfiguration"))
    admin.create(objects.pod("p"))  # pods are not in the rules
    assert server.received == []


def test_denial_without_message():
    cluster = Cluster()
    serve(cluster, deny)
    admin = cluster.admin()
    admin.create(config("ValidatingWebhookConfiguration"))
    before = snapshot(cluster)
    assert failure(admin) == (403, ('admission webhook "demo.example.com" denied the request '
                                   "without explanation"))
    assert snapshot(cluster) == before


def test_latency_past_timeout_seconds_is_a_deadline():
    """The answer takes 20 s on the network; the webhook's timeoutSeconds is 10."""
    cluster = Cluster()
    server = serve(cluster, lambda r: {"uid": r["uid"], "allowed": True})
    admin = cluster.admin()
    admin.create(config("ValidatingWebhookConfiguration", timeout=10))
    assert server.address is not None
    cluster.network.set_latency(server.address, 20)
    before = snapshot(cluster)
    assert failure(admin) == (500, ('Internal error occurred: failed calling webhook '
                                   '"demo.example.com": failed to call webhook: Post '
                                   '"https://srv.hooks.svc:443/admit?timeout=10s": '
                                   "context deadline exceeded"))
    assert snapshot(cluster) == before and server.received == []
    cluster.network.set_latency(server.address, 5)  # within the timeout: it answers
    admin.create(objects.configmap("c"))
    assert len(server.received) == 1


def test_closed_listener_is_refused_and_failure_policy_decides():
    cluster = Cluster()
    server = serve(cluster, lambda r: {"uid": r["uid"], "allowed": True})
    admin = cluster.admin()
    admin.create(config("ValidatingWebhookConfiguration"))
    server.stop()
    ip = cluster.admin().get("services", "srv", "hooks")["spec"]["clusterIP"]
    before = snapshot(cluster)
    mark = cluster.trace.mark()
    assert failure(admin) == (500, ('Internal error occurred: failed calling webhook '
                                   '"demo.example.com": failed to call webhook: Post '
                                   '"https://srv.hooks.svc:443/admit?timeout=10s": dial tcp '
                                   f"{ip}:443: connect: connection refused"))
    assert snapshot(cluster) == before
    assert [m.result for m in cluster.trace.since(mark)
            if m.path == "kube-apiserver->webhook"] == ["connection refused"]
    admin.patch("validatingwebhookconfigurations", "demo",
                [{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}],
                content_type="application/json-patch+json")
    assert admin.create(objects.configmap("c"))["metadata"]["name"] == "c"


def test_missing_service_fails_in_the_resolver():
    cluster = Cluster()
    admin = cluster.admin()
    admin.create(config("ValidatingWebhookConfiguration"))
    assert failure(admin) == (500, ('Internal error occurred: failed calling webhook '
                                   '"demo.example.com": failed to call webhook: Post '
                                   '"https://srv.hooks.svc:443/admit?timeout=10s": '
                                   'service "srv" not found'))


def test_url_webhook_dials_its_host():
    cluster = Cluster()
    server = WebhookServer("hooks.example.com", deny)
    cluster.network.add_host("hooks.example.com", "203.0.113.7")
    server.serve(cluster.network, Address.tcp("203.0.113.7", 8443))
    admin = cluster.admin()
    admin.create(config("ValidatingWebhookConfiguration",
                        client_config={"url": "https://hooks.example.com:8443/check"}))
    assert failure(admin)[0] == 403 and len(server.received) == 1
    cluster.network.close(Address.tcp("203.0.113.7", 8443))
    assert failure(admin) == (500, ('Internal error occurred: failed calling webhook '
                                   '"demo.example.com": failed to call webhook: Post '
                                   '"https://hooks.example.com:8443/check?timeout=10s": dial '
                                   "tcp 203.0.113.7:8443: connect: connection refused"))


def test_scenario_webhook_failure_policy():
    facts = run("hub-admission-webhook").facts
    assert facts["store_unchanged_when_failing"]
    assert facts["reviews_received"] == 2
    assert "connect: connection refused" in facts["outcomes"][
        "4 webhook down, failurePolicy Fail"]
    assert facts["outcomes"]["5 webhook down, failurePolicy Ignore"] == "201 Created"


def served_with_ca(cluster: Cluster, ca: str) -> WebhookServer:
    server = WebhookServer("srv.hooks.svc", lambda r: {"uid": r["uid"], "allowed": True},
                           certificate=ca)
    return serve_behind_service(server, cluster.admin(), cluster.network, "hooks", "srv")


def bundled(ca_file: str, failure: str = "Fail") -> dict:
    from k8sbook.core import pki

    hook = config("ValidatingWebhookConfiguration", failure)
    hook["webhooks"][0]["clientConfig"]["caBundle"] = pki.bundle(ca_file)
    return hook


def test_the_serving_certificate_is_verified_against_the_ca_bundle():
    cluster = Cluster()
    served_with_ca(cluster, "webhook-ca")
    admin = cluster.admin()
    admin.create(bundled("webhook-ca"))
    assert admin.create(objects.configmap("ok"))["metadata"]["name"] == "ok"


def test_a_certificate_the_bundle_does_not_vouch_for_fails_the_call():
    cluster = Cluster()
    served_with_ca(cluster, "impostor-ca")
    admin = cluster.admin()
    admin.create(bundled("webhook-ca"))
    before = snapshot(cluster)
    code, message = failure(admin)
    assert code == 500
    assert message == (
        'Internal error occurred: failed calling webhook "demo.example.com": failed to call webhook: Post '
        '"https://srv.hooks.svc:443/admit?timeout=10s": tls: failed to verify certificate: '
        "x509: certificate signed by unknown authority")
    assert snapshot(cluster) == before
    (call,) = [m for m in cluster.trace.messages if m.path == "kube-apiserver->webhook"]
    assert "certificate signed by unknown authority" in call.result


def test_an_unverifiable_webhook_with_failure_policy_ignore_is_skipped():
    cluster = Cluster()
    served_with_ca(cluster, "impostor-ca")
    admin = cluster.admin()
    admin.create(bundled("webhook-ca", failure="Ignore"))
    assert admin.create(objects.configmap("c"))["metadata"]["name"] == "c"


def test_a_webhook_that_speaks_no_tls_fails_a_bundle_check():
    cluster = Cluster()
    serve(cluster, deny)  # no serving certificate at all
    admin = cluster.admin()
    admin.create(bundled("webhook-ca"))
    assert failure(admin)[1].endswith("tls: first record does not look like a TLS handshake")
