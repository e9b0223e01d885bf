"""``k8sbook serve`` driven by real clients: the official Python client and kubectl.

A model cluster (with whatever kubelets, scheduler and controller manager the package has) is
served on a free loopback port in this process; each test compares what a client returns or
prints with what the model holds. kubectl tests need a ``kubectl`` binary: they are skipped
without one, except in CI (``CI=true``), where a missing kubectl fails them.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException

from k8sbook.api import strategicpatch
from k8sbook.api.objects import node as node_object
from k8sbook.api.resources import RESOURCES, by_plural
from k8sbook.serve import printers, server


@pytest.fixture(scope="module")
def api(kubeconfig: Path) -> k8s_client.ApiClient:
    return k8s_config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture()
def kubectl(kubeconfig: Path, kubectl_bin: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """kubectl ``kubectl_bin`` (each version found: tests/serve/conftest.py), failing on a
    non-zero exit unless ``check=False``."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}

    def run(*args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 20) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([kubectl_bin, *args], input=stdin, capture_output=True,
                              text=True, env=env, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc
    run.binary = kubectl_bin  # type: ignore[attr-defined]
    return run


def model_get(srv: server.ModelServer, plural: str, namespace: str, name: str,
              group: str = "") -> dict[str, Any] | None:
    rt = by_plural(group, plural)
    assert rt is not None
    with srv.model() as cluster:
        return cluster.apiserver.storage.get(rt.key(namespace, name))


def model_names(srv: server.ModelServer, plural: str, namespace: str = "",
                group: str = "") -> list[str]:
    rt = by_plural(group, plural)
    assert rt is not None
    with srv.model() as cluster:
        items, _ = cluster.apiserver.storage.list(rt.prefix(namespace))
    return sorted(o["metadata"]["name"] for o in items)


def wait_for(cond: Callable[[], Any], timeout: float = 8.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def raw(srv: server.ModelServer, method: str, path: str, body: bytes | None = None, *,
        token: str | None = "admin", content_type: str = "application/json") -> tuple[int, Any]:
    """A bare HTTPS request (trusting the cluster CA), authenticated by bearer token."""
    ctx = ssl.create_default_context(cadata=srv.pki.ca.cert_pem.decode())
    req = urllib.request.Request(srv.url + path, data=body, method=method)
    req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Bearer {srv.token if token == 'admin' else token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            data = resp.read()
            code = resp.status
    except urllib.error.HTTPError as err:
        data, code = err.read(), err.code
    try:
        return code, json.loads(data)
    except json.JSONDecodeError:
        return code, data.decode()


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                     "env": [{"name": "MODE", "value": "test"}]}]}}


# -- the Python client --------------------------------------------------------------------------
def test_discovery_matches_the_resource_table(api: k8s_client.ApiClient) -> None:
    assert k8s_client.VersionApi(api).get_code().git_version.startswith(
        server.KUBERNETES_VERSION)
    groups = {g.name for g in k8s_client.ApisApi(api).get_api_versions().groups}
    # the built-in groups, and metrics-server's, which kube-aggregator adds for its APIService
    assert groups == {rt.group for rt in RESOURCES if rt.group} | {"metrics.k8s.io"}
    core = k8s_client.CoreV1Api(api).get_api_resources()
    names = {r.name: r for r in core.resources}
    assert {rt.plural for rt in RESOURCES if not rt.group} <= set(names)
    assert names["pods"].short_names == ["po"] and names["pods"].namespaced
    assert (names["pods/eviction"].group, names["pods/eviction"].kind) == ("policy", "Eviction")
    assert names["pods/binding"].verbs == ["create"]
    assert "pods/log" in names  # the apiserver->kubelet path exists in the package


