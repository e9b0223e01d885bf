"""``serviceaccounts/token``: TokenRequest, how a pod's workload gets an identity.

Mirrors the ``token`` subresource of ServiceAccounts
(``pkg/registry/core/serviceaccount/storage/token.go``): a token for the service account,
with audiences, an expiry, and optionally bound to a Pod, Secret or Node (a pod-bound token
carries the pod's name and uid, and its node's name, as extra user info); the 3607 s request
the kubelet makes for the ``kube-api-access-*`` volume is extended to one year while
``--service-account-extend-token-expiration`` is true.

The token is a JWT signed with the service-account key (RS256; see
:mod:`k8sbook.apiserver.serviceaccount` for the claims, and for how a token is validated when
used: signature, issuer, audiences, expiry with go-jose's leeway, and the ServiceAccount and
bound Pod, Secret or Node still there with the same UID). The client only sees ``401
Unauthorized``; the reason is what kube-apiserver logs (here ``Authenticator.last_failure``).

The key is made once per process (:func:`k8sbook.core.keys.signing_key`), when the first token is
signed or checked; each token's ``jti`` is drawn from the model's seeded ids, so tokens repeat
from run to run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from k8sbook.api import validation
from k8sbook.api.request import Request, Response, UserInfo
from k8sbook.api.resources import ResourceType, by_plural
from k8sbook.apiserver.serviceaccount import (
    ISSUER,
    LEGACY_ISSUER,
    JWTAuthenticator,
    TokenGenerator,
    bound_claims,
    pyjwt,
)
from k8sbook.core import rs256
from k8sbook.core.keys import signing_key
from k8sbook.core.status import bad_request, conflict, invalid, method_not_supported, not_found

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

#: kubeadm: ``--service-account-issuer=https://kubernetes.default.svc.<dnsDomain>``; with no
#: ``--api-audiences`` the apiserver's audiences default to the issuer
API_AUDIENCES = (ISSUER,)
#: ``TokenRequestSpec.expirationSeconds`` default (``SetDefaults_TokenRequestSpec``)
DEFAULT_EXPIRATION_SECONDS = 3600
#: ``serviceaccount.WarnOnlyBoundTokenExpirationSeconds``: what the ServiceAccount admission
#: plugin puts in the ``kube-api-access-*`` projected volume
WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS = 60 * 60 + 7
#: ``serviceaccount.ExpirationExtensionSeconds``: the lifetime such a token really gets while
#: ``--service-account-extend-token-expiration`` is true (the default)
EXPIRATION_EXTENSION_SECONDS = 24 * 365 * 60 * 60


#: go-jose's ``jwt.DefaultLeeway``, which ``Claims.Validate`` allows past ``exp``
EXPIRY_LEEWAY_SECONDS = 60.0


class TokenREST:
    """``POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token``."""

    def __init__(self, apiserver: Any, *, extend_expiration: bool = True) -> None:
        self.apiserver = apiserver
        #: ``--service-account-extend-token-expiration`` (default true)
        self.extend_expiration = extend_expiration
        self._generator: TokenGenerator | None = None

    @property
    def key(self) -> rsa.RSAPrivateKey | rs256.PrivateKey:
        """``sa.key``: the service-account signing key (``sa.pub`` is its public half)."""
        return signing_key("sa")

    @property
    def generator(self) -> TokenGenerator:
        if self._generator is None:
            self._generator = TokenGenerator(ISSUER, self.key)
        return self._generator

    def authenticator(self) -> JWTAuthenticator:
        """The service-account token authenticator kube-apiserver builds from
        ``--service-account-issuer`` and ``--service-account-key-file``, for bound and legacy
        tokens alike."""
        api = self.apiserver
        return JWTAuthenticator((ISSUER, LEGACY_ISSUER), lambda: (self.key.public_key(),),
                                API_AUDIENCES, api.cached, api.clock)

    def issue(self, sa: dict[str, Any], *, expiration_seconds: int,
              audiences: tuple[str, ...] = API_AUDIENCES, pod: dict[str, Any] | None = None,
              secret: dict[str, Any] | None = None, node: dict[str, Any] | None = None,
              warn_after: int = 0) -> str:
        """Sign a token for ``sa`` now (what ``Create`` does once the request is checked)."""
        api = self.apiserver
        return self.generator.generate(bound_claims(
            sa, now=api.clock.now(), expiration_seconds=expiration_seconds,
            audiences=list(audiences), jti=api.ids.uid(), pod=pod, secret=secret, node=node,
            warn_after=warn_after))

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
        node: dict[str, Any] | None = None
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
                node_name = bound["spec"].get("nodeName")
                if node_name:  # ServiceAccountTokenPodNodeInfo: the pod's node, uid if known
                    node = api.storage.get(f"/registry/minions/{node_name}") or \
                        {"metadata": {"name": node_name}}
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
        kind = (ref or {}).get("kind", "")
        ns, name = req.namespace, req.name
        token = self.issue(sa, expiration_seconds=lifetime, audiences=audiences,
                           pod=bound if kind == "Pod" else None,
                           secret=bound if kind == "Secret" else None,
                           node=bound if kind == "Node" else node,
                           warn_after=exp if warn_after is not None else 0)
        spec.update({"audiences": list(audiences), "expirationSeconds": exp})
        out = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "metadata": {"name": name, "namespace": ns,
                            "creationTimestamp": api.clock.timestamp(now)},
               "spec": spec,
               # the status reports the requested lifetime, even when the real one is extended
               "status": {"token": token,
                          "expirationTimestamp": api.clock.timestamp(now + exp)}}
        return Response(201, out)


    def claims(self, token: str) -> dict[str, Any]:
        """The claims of a token this apiserver signed, verified with ``sa.pub`` (what a
        relying party that fetched the JWKS does); raises ``jwt.InvalidTokenError``."""
        jwt = pyjwt()
        out: dict[str, Any] = jwt.decode(token, self.key.public_key(), algorithms=["RS256"],
                                         options={"verify_exp": False, "verify_aud": False,
                                                  "verify_nbf": False, "verify_iat": False})
        return out


def install(apiserver: Any) -> TokenREST:
    """Register ``serviceaccounts/token`` with ``apiserver.handlers``, and the
    service-account token authenticator with the union authenticator."""
    tokens = TokenREST(apiserver)
    apiserver.handlers[("serviceaccounts", "token")] = tokens.create
    apiserver.authn.token_authenticators.append(tokens.authenticator())
    return tokens
