"""The pure-Python RS256 signs what cryptography signs, with the same key numbers."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from k8sbook.apiserver.serviceaccount import TokenGenerator, key_id
from k8sbook.core import rs256
from k8sbook.core.keys import PUBLIC_EXPONENT, rsa_key, rsa_numbers


def _pure(purpose: str) -> rs256.PrivateKey:
    p, q, d = rsa_numbers(purpose)
    return rs256.PrivateKey(p * q, PUBLIC_EXPONENT, d)


def test_signatures_and_key_ids_are_the_same_bytes():
    key, pure = rsa_key("sa"), _pure("sa")
    for message in (b"", b"header.payload", bytes(range(256)) * 3):
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        assert rs256.sign(pure, message) == signature
        assert rs256.verify(pure.public_key(), message, signature)
        assert not rs256.verify(pure.public_key(), message + b"x", signature)
    assert rs256.spki_der(pure.public_key()) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_id(pure.public_key()) == key_id(key.public_key())


def test_the_signature_of_a_token_is_the_pure_signature_of_its_signing_input():
    claims = {"sub": "system:serviceaccount:default:x", "aud": ["a"], "exp": 2, "iat": 1}
    token = TokenGenerator("issuer", rsa_key("sa")).generate(claims)
    signing_input, _, signature = token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    assert rs256.sign(_pure("sa"), signing_input.encode()) == raw
