"""Service-account tokens as signed JWTs: made, checked, and turned into a user.

Mirrors ``pkg/serviceaccount`` (``jwt.go``, ``claims.go``, ``legacy.go``, v1.35) and
``k8s.io/apiserver/pkg/authentication/serviceaccount``:

- **Signing** (``JWTTokenGenerator``): RS256 with the service-account key kubeadm writes as
  ``/etc/kubernetes/pki/sa.key`` (``--service-account-signing-key-file``; ``sa.pub`` is
  ``--service-account-key-file``), the header ``{"alg": "RS256", "kid": …}`` whose key id is the
  unpadded base64url SHA-256 of the public key's PKIX DER (``keyIDFromPublicKey``), and the
  issuer kubeadm sets, ``https://kubernetes.default.svc.cluster.local``.
- **Claims** (``Claims``): ``aud``, ``exp``, ``iat``, ``nbf``, ``iss``, ``jti`` (a UUID,
  ``ServiceAccountTokenJTI``), ``sub`` = ``system:serviceaccount:<ns>:<name>``, and the private
  ``kubernetes.io`` claim: ``namespace``, ``serviceaccount`` {name, uid}, then ``pod`` (with the
  pod's ``node``), ``secret`` or ``node`` for a bound token, and ``warnafter`` for an extended
  one. The JSON keys are sorted, as Go's encoder writes the merged claims.
- **Authenticating** (``JWTTokenAuthenticator``): a token whose unverified ``iss`` is not ours
  is not ours (the next authenticator may know it); otherwise the signature must verify with a
  public key of the same ``kid``, the issuer must be ours, and the token's audiences must meet
  the audiences asked for (the apiserver's own, ``--api-audiences``, by default): ``token
  audiences ["x"] is invalid for the target audiences ["https://…"]``. A token with no
  audience (a legacy one) gets the apiserver's.
- **Validating** bound tokens (``validator.Validate``): times as go-jose's ``Claims.Validate``
  with its one-minute ``DefaultLeeway`` (``service account token has expired`` / ``is not valid
  yet`` / ``is issued in the future``), then the ServiceAccount (``serviceaccount "x" not
  found``, ``service account UID (…) does not match claim (…)``), the Secret, the Pod and, for
  a token bound to a Node, the Node (``service account token has been invalidated`` when gone;
  ``pod UID (…) does not match service account pod ref claim (…)`` when recreated). Objects are
  read from the watch cache, as upstream reads them from informers.
- **Legacy tokens** (``LegacyClaims``, ``legacyValidator``): issuer ``kubernetes/serviceaccount``,
  no ``aud``, no ``exp``, flat ``kubernetes.io/serviceaccount/...`` claims; valid while the
  Secret holds exactly this token and the ServiceAccount is the same one (``Token has been
  invalidated``, ``Token does not match server's copy``, ``ServiceAccount UID (…) does not
  match claim (…)``).

JWS encoding and RS256 come from PyJWT (with ``cryptography``), the maintained Python library
for JWTs, rather than hand-rolled base64url and PKCS #1 code: it refuses the ``none`` algorithm
and algorithms not asked for. PyJWT's own time checks read the wall clock, so they are off and
the go-jose rules above run on the model's virtual clock. PyJWT and ``cryptography`` are
imported by the functions that sign or read a token, so that a cluster which never meets a
service-account token needs neither; where ``cryptography`` cannot be imported at all (the
browser edition offline) PyJWT gets an RS256 of :mod:`k8sbook.core.rs256` over the same key
numbers (:func:`k8sbook.core.keys.signing_key`), which signs the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from k8sbook.api.request import UserInfo
from k8sbook.apiserver.authentication import InvalidToken
from k8sbook.core import rs256
from k8sbook.core.clock import EPOCH, Clock

if TYPE_CHECKING:
    from types import ModuleType

    from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["DEFAULT_LEEWAY", "ISSUER", "LEGACY_ISSUER", "InvalidToken", "JWTAuthenticator",
           "TokenGenerator", "bound_claims", "decode_unverified", "key_id", "legacy_claims",
           "pyjwt", "unix_time", "user_info"]

#: kubeadm's ``--service-account-issuer`` (``https://kubernetes.default.svc.<dnsDomain>``)
ISSUER = "https://kubernetes.default.svc.cluster.local"
#: ``serviceaccount.LegacyIssuer``: the tokens controller's Secret-based tokens
LEGACY_ISSUER = "kubernetes/serviceaccount"
#: go-jose ``jwt.DefaultLeeway``
DEFAULT_LEEWAY = 60.0
#: ``user.Info`` extra keys of ``serviceaccount.ServiceAccountInfo.UserInfo``
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"
_EPOCH_UNIX = int(EPOCH.timestamp())


def unix_time(virtual: float) -> int:
    """A virtual time as a JWT ``NumericDate`` (whole seconds since 1970)."""
    return _EPOCH_UNIX + int(virtual)


def pyjwt() -> ModuleType:
    """PyJWT, with an RS256 of :mod:`k8sbook.core.rs256` if it has none (no cryptography)."""
    import jwt
    from jwt.algorithms import Algorithm

    class PureRS256(Algorithm):
        # registered once per process, so keys are checked by their fields, not their class
        # (a reloaded k8sbook has new classes)
        def prepare_key(self, key: Any) -> Any:
            if not (hasattr(key, "n") and hasattr(key, "e")):
                raise jwt.InvalidKeyError("RS256 without cryptography takes the model's keys")
            return key

        def sign(self, msg: bytes, key: Any) -> bytes:
            return rs256.sign(key, msg)

        def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:
            return rs256.verify(key, msg, sig)  # a private key has its public n and e too

        @staticmethod
        def to_jwk(key_obj: Any, as_dict: bool = False) -> Any:
            raise NotImplementedError

        @staticmethod
        def from_jwk(jwk: Any) -> Any:
            raise NotImplementedError

    try:
        jwt.api_jws.get_algorithm_by_name("RS256")
    except NotImplementedError:  # PyJWT has RS256 only with cryptography
        jwt.register_algorithm("RS256", PureRS256())
    return jwt


def key_id(public_key: rsa.RSAPublicKey | rs256.PublicKey) -> str:
    """``keyIDFromPublicKey``: base64url (unpadded) of SHA-256 over the PKIX DER."""
    if isinstance(public_key, rs256.PublicKey):
        der = rs256.spki_der(public_key)
    else:
        from cryptography.hazmat.primitives import serialization

        der = public_key.public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a token, *not* verified (what ``jwt.io`` shows)."""
    import jwt

    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


