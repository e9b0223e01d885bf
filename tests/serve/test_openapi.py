"""The OpenAPI documents of ``k8sbook serve`` (serve/openapi.py): the official schemas as
OpenAPI v2 and v3, every reference resolvable inside its document, read by the real kubectl
1.32 and 1.37 (``kubectl explain``, field validation)."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from k8sbook.api.fieldvalidation import definitions
from k8sbook.serve import discovery, openapi, server
from tests.serve.conftest import KUBECTLS as FOUND
from tests.serve.conftest import REQUIRED

#: both versions (None: not on this machine), found as ``tests/serve/conftest.py`` finds them
KUBECTLS = {v: FOUND.get(v) for v in REQUIRED}


def refs(doc: Any) -> set[str]:
    if isinstance(doc, dict):
        return {str(v) for k, v in doc.items() if k == "$ref"} | {
            r for v in doc.values() for r in refs(v)}
    if isinstance(doc, list):
        return {r for v in doc for r in refs(v)}
    return set()


def types(doc: Any) -> set[str]:
    """Every ``type`` value in a document (a list or "null" would show as such)."""
    if isinstance(doc, dict):
        own = {json.dumps(doc["type"]).strip('"')} if isinstance(doc.get("type"), str | list) \
            else set()
        return own | {t for k, v in doc.items() if k != "properties" for t in types(v)} | {
            t for v in (doc.get("properties") or {}).values() for t in types(v)}
    if isinstance(doc, list):
        return {t for v in doc for t in types(v)}
    return set()


def test_v3_documents_carry_the_kinds_schemas_and_resolve() -> None:
    doc = discovery.openapi_v3("", "v1")
    schemas = doc["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod",
                                                       "version": "v1"}]
    assert pod["type"] == "object" and "enum" not in pod["properties"]["kind"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert (containers["x-kubernetes-patch-merge-key"], containers["items"]) == (
        "name", {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"})
    # a reference with a description beside it is wrapped, as kube-openapi writes it
    assert pod["properties"]["spec"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas
    assert types(schemas) <= {"object", "string", "integer", "number", "boolean", "array"}
    # the descriptions are the official ones
    assert pod["description"] == definitions()["io.k8s.api.core.v1.Pod"]["description"]
    apps = discovery.openapi_v3("apps", "v1")["components"]["schemas"]
    assert "io.k8s.api.apps.v1.Deployment" in apps and "io.k8s.api.core.v1.Node" not in apps


def test_v2_document() -> None:
    doc = json.loads(openapi.openapi_v2("v1.35.0"))
    assert doc["swagger"] == "2.0"
    defs = doc["definitions"]
    assert defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "type": "string", "format": "int-or-string"}
    for ref in refs(doc):
        assert ref.startswith("#/definitions/") and ref.rsplit("/", 1)[1] in defs
    spec = defs["io.k8s.api.core.v1.Pod"]["properties"]["spec"]
    assert spec["$ref"] == "#/definitions/io.k8s.api.core.v1.PodSpec"
    assert openapi.wants_v2_protobuf_only(openapi.V2_PROTOBUF)
    assert not openapi.wants_v2_protobuf_only(f"{openapi.V2_PROTOBUF},application/json")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[server.ModelServer,
                                                                       Path]]:
    with server.ModelServer(seed=0, components=False) as s:
        yield s, s.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


def test_served_documents(served: tuple[server.ModelServer, Path]) -> None:
    srv, _ = served
    ctx = ssl.create_default_context(cadata=srv.pki.ca.cert_pem.decode())

    def get(path: str, accept: str = "") -> tuple[int, Any]:
        req = urllib.request.Request(srv.url + path, headers={
            "Authorization": f"Bearer {srv.token}", **({"Accept": accept} if accept else {})})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    code, root = get("/openapi/v3")
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    code, doc = get(url)
    assert code == 200 and "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
    code, doc = get("/openapi/v2")
    assert code == 200 and "io.k8s.api.core.v1.Pod" in doc["definitions"]
    code, status = get("/openapi/v2", accept=openapi.V2_PROTOBUF)
    assert (code, status["reason"]) == (406, "NotAcceptable")
    code, status = get("/openapi/v3/apis/nope/v1")
    assert code == 404


@pytest.mark.parametrize("version", sorted(KUBECTLS))
def test_kubectl_explain_and_validation(served: tuple[server.ModelServer, Path],
                                        version: str) -> None:
    binary = KUBECTLS[version]
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"kubectl {version} is required in CI")
        pytest.skip(f"no kubectl {version}")
    _, kubeconfig = served

    def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30,
                              input=stdin, check=False,
                              env={**os.environ, "KUBECONFIG": str(kubeconfig)})

    explained = kubectl("explain", "pod.spec.containers")
    assert explained.returncode == 0, explained.stderr
    assert "FIELD: containers <[]Container>" in explained.stdout
    assert "  image\t<string>" in explained.stdout
    described = definitions()["io.k8s.api.core.v1.Container"]["properties"]["image"]
    assert described["description"].split()[:4] == \
        explained.stdout.split("image\t<string>")[1].split()[:4]
    apps = kubectl("explain", "deployments.spec.strategy.rollingUpdate.maxSurge")
    assert apps.returncode == 0 and "<IntOrString>" in apps.stdout, apps.stderr
    bad = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": f"bad-{version}"}, "bogus": 1})
    refused = kubectl("create", "-f", "-", stdin=bad)
    assert refused.returncode == 1
    assert 'unknown field "bogus"' in refused.stderr
    missing = kubectl("explain", "pod.spec.nothing")
    assert missing.returncode == 1 and 'field "nothing" does not exist' in missing.stderr