def test_python_client_create_list_patch_delete(srv: server.ModelServer,
                                                api: k8s_client.ApiClient) -> None:
    v1 = k8s_client.CoreV1Api(api)
    created = v1.create_namespaced_pod("default", pod("py-a", tier="web"))
    stored = model_get(srv, "pods", "default", "py-a")
    assert stored is not None and created.metadata.uid == stored["metadata"]["uid"]
    listed = v1.list_namespaced_pod("default", label_selector="tier=web")
    assert [p.metadata.name for p in listed.items] == ["py-a"]
    # a dict body is sent as a strategic merge patch: containers merge by name, env survives
    patched = v1.patch_namespaced_pod("py-a", "default", {
        "metadata": {"labels": {"extra": "yes"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}})
    stored = model_get(srv, "pods", "default", "py-a")
    assert stored is not None
    assert stored["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert stored["spec"]["containers"][0]["env"] == [{"name": "MODE", "value": "test"}]
    assert patched.metadata.labels == stored["metadata"]["labels"] == {
        "tier": "web", "extra": "yes"}
    # a list body is a JSON patch
    v1.patch_namespaced_pod("py-a", "default", [{"op": "remove", "path": "/metadata/labels/extra"}])
    assert model_get(srv, "pods", "default", "py-a")["metadata"]["labels"] == {"tier": "web"}
    v1.delete_namespaced_pod("py-a", "default", grace_period_seconds=0)
    wait_for(lambda: model_get(srv, "pods", "default", "py-a") is None)
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod("py-a", "default")
    assert err.value.status == 404
    assert json.loads(err.value.body)["reason"] == "NotFound"


def test_watch_resumes_from_a_resource_version_and_gets_410_after_compaction(
        srv: server.ModelServer, api: k8s_client.ApiClient) -> None:
    v1 = k8s_client.CoreV1Api(api)
    start = v1.list_namespaced_config_map("default").metadata.resource_version
    for name in ("w-1", "w-2"):
        v1.create_namespaced_config_map("default", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"k": name}})
    seen = []
    w = k8s_watch.Watch()
    for event in w.stream(v1.list_namespaced_config_map, "default", resource_version=start,
                          timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name,
                     event["object"].metadata.resource_version))
        if len(seen) == 2:
            w.stop()
    assert [s[:2] for s in seen] == [("ADDED", "w-1"), ("ADDED", "w-2")]
    assert seen[1][2] == model_get(srv, "configmaps", "default", "w-2")["metadata"][
        "resourceVersion"]
    # resuming from the first event's version delivers only what came after it
    w = k8s_watch.Watch()
    for event in w.stream(v1.list_namespaced_config_map, "default",
                          resource_version=seen[0][2], timeout_seconds=5):
        assert (event["type"], event["object"].metadata.name) == ("ADDED", "w-2")
        w.stop()
    with srv.model() as cluster:
        cluster.apiserver.compact()
    with pytest.raises(ApiException) as err:
        for _ in k8s_watch.Watch().stream(v1.list_namespaced_config_map, "default",
                                          resource_version=start, timeout_seconds=5):
            pass
    assert err.value.status == 410


