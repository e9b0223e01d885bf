"""Bootstrap tokens: who they authenticate as, and when they stop working."""

import base64

from k8sbook.api.request import BearerToken
from k8sbook.cluster import Cluster
from tests.helpers import status_error


def whoami(c: Cluster, token: str):
    review = c.admin().create({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                               "spec": {"token": token}})
    return review["status"]


def test_bootstrap_token_authenticates_as_a_bootstrapper():
    c = Cluster(0)
    token = c.create_bootstrap_token()
    token_id = token.split(".")[0]
    status = whoami(c, token)
    assert status["user"] == {"username": f"system:bootstrap:{token_id}",
                              "groups": ["system:bootstrappers",
                                         "system:bootstrappers:kubeadm:default-node-token",
                                         "system:authenticated"]}
    as_token = c.client("kubelet/new", BearerToken(token))
    # it may create CSRs (system:node-bootstrapper) and nothing else
    code, message = status_error(lambda: as_token.list("pods", "default"))
    assert code == 403 and f'User "system:bootstrap:{token_id}" cannot list' in message
    assert as_token.list("certificatesigningrequests")["items"] == []


def test_expired_wrong_or_unusable_tokens_are_401():
    c = Cluster(0)
    token = c.create_bootstrap_token(ttl=600)
    token_id, _secret = token.split(".")
    wrong = f"{token_id}.{'b' * 16}"
    assert status_error(lambda: c.client("x", BearerToken(wrong)).list("pods", "default")) \
        == (401, "Unauthorized")
    assert c.apiserver.bootstrap_tokens.log[-1].endswith("has invalid value for key "
                                                         "token-secret.")
    stored = c.admin().get("secrets", f"bootstrap-token-{token_id}", "kube-system")
    stored["data"]["usage-bootstrap-authentication"] = base64.b64encode(b"false").decode()
    c.admin().update(stored)
    c.run_for(1)
    assert whoami(c, token) == {"user": {}, "authenticated": False,
                                "error": "invalid bearer token"}
    assert c.apiserver.bootstrap_tokens.log[-1].endswith(
        "not marked usage-bootstrap-authentication=true.")
    stored = c.admin().get("secrets", f"bootstrap-token-{token_id}", "kube-system")
    stored["data"]["usage-bootstrap-authentication"] = base64.b64encode(b"true").decode()
    c.admin().update(stored)
    c.run_for(1)
    assert whoami(c, token)["authenticated"]
    c.run_for(600)
    assert not whoami(c, token)["authenticated"]
    assert c.apiserver.bootstrap_tokens.log[-1].startswith(
        f"Expired bootstrap token in kube-system/bootstrap-token-{token_id} Secret: ")
