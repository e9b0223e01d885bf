"""The kubelet's service-account tokens: the projected ``kube-api-access-*`` volume.

Mirrors ``pkg/kubelet/token`` (the token manager) and the projected ``serviceAccountToken``
source: for each pod the kubelet asks the apiserver for a TokenRequest bound to the pod
(``expirationSeconds: 3607``, the apiserver's audiences), and writes the token where every
container finds it (:data:`TOKEN_PATH`).
"""

from __future__ import annotations

from typing import Any

from k8sbook.api.request import Request
from k8sbook.apiserver.token import WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS
from k8sbook.client.in_cluster import TOKEN_PATH
from k8sbook.core.status import not_found

__all__ = ["TOKEN_PATH", "mount_service_account_token", "token_request"]

def token_request(pod: dict[str, Any],
                  expiration_seconds: int = WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS,
                  audiences: list[str] | None = None) -> dict[str, Any]:
    """The TokenRequest the kubelet sends for a pod's projected service-account token."""
    spec: dict[str, Any] = {"expirationSeconds": expiration_seconds,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                               "name": pod["metadata"]["name"],
                                               "uid": pod["metadata"]["uid"]}}
    if audiences:
        spec["audiences"] = audiences
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "metadata": {"name": pod["spec"].get("serviceAccountName", "default"),
                         "namespace": pod["metadata"]["namespace"]},
            "spec": spec}


def mount_service_account_token(kubelet: Any, namespace: str, pod_name: str) -> dict[str, Any]:
    """What the kubelet does for the pod's ``kube-api-access-*`` volume: get the pod from
    its informer cache, request a token for the pod's ServiceAccount, bound to the pod, and
    keep it with the pod's runtime state (the file at :data:`TOKEN_PATH`).

    Returns the TokenRequest the apiserver answered; raises :class:`StatusError` if refused."""
    pod = kubelet.pod_informer.indexer.get_by_key(f"{namespace}/{pod_name}")
    if pod is None:
        raise not_found("pods", "", pod_name)
    body = token_request(pod)
    sa = body["metadata"]["name"]
    out = kubelet.client.request(Request("create", "serviceaccounts", "", namespace, sa,
                                         "token", body=body))
    rec = kubelet.record(namespace, pod_name)
    if rec is not None:
        rec.files[TOKEN_PATH] = out["status"]["token"]
    return out
