"""Server-side dry run (``registry/generic/registry/dryrun.go``) and the write options."""

import pytest

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.apiserver.webhook import WebhookServer, serve_behind_service
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from tests.helpers import snapshot

DRY = {"dryRun": ["All"]}


def test_dry_run_writes_nothing_and_uses_no_revision():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    admin.create(objects.configmap("c", data={"k": "1"}))
    before, rev = snapshot(cluster), cluster.etcd.revision
    made = admin.request(Request("create", "configmaps", "", "default",
                                 body=objects.configmap("d"), params=DRY))
    assert made["metadata"]["uid"] and "resourceVersion" not in made["metadata"]
    svc = admin.request(Request("create", "services", "", "default", params=DRY, body={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}))
    assert svc["spec"]["clusterIP"].startswith("10.")
    out = admin.request(Request("patch", "configmaps", "", "default", "c",
                                body={"data": {"k": "2"}}, params=DRY,
                                content_type="application/merge-patch+json"))
    assert out["data"] == {"k": "2"}
    gone = admin.request(Request("delete", "configmaps", "", "default", "c", params=DRY))
    assert gone["status"] == "Success"
    with pytest.raises(StatusError) as err:  # admission and validation still run
        admin.request(Request("create", "configmaps", "", "nowhere", params=DRY, body={
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e"}}))
    assert err.value.code == 404
    assert snapshot(cluster) == before and cluster.etcd.revision == rev
    # the service's dry-run address was not kept: a real create may take it
    real = admin.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                         "spec": {"clusterIP": svc["spec"]["clusterIP"],
                                  "ports": [{"port": 80}]}}, "default")
    assert real["spec"]["clusterIP"] == svc["spec"]["clusterIP"]


def test_option_errors_are_422_on_the_options_kind():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    admin.create(objects.configmap("c"))
    before = snapshot(cluster)
    with pytest.raises(StatusError) as err:
        admin.request(Request("create", "configmaps", "", "default",
                              body=objects.configmap("d"), params={"dryRun": ["Some"]}))
    assert (err.value.code, err.value.status["message"]) == (
        422, ('CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["Some"]: '
             'supported values: "All"'))
    with pytest.raises(StatusError) as err:
        admin.request(Request("delete", "configmaps", "", "default", "c",
                              params={"propagationPolicy": "Later"}))
    assert err.value.status["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
        '"Later": supported values: "Foreground", "Background", "Orphan", "nil"')
    with pytest.raises(StatusError) as err:
        admin.request(Request("patch", "configmaps", "", "default", "c", body={},
                              params={"force": True},
                              content_type="application/merge-patch+json"))
    assert err.value.status["details"]["causes"][0]["message"] == (
        "Forbidden: may not be specified for non-apply patch")
    assert snapshot(cluster) == before


def test_webhooks_see_dry_run_and_those_with_side_effects_refuse_it():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    server = serve_behind_service(WebhookServer("srv.hooks.svc", lambda r: {
        "uid": r["uid"], "allowed": True}), admin, cluster.network, "hooks", "srv")
    hook = {"name": "demo.example.com", "sideEffects": "None",
            "clientConfig": {"service": {"namespace": "hooks", "name": "srv", "path": "/"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"]}], "admissionReviewVersions": ["v1"]}
    admin.create({"apiVersion": "admissionregistration.k8s.io/v1",
                  "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "demo"},
                  "webhooks": [hook]})
    admin.request(Request("create", "configmaps", "", "default",
                          body=objects.configmap("d"), params=DRY))
    assert server.received[-1]["dryRun"] is True
    admin.patch("validatingwebhookconfigurations", "demo",
                [{"op": "replace", "path": "/webhooks/0/sideEffects", "value": "Some"}],
                content_type="application/json-patch+json")
    with pytest.raises(StatusError) as err:
        admin.request(Request("create", "configmaps", "", "default",
                              body=objects.configmap("d"), params=DRY))
    assert (err.value.code, err.value.status["message"]) == (
        400, 'admission webhook "demo.example.com" does not support dry run')
