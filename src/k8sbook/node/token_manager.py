"""The kubelet's service-account tokens: the projected ``kube-api-access-*`` volume.

Mirrors ``pkg/kubelet/token`` (``token_manager.go``, v1.35.0) and the projected
``serviceAccountToken`` volume source (``pkg/volume/projected``): for each pod the kubelet
asks the apiserver for a TokenRequest bound to the pod (``expirationSeconds: 3607``, the
apiserver's audiences), on its own connection (path ``kubelet->kube-apiserver``), and writes
the token where every container finds it (:data:`TOKEN_PATH`, with ``ca.crt`` and
``namespace`` next to it).

The manager caches each token and hands out the cached one until ``requiresRefresh``: when
the token is older than 24 h (``maxTTL``), or when less than 20 % of its lifetime is left
(it is older than 80 % of its TTL), each moved earlier by a jitter of up to 10 s
(``maxJitter``). The volume is set up again at every sync of the pod (the volume manager
remounts projected volumes), which is when a due refresh happens. If a refresh fails, the
cached token is used while it has not expired.
"""

from __future__ import annotations

import random
from typing import Any

from k8sbook.api.request import Request
from k8sbook.apiserver.token import WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS
from k8sbook.client.in_cluster import TOKEN_PATH
from k8sbook.client.rest import Client
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError, not_found

__all__ = ["MAX_JITTER", "MAX_TTL", "TOKEN_PATH", "TokenManager",
           "mount_service_account_token", "token_request"]

#: ``maxTTL``: a token older than this is refreshed whatever its lifetime
MAX_TTL = 24 * 3600.0
#: ``maxJitter``
MAX_JITTER = 10.0


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


class TokenManager:
    """``token.Manager``: TokenRequests by (ServiceAccount, audiences, lifetime, bound pod)."""

    def __init__(self, client: Client, clock: Clock, rand: random.Random) -> None:
        self.client = client
        self.clock = clock
        self.rand = rand
        self.cache: dict[tuple[Any, ...], dict[str, Any]] = {}

    @staticmethod
    def _key(namespace: str, name: str, tr: dict[str, Any]) -> tuple[Any, ...]:
        spec = tr.get("spec", {})
        ref = spec.get("boundObjectRef") or {}
        return (name, namespace, tuple(spec.get("audiences") or ()),
                spec.get("expirationSeconds"), ref.get("kind"), ref.get("name"), ref.get("uid"))

    def requires_refresh(self, tr: dict[str, Any]) -> bool:
        """``requiresRefresh``: older than ``maxTTL`` or within 20 % of the TTL of expiring,
        each less a jitter of up to ``maxJitter``."""
        exp_s = tr.get("spec", {}).get("expirationSeconds")
        if exp_s is None:
            return False
        now = self.clock.now()
        exp = Clock.parse(tr["status"]["expirationTimestamp"])
        iat = exp - exp_s
        jitter = float(int(self.rand.random() * MAX_JITTER))  # whole seconds, as Go's
        if now > iat + MAX_TTL - jitter:
            return True
        return now > exp - (exp_s * 20 // 100) - jitter

    def expired(self, tr: dict[str, Any]) -> bool:
        return self.clock.now() > Clock.parse(tr["status"]["expirationTimestamp"])

    def get_service_account_token(self, namespace: str, name: str,
                                  tr: dict[str, Any]) -> dict[str, Any]:
        """``GetServiceAccountToken``: the cached token unless it needs a refresh."""
        key = self._key(namespace, name, tr)
        cached = self.cache.get(key)
        if cached is not None and not self.requires_refresh(cached):
            return cached
        try:
            out: dict[str, Any] = self.client.request(Request(
                "create", "serviceaccounts", "", namespace, name, "token", body=tr))
        except StatusError:
            if cached is not None and not self.expired(cached):
                return cached  # "couldn't update token", the old one still works
            raise
        self.cache[key] = out
        return out

    def delete_service_account_token(self, pod_uid: str) -> None:
        """``DeleteServiceAccountToken``: forget the tokens bound to a pod that is gone."""
        for key in [k for k in self.cache if k[-1] == pod_uid]:
            del self.cache[key]


def mount_service_account_token(kubelet: Any, namespace: str, pod_name: str) -> dict[str, Any]:
    """Set up the pod's ``kube-api-access`` volume now (what the kubelet does at each sync):
    get the pod from the kubelet's informer cache, get a token for its ServiceAccount bound to
    the pod (cached unless due for a refresh), and write it into the volume.

    Returns the TokenRequest; raises :class:`StatusError` if the apiserver refused it."""
    pod = kubelet.pod_informer.indexer.get_by_key(f"{namespace}/{pod_name}")
    if pod is None:
        raise not_found("pods", "", pod_name)
    out: dict[str, Any] = kubelet.volumes.mount_service_account_token(pod)
    return out
