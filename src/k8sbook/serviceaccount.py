"""Service-account identities for in-cluster components: a token, and a client that uses it.

Mirrors ``pkg/serviceaccount`` (a token names ``system:serviceaccount:<namespace>:<name>``, in
the groups ``system:serviceaccounts`` and ``system:serviceaccounts:<namespace>``) and what the
kubelet does for a pod with a projected service-account token volume. Simplified: the token
is an opaque string the model's authenticator knows (not a signed JWT with an audience and an
expiry), and the ServiceAccount object is created on the spot if it is missing.
"""

from __future__ import annotations

from k8sbook.apiserver.authentication import BearerToken, service_account_user
from k8sbook.apiserver.server import LOOPBACK_USER, Request
from k8sbook.client.rest import Client
from k8sbook.cluster import Cluster


def service_account_client(cluster: Cluster, instance: str, namespace: str,
                           name: str) -> Client:
    """A client for ``instance`` that authenticates as ``namespace/name``'s service account."""
    sa = {"apiVersion": "v1", "kind": "ServiceAccount",
          "metadata": {"name": name, "namespace": namespace}}
    resp = cluster.apiserver.handle(Request("create", "serviceaccounts", "", namespace, body=sa,
                                            user=LOOPBACK_USER))
    if resp.code == 201:
        uid = resp.body["metadata"]["uid"]  # type: ignore[index]
    else:
        got = cluster.apiserver.handle(Request("get", "serviceaccounts", "", namespace, name,
                                               user=LOOPBACK_USER))
        uid = (got.body or {}).get("metadata", {}).get("uid", "")
    token = f"sa-token/{namespace}/{name}/{uid}"
    cluster.apiserver.authn.add_token(token, service_account_user(namespace, name, uid))
    return cluster.client(instance, BearerToken(token))
