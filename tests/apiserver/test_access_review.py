"""Asking the apiserver about oneself (apiserver/access_review.py): the reviews are answered by
the apiserver's own authorizers (Node, RBAC) for the requesting user, never stored; and the real
kubectl 1.32 and 1.37 (``auth can-i``, ``auth can-i --list``, ``auth whoami``) read them."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from k8sbook.api import objects
from k8sbook.api.request import ClientCertificate, Request
from k8sbook.client.rest import Client
from k8sbook.cluster import Cluster
from k8sbook.serve import server
from tests.helpers import snapshot, status_error
from tests.serve.conftest import KUBECTLS as FOUND
from tests.serve.conftest import REQUIRED

AUTHZ = "authorization.k8s.io"


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster(0)
    c.admin().create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                      "metadata": {"name": "pod-reader", "namespace": "default"},
                      "rules": [{"apiGroups": [""], "resources": ["pods"],
                                 "verbs": ["get", "list"]}]})
    c.admin().create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                      "metadata": {"name": "bob-reads", "namespace": "default"},
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "pod-reader"},
                      "subjects": [{"kind": "User", "name": "bob",
                                    "apiGroup": "rbac.authorization.k8s.io"}]})
    return c


def as_user(cluster: Cluster, name: str, *groups: str) -> Client:
    return cluster.client("kubectl", ClientCertificate(name, groups))


def ssar(client: Client, **attrs: str) -> dict[str, Any]:
    body = {"apiVersion": f"{AUTHZ}/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}
    return client.request(Request("create", "selfsubjectaccessreviews", AUTHZ, body=body))


def test_self_subject_access_review_asks_rbac_for_the_caller(cluster: Cluster) -> None:
    bob = as_user(cluster, "bob")
    before = snapshot(cluster)
    allowed = ssar(bob, verb="get", resource="pods", namespace="default")
    assert allowed["status"] == {"allowed": True,
                                 "reason": 'RBAC: allowed by RoleBinding "bob-reads/default"'}
    assert ssar(bob, verb="delete", resource="pods", namespace="default")["status"] == \
        {"allowed": False}
    assert ssar(bob, verb="get", resource="pods", namespace="kube-system")["status"][
        "allowed"] is False
    nonres = bob.request(Request("create", "selfsubjectaccessreviews", AUTHZ, body={
        "spec": {"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}}))
    assert nonres["status"]["allowed"] is True  # system:public-info-viewer
    assert snapshot(cluster) == before  # evaluated, never stored


def test_bad_reviews_are_invalid_and_change_nothing(cluster: Cluster) -> None:
    bob = as_user(cluster, "bob")
    before = snapshot(cluster)
    code, message = status_error(lambda: bob.request(Request(
        "create", "selfsubjectaccessreviews", AUTHZ, body={"spec": {}})))
    assert (code, message) == (422, ('SelfSubjectAccessReview.authorization.k8s.io "" is '
                                     "invalid: spec.resourceAttributes: Invalid value: null: "
                                     "exactly one of nonResourceAttributes or "
                                     "resourceAttributes must be specified"))
    code, message = status_error(lambda: bob.request(Request(
        "create", "selfsubjectaccessreviews", AUTHZ, body={
            "metadata": {"name": "mine"},
            "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}})))
    assert (code, message.split(": ", 1)[1]) == (
        422, 'metadata: Invalid value: {"name":"mine","creationTimestamp":null}: must be empty')
    code, message = status_error(lambda: bob.request(Request(
        "create", "selfsubjectrulesreviews", AUTHZ, body={"spec": {}})))
    assert (code, message) == (400, "no namespace on request")
    code, _ = status_error(lambda: cluster.admin().request(Request(
        "create", "localsubjectaccessreviews", AUTHZ, "default", body={"spec": {
            "user": "bob", "resourceAttributes": {"verb": "get", "resource": "pods",
                                                  "namespace": "other"}}})))
    assert code == 422
    assert snapshot(cluster) == before


def test_local_subject_access_review_names_any_user_in_one_namespace(cluster: Cluster) -> None:
    review = cluster.admin().request(Request(
        "create", "localsubjectaccessreviews", AUTHZ, "default", body={"spec": {
            "user": "bob", "resourceAttributes": {"verb": "list", "resource": "pods",
                                                  "namespace": "default"}}}))
    assert review["status"]["allowed"] is True
    assert review["metadata"]["namespace"] == "default"
    # bob may not ask about others: only system:basic-user's self reviews are his
    code, _ = status_error(lambda: as_user(cluster, "bob").request(Request(
        "create", "localsubjectaccessreviews", AUTHZ, "default", body={"spec": {
            "user": "alice", "resourceAttributes": {"verb": "list", "resource": "pods",
                                                    "namespace": "default"}}})))
    assert code == 403


def test_rules_review_lists_rbac_rules_and_a_node_is_incomplete(cluster: Cluster) -> None:
    rules = as_user(cluster, "bob").request(Request(
        "create", "selfsubjectrulesreviews", AUTHZ, body={"spec": {"namespace": "default"}}))
    status = rules["status"]
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]} in \
        status["resourceRules"]
    assert {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
            "resources": ["selfsubjectreviews"]} in status["resourceRules"]
    assert status["incomplete"] is False
    node = as_user(cluster, "system:node:node-a", "system:nodes")
    status = node.request(Request("create", "selfsubjectrulesreviews", AUTHZ,
                                  body={"spec": {"namespace": "default"}}))["status"]
    assert (status["incomplete"], status["evaluationError"]) == (
        True, "node authorizer does not support user rule resolution")
    # and a SelfSubjectAccessReview of a node is answered by the Node authorizer
    cluster.admin().create(objects.node("node-a"))
    got = ssar(node, verb="get", resource="nodes", name="node-a")
    assert got["status"]["allowed"] is True


def test_self_subject_review_says_who_the_caller_is(cluster: Cluster) -> None:
    review = as_user(cluster, "bob", "devs").request(Request(
        "create", "selfsubjectreviews", "authentication.k8s.io", body={}))
    assert review["status"]["userInfo"] == {"username": "bob",
                                            "groups": ["devs", "system:authenticated"]}
    assert review["metadata"]["creationTimestamp"] == cluster.clock.timestamp()


# -- the real kubectl ---------------------------------------------------------------------
#: both versions (None: not on this machine), found as ``tests/serve/conftest.py`` finds them
KUBECTLS = {v: FOUND.get(v) for v in REQUIRED}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[server.ModelServer,
                                                                       Path]]:
    with server.ModelServer(seed=0) as s:
        with s.model() as c:
            c.admin().create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                              "metadata": {"name": "bob-views", "namespace": "default"},
                              "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                          "kind": "ClusterRole", "name": "system:discovery"},
                              "subjects": [{"kind": "User", "name": "bob",
                                            "apiGroup": "rbac.authorization.k8s.io"}]})
        yield s, s.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.mark.parametrize("version", sorted(KUBECTLS))
def test_kubectl_auth_can_i_and_whoami(served: tuple[server.ModelServer, Path],
                                       version: str) -> None:
    binary = KUBECTLS[version]
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"kubectl {version} is required in CI")
        pytest.skip(f"no kubectl {version}")
    _srv, kubeconfig = served

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "KUBECONFIG": str(kubeconfig)}, check=False)

    yes = kubectl("auth", "can-i", "delete", "nodes")
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes")  # cluster-admin
    no = kubectl("auth", "can-i", "delete", "pods", "--as", "bob")
    assert (no.returncode, no.stdout.strip()) == (1, "no")
    listed = kubectl("auth", "can-i", "--list", "--as", "bob")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows
    whoami = kubectl("auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    info = json.loads(whoami.stdout)["status"]["userInfo"]
    assert info == {"username": "kubernetes-admin",
                    "groups": ["kubeadm:cluster-admins", "system:authenticated"]}
    node = kubectl("auth", "can-i", "--list", "--as", "system:node:node-a",
                   "--as-group", "system:nodes")
    assert "node authorizer does not support user rule resolution" in node.stderr
