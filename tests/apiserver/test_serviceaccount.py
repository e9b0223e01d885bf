"""Service-account tokens are RS256 JWTs, checked by signature, issuer, audience and time."""

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from k8sbook.api import objects
from k8sbook.api.request import BearerToken, Request
from k8sbook.apiserver.serviceaccount import (
    ISSUER,
    TokenGenerator,
    decode_unverified,
    key_id,
    unix_time,
)
from k8sbook.cluster import Cluster
from k8sbook.core.keys import rsa_key
from tests.helpers import status_error


@pytest.fixture()
def cluster() -> Cluster:
    c = Cluster(0)
    c.add_kubelet("node-a").start()
    c.run_for(1)
    adm = c.admin()
    adm.create({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "robot", "namespace": "default"}})
    adm.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "holder",
                                                                  "namespace": "default"}})
    c.run_for(1)
    return c


def token_for(c: Cluster, account: str = "robot", **spec) -> str:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    out = c.admin().request(Request("create", "serviceaccounts", "", "default", account,
                                    "token", body=body))
    return out["status"]["token"]


def who(c: Cluster, token: str) -> tuple[int, str]:
    """What the apiserver answers a request carrying ``token``: 403 means it authenticated."""
    return status_error(lambda: c.client("curl", BearerToken(token)).get("pods", "x",
                                                                         "default"))


def review(c: Cluster, token: str, audiences: list[str] | None = None) -> dict:
    spec: dict = {"token": token}
    if audiences:
        spec["audiences"] = audiences
    return c.client("kubelet/node-a").create({"apiVersion": "authentication.k8s.io/v1",
                                              "kind": "TokenReview", "spec": spec})["status"]


def test_token_is_an_rs256_jwt_with_the_kubeadm_issuer_and_claims(cluster: Cluster):
    sa_uid = cluster.admin().get("serviceaccounts", "robot", "default")["metadata"]["uid"]
    header, claims = decode_unverified(token_for(cluster))
    public = rsa_key("sa").public_key()
    assert header == {"alg": "RS256", "kid": key_id(public)}
    assert claims["iss"] == ISSUER == "https://kubernetes.default.svc.cluster.local"
    assert claims["aud"] == [ISSUER]
    assert claims["sub"] == "system:serviceaccount:default:robot"
    assert claims["iat"] == claims["nbf"] == unix_time(cluster.clock.now())
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"] == {"namespace": "default",
                                       "serviceaccount": {"name": "robot", "uid": sa_uid}}
    assert list(claims) == sorted(claims)  # Go's encoder sorts the merged claims
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    assert header["kid"] == base64.urlsafe_b64encode(
        hashlib.sha256(der).digest()).decode().rstrip("=")


def test_tampered_payload_is_401(cluster: Cluster):
    token = token_for(cluster)
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["kubernetes.io"]["serviceaccount"]["name"] = "default"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert who(cluster, token)[0] == 403
    assert who(cluster, f"{head}.{forged}.{sig}") == (401, "Unauthorized")


def test_token_signed_with_another_key_is_401(cluster: Cluster):
    sa = cluster.admin().get("serviceaccounts", "robot", "default")
    _, claims = decode_unverified(token_for(cluster))
    other = TokenGenerator(ISSUER, rsa_key("not-the-cluster-key"))
    assert who(cluster, other.generate(claims)) == (401, "Unauthorized")
    assert cluster.apiserver.authn.last_failure == "invalid signature, no keys found"
    # the same key id claimed, the wrong key used: the signature does not verify
    forged = jwt.encode(claims, rsa_key("not-the-cluster-key"), algorithm="RS256",
                        headers={"kid": key_id(rsa_key("sa").public_key()), "typ": None})
    assert who(cluster, forged)[0] == 401
    assert sa["metadata"]["name"] == "robot"


def test_alg_none_is_refused(cluster: Cluster):
    _, claims = decode_unverified(token_for(cluster))
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert who(cluster, unsigned) == (401, "Unauthorized")


def test_audience_is_checked(cluster: Cluster):
    token = token_for(cluster, audiences=["vault"])
    assert who(cluster, token) == (401, "Unauthorized")
    assert cluster.apiserver.authn.last_failure == \
        'token audiences ["vault"] is invalid for the target audiences ' \
        '["https://kubernetes.default.svc.cluster.local"]'
    # another component asks for its own audience with TokenReview
    status = review(cluster, token, ["vault"])
    assert status["authenticated"] and status["audiences"] == ["vault"]
    assert status["user"]["username"] == "system:serviceaccount:default:robot"
    refused = review(cluster, token)
    assert refused["authenticated"] is False and "is invalid for the target" in refused["error"]


