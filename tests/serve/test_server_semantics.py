"""``k8sbook serve`` API semantics driven by real clients: ``/scale``, server-side apply and
its conflicts, server-side dry run and ``kubectl diff``, pagination, ``deletecollection``,
chunked bodies, ``events.k8s.io/v1``, the Python client's ``create_from_yaml`` and the tables
kubectl prints. Each kubectl test runs with kubectl 1.32 and the newest kubectl
(``kubectl-1.37``) when they are installed (required in CI)."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import utils as k8s_utils

from k8sbook.serve import server
from tests.serve.conftest import KUBECTLS as FOUND
from tests.serve.conftest import REQUIRED
from tests.serve.test_server import model_get, model_names, raw, wait_for

#: the seed of the module's ``k8sbook serve`` (the ``srv`` fixture of conftest.py)
SERVE_SEED = 3

#: both versions, found as ``tests/serve/conftest.py`` finds them ("": not on this machine)
KUBECTLS = {v: FOUND.get(v, "") for v in REQUIRED}

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: nginx
        image: {image}
"""

MULTI = """apiVersion: v1
kind: Secret
metadata: {name: py-secret}
stringData: {password: hunter2}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: py-config}
data: {a: "1", b: "2"}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: py-rs}
spec:
  replicas: 1
  selector: {matchLabels: {app: py-rs}}
  template:
    metadata: {labels: {app: py-rs}}
    spec: {containers: [{name: c, image: "nginx:1.27"}]}
"""


@pytest.fixture(scope="module")
def api(kubeconfig: Path) -> k8s_client.ApiClient:
    return k8s_config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture(params=sorted(KUBECTLS))
def kubectl(request: pytest.FixtureRequest, kubeconfig: Path
            ) -> Callable[..., subprocess.CompletedProcess[str]]:
    binary = KUBECTLS[request.param]
    if not os.access(binary, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"kubectl {request.param} is required in CI")
        pytest.skip(f"no kubectl {request.param}")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}

    def run(*args: str, stdin: str | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True,
                              env=env, timeout=30, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc
    run.version = request.param  # type: ignore[attr-defined]
    run.binary = binary  # type: ignore[attr-defined]
    return run


def test_kubectl_scale_and_server_side_apply_with_its_conflict(srv: server.ModelServer,
                                                               kubectl: Any) -> None:
    name = "ssa-" + kubectl.version.replace(".", "")
    manifest = DEPLOYMENT.format(name=name, replicas=2, image="nginx:1.27")
    out = kubectl("apply", "--server-side", "-f", "-", stdin=manifest).stdout
    assert f"deployment.apps/{name} serverside-applied" in out
    kubectl("scale", "deployment", name, "--replicas=4")
    held = model_get(srv, "deployments", "default", name, "apps")
    assert held["spec"]["replicas"] == 4
    managers = {(e["manager"], e["operation"], e.get("subresource", ""))
                for e in held["metadata"]["managedFields"]}
    # kubectl's User-Agent (and so the manager of its writes without --field-manager) is its
    # binary's name; apply's manager is "kubectl" by default
    agent = Path(kubectl.binary).name
    assert ("kubectl", "Apply", "") in managers and (agent, "Update", "scale") in managers
    refused = kubectl("apply", "--server-side", "-f", "-", stdin=manifest, check=False)
    assert refused.returncode != 0
    assert (f'Apply failed with 1 conflict: conflict with "{agent}" with subresource "scale" '
            'using apps/v1: .spec.replicas') in refused.stderr
    assert model_get(srv, "deployments", "default", name, "apps")["spec"]["replicas"] == 4
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=manifest)
    assert model_get(srv, "deployments", "default", name, "apps")["spec"]["replicas"] == 2
    scale = json.loads(kubectl("get", "--raw", f"/apis/apps/v1/namespaces/default/"
                               f"deployments/{name}/scale").stdout)
    assert (scale["kind"], scale["spec"], scale["status"]["selector"]) == (
        "Scale", {"replicas": 2}, f"app={name}")


def test_kubectl_diff_and_server_dry_run_change_nothing(srv: server.ModelServer,
                                                        kubectl: Any) -> None:
    name = "diff-" + kubectl.version.replace(".", "")
    kubectl("apply", "-f", "-", stdin=DEPLOYMENT.format(name=name, replicas=1,
                                                         image="nginx:1.27"))
    before = model_get(srv, "deployments", "default", name, "apps")
    changed = DEPLOYMENT.format(name=name, replicas=3, image="nginx:1.28")
    for args in (("diff", "-f", "-"), ("diff", "--server-side", "--force-conflicts", "-f", "-")):
        proc = kubectl(*args, stdin=changed, check=False)
        assert proc.returncode == 1, proc.stderr  # 1: there are differences
        assert "-  replicas: 1\n+  replicas: 3" in proc.stdout
        assert "-      - image: nginx:1.27\n+      - image: nginx:1.28" in proc.stdout
    assert "(server dry run)" in kubectl("delete", "deployment", name,
                                         "--dry-run=server").stdout
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=changed)
    kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-",
            stdin=changed)
    after = model_get(srv, "deployments", "default", name, "apps")
    # the Deployment controller goes on writing status; what a dry run would have changed is
    # the spec (and with it the generation)
    assert (after["spec"], after["metadata"]["generation"]) == (
        before["spec"], before["metadata"]["generation"])
    fresh = kubectl("diff", "-f", "-", stdin=DEPLOYMENT.format(name=f"{name}-new", replicas=1,
                                                                image="nginx:1.27"), check=False)
    assert fresh.returncode == 1 and "+  replicas: 1" in fresh.stdout  # a dry-run create
    assert f"{name}-new" not in model_names(srv, "deployments", "default", "apps")