def test_errors_are_status_objects_and_the_server_keeps_serving(
        srv: server.ModelServer) -> None:
    before = model_names(srv, "configmaps", "default")
    code, body = raw(srv, "POST", "/api/v1/namespaces/default/configmaps", b"{not json")
    assert (code, body["kind"], body["reason"]) == (400, "Status", "BadRequest")
    code, body = raw(srv, "GET", "/api/v1/namespaces/default/widgets")
    assert (code, body["reason"]) == (404, "NotFound")
    code, body = raw(srv, "GET", "/apis/example.com/v1/things")
    assert code == 404
    code, body = raw(srv, "GET", "/api/v1/namespaces/default/pods", token="wrong")
    assert (code, body["reason"]) == (401, "Unauthorized")
    code, body = raw(srv, "GET", "/api/v1/namespaces/default/pods", token=None)
    assert (code, body["reason"]) == (403, "Forbidden")
    assert 'User "system:anonymous"' in body["message"]
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict"},
           "data": {"a": "b"}, "bogus": 1}
    code, body = raw(srv, "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
                     json.dumps(bad).encode())
    expected = ('ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                'strict decoding error: unknown field "bogus"')
    assert (code, body["message"]) == (400, expected)
    code, body = raw(srv, "GET", "/api/v1/namespaces/default/pods/nope/exec-not")
    assert (code, body["reason"]) == (404, "NotFound")
    code, body = raw(srv, "DELETE", "/api/v1/namespaces/default/configmaps?labelSelector=none=x")
    assert (code, body["kind"], body["items"]) == (200, "ConfigMapList", [])  # deletecollection
    code, body = raw(srv, "POST", "/api/v1/namespaces/default/configmaps", b"k8s\x00\x01",
                     content_type="application/vnd.kubernetes.protobuf")
    assert (code, body["reason"]) == (400, "BadRequest")  # a protobuf body that does not decode
    code, body = raw(srv, "POST", "/api/v1/namespaces/default/configmaps", b"kind: ConfigMap",
                     content_type="text/plain")
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")
    assert model_names(srv, "configmaps", "default") == before  # nothing was written
    # Warn: the write succeeds and each unknown field comes back as a Warning header
    ctx = ssl.create_default_context(cadata=srv.pki.ca.cert_pem.decode())
    req = urllib.request.Request(
        srv.url + "/api/v1/namespaces/default/configmaps?fieldValidation=Warn",
        data=json.dumps({**bad, "metadata": {"name": "warned"}}).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {srv.token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
        assert resp.status == 201
        assert resp.headers.get_all("Warning") == ['299 - "unknown field \\"bogus\\""']
    assert "warned" in model_names(srv, "configmaps", "default")
    assert raw(srv, "GET", "/healthz") == (200, "ok")
    assert raw(srv, "GET", "/version")[1]["gitVersion"].startswith(server.KUBERNETES_VERSION)


# -- kubectl ------------------------------------------------------------------------------------
WEB = """\
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
"""


def test_kubectl_api_resources_and_get(srv: server.ModelServer, kubectl: Any) -> None:
    out = kubectl("api-resources", "--no-headers", "-o", "name").stdout.split()
    assert sorted(out) == sorted([rt.group_resource for rt in RESOURCES] +
                                 ["nodes.metrics.k8s.io", "pods.metrics.k8s.io"])
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)
    assert sorted(n["metadata"]["name"] for n in nodes["items"]) == model_names(srv, "nodes")
    ns = yaml.safe_load(kubectl("get", "namespace", "kube-system", "-o", "yaml").stdout)
    held = model_get(srv, "namespaces", "", "kube-system")
    assert held["metadata"].pop("managedFields")  # kubectl hides them (--show-managed-fields)
    assert ns == held
    wide = kubectl("get", "services", "-A", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP",
                               "PORT(S)", "AGE", "SELECTOR"]
    svc = model_get(srv, "services", "default", "kubernetes")
    assert wide[1].split()[:6] == ["default", "kubernetes", "ClusterIP",
                                   svc["spec"]["clusterIP"], "<none>", "443/TCP"]


def test_kubectl_create_apply_describe_delete(srv: server.ModelServer, kubectl: Any) -> None:
    assert kubectl("create", "-f", "-", stdin=WEB).stdout.split("\n")[:2] == [
        "replicaset.apps/web created", "service/web created"]
    rs = model_get(srv, "replicasets", "default", "web", "apps")
    assert rs is not None and rs["spec"]["replicas"] == 2
    # client-side apply: a strategic merge patch built from the last-applied annotation
    changed = WEB.replace("replicas: 2", "replicas: 3").replace("nginx:1.27", "nginx:1.28")
    out = kubectl("apply", "-f", "-", stdin=changed).stdout
    assert "replicaset.apps/web configured" in out
    rs = model_get(srv, "replicasets", "default", "web", "apps")
    assert rs is not None and rs["spec"]["replicas"] == 3
    container = rs["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["ports"]) == ("nginx:1.28", [
        {"containerPort": 80, "protocol": "TCP"}])
    applied = json.loads(rs["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert applied["spec"]["replicas"] == 3
    labelled = kubectl("get", "replicasets", "-l", "app=web", "-o", "name").stdout.split()
    assert labelled == ["replicaset.apps/web"]
    described = kubectl("describe", "service", "web").stdout
    svc = model_get(srv, "services", "default", "web")
    assert f"IP:                       {svc['spec']['clusterIP']}" in described
    assert "Selector:                 app=web" in described
    kubectl("delete", "-f", "-", stdin=changed)
    assert model_get(srv, "services", "default", "web") is None
    assert model_get(srv, "replicasets", "default", "web", "apps") is None
    bad = kubectl("create", "-f", "-", stdin=WEB.replace("  replicas: 2", "  replica: 2"),
                  check=False)
    assert bad.returncode == 1
    assert 'strict decoding error: unknown field "spec.replica"' in bad.stderr
    kubectl("delete", "service", "web")  # the manifest's valid Service was created


def test_kubectl_watch_sees_a_pod_go_pending_then_running(srv: server.ModelServer,
                                                          kubectl: Any,
                                                          kubeconfig: Path) -> None:
    if not {"kubelet", "kube-scheduler"} <= set(srv.attached):
        pytest.skip("needs the model's kubelet and scheduler")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    watcher = subprocess.Popen([kubectl.binary, "get", "pods", "--watch",
                                "--request-timeout=4s", "-l", "app=watched"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    time.sleep(0.5)
    kubectl("create", "-f", "-", stdin=json.dumps(pod("watched")))
    wait_for(lambda: (model_get(srv, "pods", "default", "watched") or {}).get(
        "status", {}).get("phase") == "Running")
    time.sleep(0.3)
    watcher.terminate()
    out, _ = watcher.communicate(timeout=5)
    statuses = [line.split()[2] for line in out.splitlines()[1:] if line.startswith("watched")]
    assert statuses[0] == "Pending" and statuses[-1] == "Running"
    logs = kubectl("logs", "watched").stdout
    assert logs  # served by the pod's kubelet through kube-apiserver
    kubectl("delete", "pod", "watched", "--grace-period=0", "--force")


def test_kubectl_cordon_and_drain_use_patch_and_eviction(srv: server.ModelServer,
                                                         kubectl: Any) -> None:
    with srv.model() as cluster:
        nodes = [n["metadata"]["name"] for n in cluster.apiserver.cached_objects("nodes")]
        if "node-z" not in nodes:
            cluster.admin().create(node_object("node-z"))
    kubectl("create", "-f", "-", stdin=json.dumps(
        {**pod("evictee"), "spec": {**pod("evictee")["spec"], "nodeName": "node-z"}}))
    assert kubectl("cordon", "node-z").stdout.strip() == "node/node-z cordoned"
    assert model_get(srv, "nodes", "", "node-z")["spec"]["unschedulable"] is True
    out = kubectl("drain", "node-z", "--force", "--grace-period=0", "--timeout=10s")
    assert "evicting pod default/evictee" in out.stderr + out.stdout
    assert "node/node-z drained" in out.stdout
    assert model_get(srv, "pods", "default", "evictee") is None
    kubectl("delete", "node", "node-z")


def test_k8sbook_serve_writes_a_kubeconfig_and_prints_the_kubectl_line(
        kubectl: Any, tmp_path: Path) -> None:
    """The command a reader runs: one line to copy, and kubectl works with it."""
    config = tmp_path / "k8sbook.kubeconfig"
    proc = subprocess.Popen([sys.executable, "-m", "k8sbook.cli", "serve", "--port", "0",
                             "--kubeconfig", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        line = proc.stdout.readline().strip()
        assert banner.startswith("k8sbook: the model's kube-apiserver is serving on "
                                 "https://127.0.0.1:")
        assert line == f"KUBECONFIG={config} kubectl get nodes"
        out = subprocess.run([kubectl.binary, "get", "namespaces", "-o", "name"],
                             env={**os.environ, "KUBECONFIG": str(config)}, capture_output=True,
                             text=True, timeout=20, check=True).stdout.split()
        assert "namespace/kube-system" in out
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and rest.strip() == "k8sbook: stopping"


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT while inherited as ignored"])
def test_k8sbook_serve_stops_on_sigterm_and_on_an_inherited_ignored_sigint(
        how: str, tmp_path: Path) -> None:
    """As SetupSignalHandler: SIGTERM stops it, and so does ^C from a shell whose background
    jobs start with SIGINT ignored (CPython would otherwise keep ignoring it)."""
    ignore = how.startswith("SIGINT")
    command = [sys.executable, "-m", "k8sbook.cli", "serve", "--port", "0",
               "--kubeconfig", str(tmp_path / "k8sbook.kubeconfig")]
    if ignore:  # what a shell without job control does to a background job's SIGINT
        command = ["bash", "-c", 'trap "" INT; exec "$0" "$@"', *command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("k8sbook: the model's kube-apiserver")
        proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT if ignore else signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and rest.strip() == "k8sbook: stopping"


# -- pieces without a server --------------------------------------------------------------------
def test_strategic_merge_patch_merges_lists_by_key() -> None:
    rs = {"kind": "ReplicaSet", "metadata": {"finalizers": ["a"]}, "spec": {"template": {
        "spec": {"containers": [
            {"name": "a", "image": "x:1", "ports": [{"containerPort": 80, "name": "http"}],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "b", "image": "y:1"}]}}}}
    out = strategicpatch.strategic_merge_patch(rs, {
        "metadata": {"finalizers": ["b"]},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [
                {"name": "a", "ports": [{"containerPort": 8080}],
                 "env": [{"name": "A", "$patch": "delete"}]},
                {"name": "c", "image": "z:1"}]}}}})
    containers = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["b", "a", "c"]
    assert containers[1]["ports"] == [{"containerPort": 80, "name": "http"},
                                      {"containerPort": 8080}]
    assert containers[1]["env"] == [{"name": "B", "value": "2"}]
    assert out["metadata"]["finalizers"] == ["a", "b"]
    assert rs["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"] == "A"  # untouched
    # lists without a merge key replace; $retainKeys drops what it does not list
    dep = {"kind": "Deployment", "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate":
                                                       {"maxSurge": 1}}}}
    out = strategicpatch.strategic_merge_patch(dep, {"spec": {"strategy": {
        "$retainKeys": ["type"], "type": "Recreate"}}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    with pytest.raises(ValueError, match="does not contain declared merge key: name"):
        strategicpatch.strategic_merge_patch(rs, {"spec": {"template": {"spec": {
            "containers": [{"image": "q"}]}}}})


def test_merge_keys_agree_with_the_official_schema() -> None:
    """Every list the table merges carries the same patch merge key in the upstream OpenAPI
    (``x-kubernetes-patch-merge-key``, shipped in kubernetes-validate's schemas)."""
    from kubernetes_validate import utils

    defs = utils.schema_contents("kubernetes-json-schema/v1.35.0-local/_definitions.json",
                                 "1.35.0")["$defs"]

    def key_of(definition: str, field: str) -> str | None:
        return defs[definition]["properties"][field].get("x-kubernetes-patch-merge-key")
    for field, key in strategicpatch.POD_SPEC_LISTS.items():
        assert key_of("io.k8s.api.core.v1.PodSpec", field) == key, field
    for field, key in strategicpatch.CONTAINER_LISTS.items():
        assert key_of("io.k8s.api.core.v1.Container", field) == key, field
    assert key_of("io.k8s.api.core.v1.ServiceSpec", "ports") == "port"
    assert key_of("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences") == "uid"
    assert key_of("io.k8s.api.core.v1.PodStatus", "conditions") == "type"
    assert key_of("io.k8s.api.core.v1.NodeStatus", "addresses") == "type"
    assert defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"][
        "finalizers"].get("x-kubernetes-patch-strategy") == "merge"


def test_human_duration_matches_apimachinery() -> None:
    cases = {0: "0s", 59: "59s", 119: "119s", 120: "2m", 125: "2m5s", 600: "10m",
             3 * 3600: "3h", 3 * 3600 + 300: "3h5m", 9 * 3600: "9h", 50 * 3600: "2d2h",
             10 * 86400: "10d", 800 * 86400: "2y70d"}
    assert {s: printers.human_duration(s) for s in cases} == cases


def test_paths_map_to_resources() -> None:
    route = server.parse_path("/api/v1/namespaces/default/pods/web-1/eviction")
    assert isinstance(route, server.Route)
    assert (route.rt.plural, route.namespace, route.name, route.subresource) == (
        "pods", "default", "web-1", "eviction")
    route = server.parse_path("/api/v1/namespaces/kube-system/status")
    assert isinstance(route, server.Route)
    assert (route.rt.plural, route.name, route.subresource) == ("namespaces", "kube-system",
                                                                "status")
    route = server.parse_path("/apis/apps/v1/watch/namespaces/default/replicasets")
    assert isinstance(route, server.Route) and route.watch_path
    assert server.parse_path("/api/v2/pods") is None
    assert server.parse_path("/apis/apps/v1/namespaces/default/pods") is None
    assert server.wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert not server.wants_table("application/json")
