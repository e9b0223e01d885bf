"""Bad input over real HTTPS (``k8sbook serve``): the cases only the HTTP front end sees
(body size, content type, JSON text the decoder refuses, query parameters), each with
upstream's code and reason and the store unchanged; listings stay valid JSON the official
Python client reads."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from k8sbook.serve import server
from tests.helpers import snapshot

CM = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s"},"data":{"a":"1"}}'
PATH = "/api/v1/namespaces/default/configmaps"


@pytest.fixture(scope="module")
def srv() -> Iterator[server.ModelServer]:
    with server.ModelServer(seed=0, components=False) as s:
        yield s


def raw(srv: server.ModelServer, method: str, path: str, body: bytes | None = None,
        content_type: str = "application/json") -> tuple[int, dict[str, str], Any]:
    ctx = ssl.create_default_context(cadata=srv.pki.ca.cert_pem.decode())
    req = urllib.request.Request(srv.url + path, data=body, method=method)
    req.add_header("Content-Type", content_type)
    req.add_header("Authorization", f"Bearer {srv.token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=20) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


CASES = [
    ("10 MB body", "POST", PATH, (CM % "big")[:-1].encode() + b',"x":"' + b"x" * 10_000_000
     + b'"}', "application/json", 413, "RequestEntityTooLarge",
     "Request entity too large: limit is 3145728"),
    ("evil content type", "POST", PATH, (CM % "evil").encode(), "application/evil+json", 415,
     "UnsupportedMediaType", ("accepted media types include: application/json, "
     "application/yaml, application/vnd.kubernetes.protobuf")),
    ("patch with a non-patch type", "PATCH", PATH + "/base", b'{"data":{}}',
     "application/evil+json", 415, "UnsupportedMediaType",
     "application/json-patch+json, application/merge-patch+json"),
    ("NaN", "POST", PATH, (CM % "nan").replace('"1"', "NaN").encode(), "application/json", 400,
     "BadRequest", ("couldn't get version/kind; json parse error: invalid character 'N' "
     "looking for beginning of value")),
    ("Infinity", "POST", PATH, (CM % "inf")[:-1].encode() + b',"x":Infinity}',
     "application/json", 400, "BadRequest", "invalid character 'I'"),
    ("deep nesting", "POST", PATH, (CM % "deep")[:-1].encode() + b',"x":' + b"[" * 100_000
     + b"]" * 100_000 + b"}", "application/json", 400, "BadRequest", "exceeded max depth"),
    ("5000-digit integer", "POST", PATH, (CM % "num")[:-1].encode() + b',"x":' + b"9" * 5000
     + b"}", "application/json", 400, "BadRequest", "cannot unmarshal number 999"),
    ("5000-digit replicas", "POST", "/apis/apps/v1/namespaces/default/deployments",
     b'{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{'
     b'"replicas":' + b"9" * 5000 + b"}}", "application/json", 400, "BadRequest",
     "Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("name as a number", "POST", PATH, (b'{"apiVersion":"v1","kind":"ConfigMap",'
     b'"metadata":{"name":5}}'), "application/json", 400, "BadRequest",
     ("json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name of type "
     "string")),
    ("merge patch: labels as a list", "PATCH", PATH + "/base",
     b'{"metadata":{"labels":["a"]}}', "application/merge-patch+json", 422, "Invalid",
     "cannot unmarshal array into Go struct field ObjectMeta.metadata.labels"),
    ("bad labelSelector", "GET", PATH + "?labelSelector=app%3D-x", None, "application/json",
     400, "BadRequest", "unable to parse requirement: values[0][app]"),
]


@pytest.mark.parametrize(("case", "method", "path", "body", "ctype", "code", "reason", "text"),
                         CASES, ids=[c[0] for c in CASES])
def test_refused(srv: server.ModelServer, case: str, method: str, path: str,
                 body: bytes | None, ctype: str, code: int, reason: str, text: str) -> None:
    with srv.model() as cluster:
        if cluster.apiserver.storage.get("/registry/configmaps/default/base") is None:
            cluster.admin().create(json.loads(CM % "base"))
        before = snapshot(cluster)
    got, _headers, status = raw(srv, method, path, body, ctype)
    assert (got, status.get("reason")) == (code, reason), status
    assert text in status["message"], status["message"]
    with srv.model() as cluster:
        assert snapshot(cluster) == before, "a refused request changed the store"


def test_create_without_apiversion_and_kind(srv: server.ModelServer) -> None:
    code, _, obj = raw(srv, "POST", PATH, b'{"metadata":{"name":"bare"}}')
    assert code == 201 and (obj["apiVersion"], obj["kind"]) == ("v1", "ConfigMap")


@pytest.mark.parametrize(("value", "watch"), [("true", True), ("1", True), ("t", True),
                                              ("yes", True), ("false", False), ("0", False),
                                              ("FALSE", False)])
def test_watch_parameter(srv: server.ModelServer, value: str, watch: bool) -> None:
    """``Convert_Slice_string_To_bool``: only 0 and false (any case) are false."""
    raw(srv, "POST", PATH, (CM % "watched").encode())  # something for the watch to send
    ctx = ssl.create_default_context(cadata=srv.pki.ca.cert_pem.decode())
    req = urllib.request.Request(f"{srv.url}{PATH}?watch={value}&timeoutSeconds=1")
    req.add_header("Authorization", f"Bearer {srv.token}")
    with urllib.request.urlopen(req, context=ctx, timeout=20) as resp:
        first = json.loads(resp.readline())
    assert ("type" in first) is watch, first


def test_listing_stays_readable_by_the_official_client(srv: server.ModelServer,
                                                       tmp_path: Any) -> None:
    api = k8s_config.new_client_from_config(config_file=str(srv.write_kubeconfig(
        tmp_path / "config")))
    items = k8s_client.CoreV1Api(api).list_namespaced_config_map("default").items
    assert all(isinstance(i.data or {}, dict) for i in items)


def test_retry_after_header_on_429(srv: server.ModelServer) -> None:
    with srv.model() as cluster:
        apf = cluster.apiserver.flowcontrol
        apf.service_time, before = 1000.0, apf.levels["global-default"].limit
        apf.configure("global-default", concurrency=0, queue_length_limit=0)
    try:
        code, headers, status = raw(srv, "GET", PATH)
    finally:
        with srv.model() as cluster:
            apf.service_time = 0.0
            apf.configure("global-default", concurrency=before, queue_length_limit=50)
            apf.levels["global-default"].busy.clear()
    assert (code, status["reason"], headers.get("Retry-After")) == (429, "TooManyRequests", "1")
    assert status["details"]["retryAfterSeconds"] == 1
