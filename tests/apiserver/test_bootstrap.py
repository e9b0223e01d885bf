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


def test_extra_groups_must_stay_bootstrappers():
    """A Secret writer in kube-system cannot mint a cluster-admin bootstrap token."""
    from k8sbook.apiserver.bootstrap import token_secret
    c = Cluster(0)
    c.admin().create(token_secret("abcdef", "0123456789abcdef", expiration="2027-01-01T00:00:00Z",
                                  groups=("system:masters",)))
    c.run_for(1)
    assert whoami(c, "abcdef.0123456789abcdef")["authenticated"] is False
    assert c.apiserver.bootstrap_tokens.log[-1].endswith(
        'has invalid value for key auth-extra-groups: group "system:masters" is not valid.')
