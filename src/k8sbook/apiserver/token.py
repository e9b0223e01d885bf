"""``serviceaccounts/token``: TokenRequest, how a pod's workload gets an identity.

Mirrors the ``token`` subresource of ServiceAccounts
(``pkg/registry/core/serviceaccount/storage/token.go``): a token for the service account,
with audiences, an expiry, and optionally bound to a Pod, Secret or Node (a pod-bound token
carries the pod's name and uid, and its node's name, as extra user info); the 3607 s request
the kubelet makes for the ``kube-api-access-*`` volume is extended to one year while
``--service-account-extend-token-expiration`` is true.

Validation when a token is used (:meth:`TokenREST.validate`, registered with the
authenticator) follows ``pkg/serviceaccount`` (``claims.go`` ``Validate`` for bound tokens,
``legacy.go`` for the others): a token past its expiry (with go-jose's one-minute leeway) is
refused ("service account token has expired"); so is one whose ServiceAccount is gone or was
recreated ("service account %s/%s has been deleted", "service account UID (%s) does not match
claim (%s)"), and a bound token whose Pod, Secret or Node is gone or was recreated ("pod %s/%s
has been deleted", "pod UID (%s) does not match claim (%s)", ...). The client only sees
``401 Unauthorized``; the reason is what kube-apiserver logs (here
``Authenticator.last_failure``). The objects are read from the watch cache, as upstream reads
them from informers.

Simplified: a token is an opaque random string that the apiserver's token table maps to the
service account's identity, and the claims a real token carries in a signed JWT (``iss``,
``aud``, ``exp``, the ``kubernetes.io`` binding) are kept in :attr:`TokenREST.issued` and checked
from there; audiences are recorded but not checked (a later part of issue 14 brings JWTs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from k8sbook.api import validation
from k8sbook.api.request import Request, Response, UserInfo
from k8sbook.api.resources import ResourceType, by_plural
from k8sbook.apiserver.authentication import service_account_user
from k8sbook.core.status import bad_request, conflict, invalid, method_not_supported, not_found

#: kubeadm: ``--service-account-issuer=https://kubernetes.default.svc.<dnsDomain>``; with no
#: ``--api-audiences`` the apiserver's audiences default to the issuer
API_AUDIENCES = ("https://kubernetes.default.svc.cluster.local",)
#: ``TokenRequestSpec.expirationSeconds`` default (``SetDefaults_TokenRequestSpec``)
DEFAULT_EXPIRATION_SECONDS = 3600
#: ``serviceaccount.WarnOnlyBoundTokenExpirationSeconds``: what the ServiceAccount admission
#: plugin puts in the ``kube-api-access-*`` projected volume
WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS = 60 * 60 + 7
#: ``serviceaccount.ExpirationExtensionSeconds``: the lifetime such a token really gets while
#: ``--service-account-extend-token-expiration`` is true (the default)
EXPIRATION_EXTENSION_SECONDS = 24 * 365 * 60 * 60


@dataclass(frozen=True)
class IssuedToken:
    """What the model remembers of a token (a real one carries this as signed JWT claims)."""

    service_account: str  # namespace/name
    audiences: tuple[str, ...]
    bound_kind: str
    bound_name: str
    bound_uid: str
    issued_at: float
    expires_at: float  # the token's real lifetime (``exp``)
    warn_after: float | None  # set when the lifetime was extended
    service_account_uid: str = ""

#: go-jose's ``jwt.DefaultLeeway``, which ``Claims.Validate`` allows past ``exp``
EXPIRY_LEEWAY_SECONDS = 60.0
_SA_PREFIX = "system:serviceaccount:"


class TokenREST:
    """``POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token``."""

    def __init__(self, apiserver: Any, *, extend_expiration: bool = True) -> None:
        self.apiserver = apiserver
        #: ``--service-account-extend-token-expiration`` (default true)
        self.extend_expiration = extend_expiration
        self.issued: dict[str, IssuedToken] = {}

    def create(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        api = self.apiserver
        if req.verb != "create":
            raise method_not_supported("serviceaccounts/token", "", req.verb)
        body = req.body if isinstance(req.body, dict) else None
        if body is None or body.get("kind") != "TokenRequest" or \
                body.get("apiVersion") != "authentication.k8s.io/v1":
            raise bad_request("the body of a token request must be an authentication.k8s.io/v1 "
                              "TokenRequest")
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != req.name:
            raise invalid("TokenRequest", "authentication.k8s.io", req.name, [validation.invalid(
                "metadata.name", meta["name"], "must match the service account name if "
                "specified")])
        api.admit("CREATE", rt, req, user, body, None)  # NodeRestriction
        sa = api.storage.get(rt.key(req.namespace, req.name))
        if sa is None:
            raise not_found("serviceaccounts", "", req.name)
        spec = dict(body.get("spec") or {})
        audiences = tuple(spec.get("audiences") or API_AUDIENCES)
        exp = spec.get("expirationSeconds", DEFAULT_EXPIRATION_SECONDS)
        if not isinstance(exp, int) or exp < 600:
            raise invalid("TokenRequest", "authentication.k8s.io", "", [validation.invalid(
                "spec.expirationSeconds", exp, "may not specify a duration less than 10 "
                "minutes")])
        if exp > 1 << 32:
            raise invalid("TokenRequest", "authentication.k8s.io", "", [validation.invalid(
                "spec.expirationSeconds", exp, "may not specify a duration larger than 2^32 "
                "seconds")])
        ref = spec.get("boundObjectRef") or None
        bound: dict[str, Any] | None = None
        extra: list[tuple[str, str]] = []
        if ref is not None:
            kind = ref.get("kind", "")
            plural = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}.get(kind)
            if ref.get("apiVersion") != "v1" or plural is None:
                raise bad_request(f"cannot bind token to object of type "
                                  f"{ref.get('apiVersion')}, Kind={kind}")
            brt = by_plural("", plural)
            assert brt is not None
            bound = api.storage.get(brt.key(req.namespace if brt.namespaced else "",
                                            ref.get("name", "")))
            if bound is None:
                raise not_found(plural, "", ref.get("name", ""))
            if kind == "Pod":
                if bound["spec"].get("serviceAccountName", "default") != req.name:
                    raise bad_request(f'cannot bind token for serviceaccount "{req.name}" to '
                                      "pod running with different serviceaccount name.")
                extra = [("authentication.kubernetes.io/pod-name", bound["metadata"]["name"]),
                         ("authentication.kubernetes.io/pod-uid", bound["metadata"]["uid"])]
                if bound["spec"].get("nodeName"):
                    extra.insert(0, ("authentication.kubernetes.io/node-name",
                                     bound["spec"]["nodeName"]))
            if ref.get("uid") and ref["uid"] != bound["metadata"]["uid"]:
                raise conflict(kind, "", ref.get("name", ""),
                               f"the UID in the bound object reference ({ref['uid']}) does not "
                               "match the UID in record. The object might have been deleted "
                               "and then recreated")
        now = api.clock.now()
        lifetime, warn_after = exp, None
        if self.extend_expiration and bound is not None and ref and ref.get("kind") == "Pod" \
                and exp == WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS \
                and set(audiences) <= set(API_AUDIENCES):
            lifetime, warn_after = EXPIRATION_EXTENSION_SECONDS, now + exp
        token = "model-sa-token." + api.ids.uid().replace("-", "")
        ns, name = req.namespace, req.name
        sa_user = service_account_user(ns, name, sa["metadata"]["uid"])
        api.authn.add_token(token, UserInfo(sa_user.name, sa_user.groups, sa_user.uid,
                                            tuple(extra)))
        self.issued[token] = IssuedToken(
            f"{ns}/{name}", audiences, (ref or {}).get("kind", ""), (ref or {}).get("name", ""),
            (bound or {}).get("metadata", {}).get("uid", ""), now, now + lifetime, warn_after,
            sa["metadata"]["uid"])
        spec.update({"audiences": list(audiences), "expirationSeconds": exp})
        out = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "metadata": {"name": name, "namespace": ns,
                            "creationTimestamp": api.clock.timestamp(now)},
               "spec": spec,
               # the status reports the requested lifetime, even when the real one is extended
               "status": {"token": token,
                          "expirationTimestamp": api.clock.timestamp(now + exp)}}
        return Response(201, out)


    def validate(self, token: str, user: UserInfo) -> str:
        """Why ``token`` (which maps to ``user``) no longer authenticates, or ``""``."""
        api = self.apiserver
        if not user.name.startswith(_SA_PREFIX):
            return ""
        ns, _, name = user.name[len(_SA_PREFIX):].partition(":")
        issued = self.issued.get(token)
        if issued is not None and api.clock.now() - EXPIRY_LEEWAY_SECONDS > issued.expires_at:
            return "service account token has expired"
        claim = issued.service_account_uid if issued is not None else user.uid
        failure = _still_there(api.cached("serviceaccounts", ns, name), "service account",
                               f"{ns}/{name}", claim)
        if failure or issued is None or not issued.bound_kind:
            return failure
        plural = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}[issued.bound_kind]
        namespaced = issued.bound_kind != "Node"
        obj = api.cached(plural, ns if namespaced else "", issued.bound_name)
        return _still_there(obj, issued.bound_kind.lower(),
                            f"{ns}/{issued.bound_name}" if namespaced else issued.bound_name,
                            issued.bound_uid)


def _still_there(obj: dict[str, Any] | None, what: str, ref: str, claim: str) -> str:
    if obj is None:
        return f"{what} {ref} has been deleted"
    uid = obj["metadata"].get("uid", "")
    if claim and uid != claim:
        return f"{what} UID ({uid}) does not match claim ({claim})"
    return ""


def install(apiserver: Any) -> TokenREST:
    """Register ``serviceaccounts/token`` with ``apiserver.handlers``, and its validation of
    service-account tokens with the authenticator."""
    tokens = TokenREST(apiserver)
    apiserver.handlers[("serviceaccounts", "token")] = tokens.create
    apiserver.authn.validators.append(tokens.validate)
    return tokens
