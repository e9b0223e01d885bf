"""The tokens controller: legacy, Secret-based service-account tokens.

Mirrors ``pkg/controller/serviceaccount/tokens_controller.go`` (v1.35), the
``serviceaccount-token`` controller of kube-controller-manager, which runs with the controller
manager's own credentials (not a per-controller service account) and signs with
``--service-account-private-key-file`` (kubeadm: ``sa.key``, the key the apiserver's
TokenRequest uses too):

- a Secret of type ``kubernetes.io/service-account-token`` whose annotation
  ``kubernetes.io/service-account.name`` names an existing ServiceAccount (and whose
  ``kubernetes.io/service-account.uid``, if set, is that account's uid) gets ``data.token``
  (a JWT with issuer ``kubernetes/serviceaccount``, no audience, no expiry, bound to nothing
  but the Secret's name: :func:`k8sbook.apiserver.serviceaccount.legacy_claims`),
  ``data.namespace`` and ``data["ca.crt"]`` (``--root-ca-file``), and the uid annotation; the
  live Secret is read first and written only if its resourceVersion is the cached one;
- a Secret naming an account that does not exist is deleted (with a UID precondition), and
  when an account is deleted its token Secrets are deleted.

Since v1.24 (``LegacyServiceAccountTokenNoAutoGeneration``) the controller no longer creates
such Secrets by itself: a user creates one and the controller fills it. The token is valid
while the Secret holds it and the account is the same; it never expires.

The key and the CA bundle are read when the first Secret is filled (upstream reads both files at
start-up), so that a controller manager which never fills one needs no ``cryptography``.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from k8sbook.apiserver.serviceaccount import LEGACY_ISSUER, TokenGenerator, legacy_claims
from k8sbook.client.informer import SharedIndexInformer, final_state, meta_namespace_key
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj, QueueController
from k8sbook.core.status import StatusError

SECRET_TYPE = "kubernetes.io/service-account-token"
NAME_KEY = "kubernetes.io/service-account.name"
UID_KEY = "kubernetes.io/service-account.uid"

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from k8sbook.core import rs256


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


class TokensController(QueueController):
    """``TokensController``: fills and garbage-collects token Secrets."""

    def __init__(self, client: Client, sa_informer: SharedIndexInformer,
                 secret_informer: SharedIndexInformer, *, key: Callable[[], rsa.RSAPrivateKey | rs256.PrivateKey],
                 root_ca: Callable[[], bytes]) -> None:
        super().__init__(client, "serviceaccount_tokens_secret")
        self.sa_informer = sa_informer
        self.secret_informer = secret_informer
        #: ``--service-account-private-key-file`` and ``--root-ca-file``, read when first used
        self._key, self._root_ca = key, root_ca
        secret_informer.add_event_handler(
            self._secret_changed, lambda o, n: self._secret_changed(n),
            lambda s: self._secret_changed(final_state(s)))
        sa_informer.add_event_handler(
            lambda sa: None, lambda o, n: None,
            lambda sa: self._account_deleted(final_state(sa)))

    @functools.cached_property
    def generator(self) -> TokenGenerator:
        return TokenGenerator(LEGACY_ISSUER, self._key())

    @functools.cached_property
    def root_ca(self) -> bytes:
        return self._root_ca()

    def _secret_changed(self, secret: Obj) -> None:
        if secret.get("type") == SECRET_TYPE:
            self.queue.add(("secret", meta_namespace_key(secret)))

    def _account_deleted(self, sa: Obj) -> None:
        for secret in self._token_secrets(sa):
            self.queue.add(("secret", meta_namespace_key(secret)))

    def _token_secrets(self, sa: Obj) -> list[Obj]:
        meta = sa["metadata"]
        return [s for s in self.secret_informer.indexer.list()
                if s.get("type") == SECRET_TYPE and s["metadata"]["namespace"] == meta["namespace"]
                and (s["metadata"].get("annotations") or {}).get(NAME_KEY) == meta["name"]]

    def _account(self, ns: str, name: str, uid: str) -> Obj | None:
        sa: Obj | None = self.sa_informer.indexer.get_by_key(f"{ns}/{name}")
        if sa is None:  # fetchOnCacheMiss
            try:
                sa = self.client.get("serviceaccounts", name, ns)
            except StatusError as err:
                if err.code != 404:
                    raise
                return None
        if uid and sa["metadata"].get("uid") != uid:
            return None
        return sa

    def sync(self, key: Any) -> None:
        _, ns_name = key
        cached: Obj | None = self.secret_informer.indexer.get_by_key(ns_name)
        if cached is None:
            return
        ns, name = ns_name.split("/", 1)
        notes = cached["metadata"].get("annotations") or {}
        try:
            sa = self._account(ns, notes.get(NAME_KEY, ""), notes.get(UID_KEY, ""))
            if sa is None:  # "Service account does not exist, deleting token"
                self.client.delete("secrets", name, ns,
                                   preconditions={"uid": cached["metadata"]["uid"]})
                return
            self._fill(cached, sa)
        except StatusError as err:
            if err.code not in (404, 409):
                self.queue.add_rate_limited(key)

    def _needs(self, secret: Obj) -> bool:
        data = secret.get("data") or {}
        return (data.get("ca.crt") != _b64(self.root_ca) or not data.get("namespace")
                or not data.get("token"))

    def _fill(self, cached: Obj, sa: Obj) -> None:
        """``generateTokenIfNeeded``."""
        if not self._needs(cached):
            return
        meta = cached["metadata"]
        live = self.client.get("secrets", meta["name"], meta["namespace"])
        if live["metadata"].get("resourceVersion") != meta.get("resourceVersion") or \
                not self._needs(live):
            return  # our view is stale: an update event will come
        data = dict(live.get("data") or {})
        data["ca.crt"] = _b64(self.root_ca)
        data.setdefault("namespace", _b64(meta["namespace"]))
        if not data.get("token"):
            data["token"] = _b64(self.generator.generate(legacy_claims(sa, meta["name"])))
        live["data"] = data
        notes = dict(live["metadata"].get("annotations") or {})
        notes[NAME_KEY] = sa["metadata"]["name"]
        notes[UID_KEY] = sa["metadata"]["uid"]
        live["metadata"]["annotations"] = notes
        self.client.update(live)