class TokenGenerator:
    """``JWTTokenGenerator``: signs claims with ``key``, adding ``iss``."""

    def __init__(self, issuer: str, key: rsa.RSAPrivateKey | rs256.PrivateKey) -> None:
        self.issuer = issuer
        self.key = key
        self.kid = key_id(key.public_key())

    def generate(self, claims: dict[str, Any]) -> str:
        jwt = pyjwt()

        payload = dict(sorted({**claims, "iss": self.issuer}.items()))
        return jwt.encode(payload, self.key, algorithm="RS256",
                          headers={"kid": self.kid, "typ": None})


def _ref(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata", {})
    return {k: v for k, v in (("name", meta.get("name", "")), ("uid", meta.get("uid", ""))) if v}


def bound_claims(sa: dict[str, Any], *, now: float, expiration_seconds: int, audiences: list[str],
                 jti: str, pod: dict[str, Any] | None = None,
                 secret: dict[str, Any] | None = None, node: dict[str, Any] | None = None,
                 warn_after: int = 0) -> dict[str, Any]:
    """``serviceaccount.Claims``: the public and ``kubernetes.io`` claims of a TokenRequest."""
    meta = sa["metadata"]
    k8s: dict[str, Any] = {"namespace": meta["namespace"], "serviceaccount": _ref(sa)}
    if pod is not None:
        k8s["pod"] = _ref(pod)
        if node is not None:
            k8s["node"] = _ref(node)
    elif secret is not None:
        k8s["secret"] = _ref(secret)
    elif node is not None:
        k8s["node"] = _ref(node)
    if warn_after:
        k8s["warnafter"] = unix_time(now + warn_after)
    return {"aud": list(audiences), "exp": unix_time(now + expiration_seconds),
            "iat": unix_time(now), "jti": jti, "kubernetes.io": dict(sorted(k8s.items())),
            "nbf": unix_time(now),
            "sub": f"system:serviceaccount:{meta['namespace']}:{meta['name']}"}


def legacy_claims(sa: dict[str, Any], secret_name: str) -> dict[str, Any]:
    """``LegacyClaims``: what the tokens controller puts in a Secret's token."""
    meta = sa["metadata"]
    return {"kubernetes.io/serviceaccount/namespace": meta["namespace"],
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": meta["name"],
            "kubernetes.io/serviceaccount/service-account.uid": meta.get("uid", ""),
            "sub": f"system:serviceaccount:{meta['namespace']}:{meta['name']}"}


def user_info(namespace: str, name: str, uid: str, extra: dict[str, str]) -> UserInfo:
    """``ServiceAccountInfo.UserInfo``."""
    return UserInfo(f"system:serviceaccount:{namespace}:{name}",
                    ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"), uid,
                    tuple(sorted(extra.items())))


#: reads an object from the watch cache: (plural, namespace, name) -> object or None
Getter = Callable[[str, str, str], "dict[str, Any] | None"]


@dataclass
class JWTAuthenticator:
    """``JWTTokenAuthenticator`` with the bound-token and legacy validators."""

    issuers: tuple[str, ...]
    #: the verifying keys (``--service-account-key-file``), read when first needed
    public_keys: Callable[[], tuple[rsa.RSAPublicKey | rs256.PublicKey, ...]]
    implicit_audiences: tuple[str, ...]
    get: Getter
    clock: Clock
    #: token -> (the keys it was checked against, what its signature check gave): the
    #: check is a pure function of the token and the keys, so a token presented again is not
    #: parsed and verified again (every time-, audience- and object-dependent check below
    #: still runs on every request)
    _signatures: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False,
                                                    compare=False)

    def _signed_claims(self, token: str) -> dict[str, Any] | str | None:
        """The verified claims; ``None`` if the token is not ours; the refusal's message."""
        jwt = pyjwt()

        try:
            header, unverified = decode_unverified(token)
        except jwt.PyJWTError:
            return None
        if not isinstance(unverified, dict) or unverified.get("iss") not in self.issuers:
            return None  # hasCorrectIssuer
        keys = [k for k in self.public_keys() if not header.get("kid") or
                key_id(k) == header["kid"]]
        if not keys:
            return "invalid signature, no keys found"
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(token, key, algorithms=["RS256"], options={
                    "verify_exp": False, "verify_nbf": False, "verify_iat": False,
                    "verify_aud": False, "verify_iss": False})
                return claims
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as err:
                return str(err)
        return "go-jose/go-jose: error in cryptographic primitive"

    def __call__(self, token: str, audiences: tuple[str, ...] = ()) -> \
            tuple[UserInfo, tuple[str, ...]] | None:
        """The user and the audiences the token is good for; ``None`` if the token is not one
        of ours; :class:`InvalidToken` if it is and is refused."""
        keys_now = self.public_keys()
        seen = self._signatures.get(token)
        if seen is not None and seen[0] == keys_now:
            checked = seen[1]
        else:
            checked = self._signed_claims(token)
            if len(self._signatures) >= 4096:
                self._signatures.clear()
            self._signatures[token] = (keys_now, checked)
        if checked is None:
            return None
        if isinstance(checked, str):
            raise InvalidToken(checked)
        claims = checked
        token_auds = claims.get("aud") or []
        token_auds = [token_auds] if isinstance(token_auds, str) else list(token_auds)
        if not token_auds:
            token_auds = list(self.implicit_audiences)  # legacy tokens: apiserver audiences
        wanted = list(audiences or self.implicit_audiences)
        auds = tuple(a for a in token_auds if a in wanted)
        if not auds:
            raise InvalidToken(f"token audiences {_go_quote(token_auds)} is invalid for the "
                               f"target audiences {_go_quote(wanted)}")
        if claims.get("iss") == LEGACY_ISSUER:
            return self._validate_legacy(token, claims), auds
        return self._validate(claims), auds

    def _validate(self, claims: dict[str, Any]) -> UserInfo:
        now = unix_time(self.clock.now())
        leeway = int(DEFAULT_LEEWAY)
        if "nbf" in claims and now + leeway < claims["nbf"]:
            raise InvalidToken("service account token is not valid yet")
        if "exp" in claims and now - leeway > claims["exp"]:
            raise InvalidToken("service account token has expired")
        if "iat" in claims and now + leeway < claims["iat"]:
            raise InvalidToken("service account token is issued in the future")
        k8s = claims.get("kubernetes.io") or {}
        ns = k8s.get("namespace", "")
        saref = k8s.get("serviceaccount") or {}
        sa = self.get("serviceaccounts", ns, saref.get("name", ""))
        if sa is None:
            raise InvalidToken(f'serviceaccount "{saref.get("name", "")}" not found')
        if sa["metadata"].get("uid") != saref.get("uid"):
            raise InvalidToken(f"service account UID ({sa['metadata'].get('uid')}) does not "
                               f"match claim ({saref.get('uid')})")
        extra: dict[str, str] = {}
        for kind, plural in (("secret", "secrets"), ("pod", "pods")):
            ref = k8s.get(kind)
            if ref is None:
                continue
            obj = self.get(plural, ns, ref.get("name", ""))
            if obj is None:
                raise InvalidToken("service account token has been invalidated")
            if obj["metadata"].get("uid") != ref.get("uid"):
                raise InvalidToken(f"{kind} UID ({obj['metadata'].get('uid')}) does not match "
                                   f"service account {kind} ref claim ({ref.get('uid')})")
            if kind == "pod":
                extra.update({POD_NAME_KEY: ref["name"], POD_UID_KEY: ref.get("uid", "")})
        node = k8s.get("node")
        if node is not None:
            if "pod" not in k8s:  # a token bound to the Node itself
                obj = self.get("nodes", "", node.get("name", ""))
                if obj is None:
                    raise InvalidToken("service account token has been invalidated")
                if obj["metadata"].get("uid") != node.get("uid"):
                    raise InvalidToken(f"node UID ({obj['metadata'].get('uid')}) does not "
                                       f"match service account node ref claim "
                                       f"({node.get('uid')})")
            extra[NODE_NAME_KEY] = node.get("name", "")
            if node.get("uid"):
                extra[NODE_UID_KEY] = node["uid"]
        if claims.get("jti"):
            extra[CREDENTIAL_ID_KEY] = f"JTI={claims['jti']}"
        return user_info(ns, saref.get("name", ""), saref.get("uid", ""), extra)

    def _validate_legacy(self, token: str, claims: dict[str, Any]) -> UserInfo:
        prefix = "kubernetes.io/serviceaccount/"
        ns = claims.get(prefix + "namespace", "")
        secret_name = claims.get(prefix + "secret.name", "")
        name = claims.get(prefix + "service-account.name", "")
        uid = claims.get(prefix + "service-account.uid", "")
        if claims.get("sub") != f"system:serviceaccount:{ns}:{name}":
            raise InvalidToken("sub claim is invalid")
        secret = self.get("secrets", ns, secret_name)
        if secret is None:
            raise InvalidToken("Token has been invalidated")
        stored = (secret.get("data") or {}).get("token", "")
        if base64.b64decode(stored or "").decode() != token:
            raise InvalidToken("Token does not match server's copy")
        sa = self.get("serviceaccounts", ns, name)
        if sa is None:
            raise InvalidToken(f'serviceaccount "{name}" not found')
        if sa["metadata"].get("uid") != uid:
            raise InvalidToken(f"ServiceAccount UID ({sa['metadata'].get('uid')}) does not "
                               f"match claim ({uid})")
        return user_info(ns, name, uid, {})


def _go_quote(values: list[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"