def test_kubectl_prints_the_servers_tables(srv: server.ModelServer, kubectl: Any) -> None:
    suffix = kubectl.version.replace(".", "")
    kubectl("apply", "-f", "-", stdin=MULTI.replace("py-", f"t{suffix}-"))
    out = kubectl("get", "secret,configmap", "-o", "wide").stdout
    assert f"secret/t{suffix}-secret" in out and "TYPE" in out and "DATA" in out
    assert [f"configmap/t{suffix}-config", "2"] in [line.split()[:2] for line in
                                                    out.splitlines()]
    # and the root CA the root-ca-cert-publisher writes into every namespace
    assert ["configmap/kube-root-ca.crt", "1"] in [line.split()[:2] for line in
                                                   out.splitlines()]
    roles = kubectl("get", "clusterroles").stdout.splitlines()
    assert roles[0].split() == ["NAME", "CREATED", "AT"]
    # kubectl follows the tables' continue tokens page by page
    paged = kubectl("get", "clusterroles", "--chunk-size=2", "--no-headers").stdout.split("\n")
    assert sorted(line.split()[0] for line in paged if line) == model_names(
        srv, "clusterroles", group="rbac.authorization.k8s.io")
    events = wait_for(lambda: (o := kubectl("get", "events").stdout) and
                      "Scheduled" in o and o)
    assert events.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT",
                                              "MESSAGE"]


@pytest.mark.slow
def test_python_client_create_from_yaml_and_status_fields(srv: server.ModelServer,
                                                          api: k8s_client.ApiClient,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "multi.yaml"
    path.write_text(MULTI)
    created = k8s_utils.create_from_yaml(api, str(path), namespace="default")
    assert len(created) == 3
    rs = k8s_client.AppsV1Api(api).read_namespaced_replica_set("py-rs", "default")
    assert rs.status.replicas is not None
    secret = model_get(srv, "secrets", "default", "py-secret")
    assert secret["data"] == {"password": "aHVudGVyMg=="} and "stringData" not in secret


def test_python_client_pages_deletes_collections_and_reads_events_v1(
        srv: server.ModelServer, api: k8s_client.ApiClient) -> None:
    v1 = k8s_client.CoreV1Api(api)
    for i in range(3):
        v1.create_namespaced_config_map("default", {"metadata": {
            "name": f"page-{i}", "labels": {"set": "paged"}}})
    first = v1.list_namespaced_config_map("default", label_selector="set=paged", limit=2)
    assert [c.metadata.name for c in first.items] == ["page-0", "page-1"]
    rest = v1.list_namespaced_config_map("default", label_selector="set=paged", limit=2,
                                         _continue=first.metadata._continue)
    assert [c.metadata.name for c in rest.items] == ["page-2"] and not rest.metadata._continue
    v1.delete_collection_namespaced_config_map("default", label_selector="set=paged")
    assert not [n for n in model_names(srv, "configmaps", "default") if n.startswith("page-")]
    v1.create_namespaced_config_map("default", {"metadata": {"name": "to-delete"}})
    status = v1.delete_namespaced_config_map("to-delete", "default")  # the client's "object"
    assert (status["kind"], status["status"], status["details"]["name"]) == (
        "Status", "Success", "to-delete")
    # events.k8s.io/v1 requires eventTime, which the core API's recorders leave unset (the
    # Python client refuses those on a real cluster too): a namespace of new-style events
    v1.create_namespace({"metadata": {"name": "events-v1"}})
    ev1 = k8s_client.EventsV1Api(api)
    ev1.create_namespaced_event("events-v1", {
        "metadata": {"name": "checked"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "example.com/checker", "reportingInstance": "checker-1",
        "action": "Check", "reason": "Checked", "type": "Normal", "note": "all good",
        "regarding": {"kind": "Namespace", "name": "events-v1"}})
    [event] = ev1.list_namespaced_event("events-v1").items
    assert (event.note, event.regarding.name) == ("all good", "events-v1")
    core = model_get(srv, "events", "events-v1", "checked")
    assert (core["message"], core["involvedObject"]["name"]) == ("all good", "events-v1")


def test_a_chunked_request_body_is_read(srv: server.ModelServer) -> None:
    ctx = ssl.create_default_context(cadata=srv.pki.ca.cert_pem.decode())
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=5)
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "chunked"}, "data": {"k": "v"}}).encode()
    conn.putrequest("POST", "/api/v1/namespaces/default/configmaps")
    conn.putheader("Authorization", f"Bearer {srv.token}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for part in (body[:10], body[10:]):
        conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
    conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    assert resp.status == 201, resp.read()
    assert model_get(srv, "configmaps", "default", "chunked")["data"] == {"k": "v"}


def test_an_apply_body_may_be_yaml(srv: server.ModelServer) -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n"
    code, out = raw(srv, "PATCH", "/api/v1/namespaces/default/configmaps/from-yaml"
                    "?fieldManager=yaml-writer", body, content_type="application/apply-patch+yaml")
    assert code == 201, out
    held = model_get(srv, "configmaps", "default", "from-yaml")
    assert held["data"] == {"k": "v"}
    assert [(e["manager"], e["operation"]) for e in held["metadata"]["managedFields"]] == [
        ("yaml-writer", "Apply")]
    code, out = raw(srv, "PATCH", "/api/v1/namespaces/default/configmaps/from-yaml"
                    "?fieldManager=yaml-writer", b"data: [unclosed",
                    content_type="application/apply-patch+yaml")
    assert (code, out["reason"]) == (400, "BadRequest")