def test_token_review_reports_why(cluster: Cluster):
    assert review(cluster, "garbage") == {"user": {}, "authenticated": False,
                                          "error": "invalid bearer token"}
    token = token_for(cluster, expirationSeconds=600)
    cluster.run_for(700)
    assert review(cluster, token)["error"] == "service account token has expired"


def test_not_yet_valid_and_future_tokens(cluster: Cluster):
    sa = cluster.admin().get("serviceaccounts", "robot", "default")
    _, claims = decode_unverified(token_for(cluster))
    gen = cluster.apiserver.tokens.generator
    later = dict(claims, nbf=claims["nbf"] + 120)
    assert who(cluster, gen.generate(later))[0] == 401
    assert cluster.apiserver.authn.last_failure == "service account token is not valid yet"
    future = dict(claims, iat=claims["iat"] + 120)
    assert who(cluster, gen.generate(future))[0] == 401
    assert cluster.apiserver.authn.last_failure == \
        "service account token is issued in the future"
    within = dict(claims, nbf=claims["nbf"] + 30)  # inside the leeway
    assert who(cluster, gen.generate(within))[0] == 403
    assert sa


def test_secret_bound_token_dies_with_its_secret(cluster: Cluster):
    uid = cluster.admin().get("secrets", "holder", "default")["metadata"]["uid"]
    token = token_for(cluster, boundObjectRef={"apiVersion": "v1", "kind": "Secret",
                                               "name": "holder"})
    assert decode_unverified(token)[1]["kubernetes.io"]["secret"] == {"name": "holder",
                                                                      "uid": uid}
    assert who(cluster, token)[0] == 403
    cluster.admin().delete("secrets", "holder", "default")
    cluster.run_for(1)
    assert who(cluster, token) == (401, "Unauthorized")
    assert cluster.apiserver.authn.last_failure == "service account token has been invalidated"
    cluster.admin().create({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "holder", "namespace": "default"}})
    cluster.run_for(1)
    assert who(cluster, token)[0] == 401
    assert "does not match service account secret ref claim" in \
        cluster.apiserver.authn.last_failure


def test_node_bound_token_and_pod_bound_token_carry_the_node(cluster: Cluster):
    node_uid = cluster.admin().get("nodes", "node-a")["metadata"]["uid"]
    token = token_for(cluster, boundObjectRef={"apiVersion": "v1", "kind": "Node",
                                               "name": "node-a"})
    assert decode_unverified(token)[1]["kubernetes.io"]["node"] == {"name": "node-a",
                                                                    "uid": node_uid}
    status = review(cluster, token)
    assert status["user"]["extra"]["authentication.kubernetes.io/node-name"] == ["node-a"]
    pod = objects.pod("worker", node_name="node-a")
    pod["spec"]["serviceAccountName"] = "robot"
    cluster.admin().create(pod)
    bound = token_for(cluster, boundObjectRef={"apiVersion": "v1", "kind": "Pod",
                                               "name": "worker"})
    k8s = decode_unverified(bound)[1]["kubernetes.io"]
    assert k8s["node"] == {"name": "node-a", "uid": node_uid} and k8s["pod"]["name"] == "worker"
    extra = review(cluster, bound)["user"]["extra"]
    assert sorted(extra) == ["authentication.kubernetes.io/credential-id",
                             "authentication.kubernetes.io/node-name",
                             "authentication.kubernetes.io/node-uid",
                             "authentication.kubernetes.io/pod-name",
                             "authentication.kubernetes.io/pod-uid"]
    assert extra["authentication.kubernetes.io/credential-id"] == \
        [f"JTI={decode_unverified(bound)[1]['jti']}"]


def test_tokens_repeat_for_the_same_seed():
    def one() -> str:
        c = Cluster(5)
        c.admin().create({"apiVersion": "v1", "kind": "ServiceAccount",
                          "metadata": {"name": "robot", "namespace": "default"}})
        return token_for(c)
    assert one() == one()


def test_a_token_presented_again_skips_only_the_signature_check(cluster: Cluster):
    """The signature is checked once per token; expiry, audiences and the bound objects are
    checked on every request."""
    token = token_for(cluster, expirationSeconds=600)
    assert who(cluster, token)[0] == 403  # authenticated as robot
    assert who(cluster, token)[0] == 403  # again: the remembered signature check
    assert review(cluster, token, ["vault"])["error"].startswith("token audiences")
    cluster.run_for(661)  # past exp + the 60 s leeway: refused although remembered
    assert who(cluster, token) == (401, "Unauthorized")
    assert cluster.apiserver.authn.last_failure == "service account token has expired"
