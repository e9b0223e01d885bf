"""The tokens controller fills a user's token Secret with a legacy JWT, for comparison."""

import base64

from kubernetes_validate import validate

from k8sbook.api.request import BearerToken
from k8sbook.apiserver.serviceaccount import LEGACY_ISSUER, decode_unverified
from k8sbook.cluster import Cluster
from k8sbook.core import pki
from tests.helpers import status_error


def setup() -> Cluster:
    c = Cluster(0)
    c.kcm = c.add_controller_manager(controllers=("serviceaccount-token",))  # type: ignore[attr-defined]
    c.kcm.start()  # type: ignore[attr-defined]
    c.run_for(20)
    c.admin().create({"apiVersion": "v1", "kind": "ServiceAccount",
                      "metadata": {"name": "robot", "namespace": "default"}})
    return c


def token_secret(name: str = "robot-token", account: str = "robot") -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {"kubernetes.io/service-account.name": account}}}


def test_controller_fills_the_secret_with_a_legacy_token():
    c = setup()
    c.admin().create(token_secret())
    c.run_for(2)
    secret = c.admin().get("secrets", "robot-token", "default")
    validate(secret, "1.35.0", strict=True)
    sa_uid = c.admin().get("serviceaccounts", "robot", "default")["metadata"]["uid"]
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == sa_uid
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["namespace"] == "default"
    assert data["ca.crt"] == pki.pem(pki.ca().certificate).decode()
    header, claims = decode_unverified(data["token"])
    assert header["alg"] == "RS256"
    assert claims == {
        "iss": LEGACY_ISSUER, "sub": "system:serviceaccount:default:robot",
        "kubernetes.io/serviceaccount/namespace": "default",
        "kubernetes.io/serviceaccount/secret.name": "robot-token",
        "kubernetes.io/serviceaccount/service-account.name": "robot",
        "kubernetes.io/serviceaccount/service-account.uid": sa_uid}
    assert "exp" not in claims and "aud" not in claims
    user = c.client("curl", BearerToken(data["token"]))
    assert status_error(lambda: user.get("pods", "x", "default"))[0] == 403  # authenticated
    c.kcm.stop()  # type: ignore[attr-defined]
    c.run_for(2 * 86400)  # no expiry: still good days later (a bound token lasts an hour)
    assert status_error(lambda: user.get("pods", "x", "default"))[0] == 403
    # deleting the Secret revokes it
    c.admin().delete("secrets", "robot-token", "default")
    c.run_for(1)
    c.run_for(1)
    assert status_error(lambda: user.get("pods", "x", "default")) == (401, "Unauthorized")
    assert c.apiserver.authn.last_failure == "Token has been invalidated"


def test_secret_for_a_missing_account_is_deleted_and_tokens_go_with_their_account():
    c = setup()
    c.admin().create(token_secret("ghost-token", "ghost"))
    c.admin().create(token_secret())
    c.run_for(2)
    assert status_error(lambda: c.admin().get("secrets", "ghost-token", "default"))[0] == 404
    c.admin().delete("serviceaccounts", "robot", "default")
    c.run_for(2)
    assert status_error(lambda: c.admin().get("secrets", "robot-token", "default"))[0] == 404


def test_token_secret_must_name_its_account():
    c = Cluster(0)
    secret = token_secret()
    del secret["metadata"]["annotations"]
    assert status_error(lambda: c.admin().create(secret)) == (
        422, ('Secret "robot-token" is invalid: '
             "metadata.annotations[kubernetes.io/service-account.name]: Required value"))
