"""Issue 14 over HTTPS: anonymous discovery, bad bearer tokens, impersonation headers, kubectl."""

from __future__ import annotations

import json
import shutil
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8sbook.api import objects
from k8sbook.serve import server
from k8sbook.serve.kubeconfig import kubectl


@pytest.fixture(scope="module")
def srv() -> Iterator[server.ModelServer]:
    with server.ModelServer(seed=0, components=False, realtime=False) as s:
        yield s


def get(srv: server.ModelServer, path: str, headers: dict[str, str] | None = None
        ) -> tuple[int, dict | str]:
    ctx = ssl.create_default_context(cadata=srv.pki.ca.cert_pem.decode())
    req = urllib.request.Request(srv.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            code, raw = resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        code, raw = err.code, err.read().decode()
    try:
        return code, json.loads(raw)
    except json.JSONDecodeError:
        return code, raw


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/version", "/version/"])
def test_anonymous_reaches_public_info(srv: server.ModelServer, path: str):
    assert get(srv, path)[0] == 200


@pytest.mark.parametrize("path", ["/api", "/apis", "/api/v1", "/apis/apps/v1", "/openapi/v3",
                                  "/"])
def test_anonymous_discovery_is_403(srv: server.ModelServer, path: str):
    code, body = get(srv, path)
    assert code == 403
    assert isinstance(body, dict)
    assert body["message"] == f'forbidden: User "system:anonymous" cannot get path "{path}"'
    assert body["reason"] == "Forbidden"


@pytest.mark.parametrize("path", ["/healthz", "/version", "/api", "/api/v1/namespaces"])
def test_bad_bearer_token_is_401_everywhere(srv: server.ModelServer, path: str):
    code, body = get(srv, path, {"Authorization": "Bearer not-a-token"})
    assert code == 401 and isinstance(body, dict) and body["message"] == "Unauthorized"


def test_good_token_reaches_discovery(srv: server.ModelServer):
    assert get(srv, "/api", {"Authorization": f"Bearer {srv.token}"})[0] == 200


def test_impersonation_headers(srv: server.ModelServer):
    token = {"Authorization": f"Bearer {srv.token}"}
    code, body = get(srv, "/api/v1/namespaces/default/pods",
                     {**token, "Impersonate-User": "alice"})
    assert code == 403 and isinstance(body, dict)
    assert body["message"] == ('pods is forbidden: User "alice" cannot list resource "pods" '
                               'in API group "" in the namespace "default"')
    assert get(srv, "/api", {**token, "Impersonate-User": "alice"})[0] == 200  # discovery
    with srv.model() as c:
        from k8sbook.api.request import Impersonation, Request
        from k8sbook.apiserver.authentication import ClientCertificate
        req = Request("list", "pods", "", "default", credentials=ClientCertificate("bob"),
                      impersonate=Impersonation("alice"))
        resp = c.apiserver.handle(req)
    assert resp.code == 403 and resp.body["message"].startswith(
        'users "alice" is forbidden: User "bob" cannot impersonate resource "users"')


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl binary on PATH")
def test_kubectl_as_alice_cannot_delete_pods(srv: server.ModelServer, tmp_path: Path):
    config = srv.write_kubeconfig(tmp_path / "config")
    with srv.model() as c:
        c.admin().create(objects.pod("web", node_name="node-a"))
    out = kubectl(config, "--as=alice", "delete", "pods", "--all")
    assert 'User "alice" cannot list resource "pods"' in out, out
    with srv.model() as c:
        assert c.admin().get("pods", "web", "default")
    assert "web" in kubectl(config, "get", "pods")  # the admin still can
