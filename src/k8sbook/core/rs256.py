"""RS256 (RSASSA-PKCS1-v1_5 with SHA-256) in pure Python, for when ``cryptography`` is missing.

The model signs service-account tokens with ``cryptography`` (through PyJWT). The browser
edition cannot bundle ``cryptography`` (compiled code, served only by Pyodide's CDN), and every
component that runs as a service account presents such a token, so without it offline almost
no cluster would start. The signature scheme is simple and deterministic (RFC 8017, section
8.2: ``EMSA-PKCS1-v1_5`` encoding of the SHA-256 digest, then ``m^d mod n``), and the model's
keys are numbers it derives itself (:func:`k8sbook.core.keys.rsa_numbers`), so the same key
gives the same signature bytes either way; :mod:`k8sbook.apiserver.serviceaccount` uses these
functions only when ``cryptography`` cannot be imported. ``spki_der`` is the public key's
``SubjectPublicKeyInfo`` in DER (RFC 8017, appendix A.1; RFC 5280, section 4.1), which the key
id of a token hashes.

For a model only: no blinding, no constant time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["PrivateKey", "PublicKey", "sign", "spki_der", "verify"]

#: DER of ``DigestInfo`` for SHA-256 up to the digest (RFC 8017, section 9.2, note 1)
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
#: DER of ``AlgorithmIdentifier`` rsaEncryption (OID 1.2.840.113549.1.1.1) with NULL parameters
_RSA_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101010500")


@dataclass(frozen=True)
class PublicKey:
    n: int
    e: int


@dataclass(frozen=True)
class PrivateKey:
    n: int
    e: int
    d: int

    def public_key(self) -> PublicKey:
        return PublicKey(self.n, self.e)


def _encoded(message: bytes, size: int) -> int:
    digest_info = _SHA256_PREFIX + hashlib.sha256(message).digest()
    padding = b"\xff" * (size - len(digest_info) - 3)
    return int.from_bytes(b"\x00\x01" + padding + b"\x00" + digest_info, "big")


def sign(key: PrivateKey, message: bytes) -> bytes:
    size = (key.n.bit_length() + 7) // 8
    return pow(_encoded(message, size), key.d, key.n).to_bytes(size, "big")


def verify(key: PublicKey, message: bytes, signature: bytes) -> bool:
    size = (key.n.bit_length() + 7) // 8
    if len(signature) != size or int.from_bytes(signature, "big") >= key.n:
        return False
    return pow(int.from_bytes(signature, "big"), key.e, key.n) == _encoded(message, size)


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else \
        bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def _integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def spki_der(key: PublicKey) -> bytes:
    """``SubjectPublicKeyInfo``: rsaEncryption, and ``RSAPublicKey {n, e}`` as a BIT STRING."""
    rsa_public_key = _der(0x30, _integer(key.n) + _integer(key.e))
    return _der(0x30, _RSA_ALGORITHM + _der(0x03, b"\x00" + rsa_public_key))
