"""Deterministic RSA keys: the cluster's key pairs, the same for the same seed.

``kubeadm init`` generates every key of the cluster PKI with ``crypto/rand``
(``cmd/kubeadm/app/util/pkiutil``: RSA 2048 by default): the cluster CA (``ca.key``), the
service-account signing key (``sa.key`` / ``sa.pub``), the etcd and front-proxy CAs. A model
run must repeat byte for byte, and RSA signatures with PKCS #1 v1.5 (RS256, and the SHA-256
signatures of x509 certificates) are deterministic for a fixed key, so the model derives each
key from a seeded generator instead: two primes found by a Miller-Rabin search over numbers
drawn from a generator seeded with the key's purpose (``"sa"``, ``"ca"`` ...), assembled into
an ordinary ``cryptography`` RSA key (public exponent 65537, as Go's ``rsa.GenerateKey``
uses). Every model cluster therefore has the same keys, whatever its seed: finding two
1024-bit primes in pure Python costs about a second on a busy machine, so a key is made once
per process (cached) rather than once per cluster.

``cryptography`` is imported when a key is made, not with this module: a model run that never
signs anything needs no ``cryptography`` (the browser edition fetches it only on demand).

These keys are for a model and are predictable by construction: never use them for anything
else.
"""

from __future__ import annotations

import functools
import hashlib
import random
from typing import TYPE_CHECKING

from k8sbook.core import rs256

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["PUBLIC_EXPONENT", "ec_key", "rsa_key", "rsa_numbers", "signing_key"]

PUBLIC_EXPONENT = 65537
_SMALL_PRIMES = [p for p in range(3, 5000) if all(p % d for d in range(2, int(p ** 0.5) + 1))]
_WINDOW = 4096


def _probably_prime(n: int, rng: random.Random, rounds: int = 5) -> bool:
    """Fermat base 2, then ``rounds`` Miller-Rabin rounds with random bases (FIPS 186-4,
    table C.2, asks for 5 rounds for a 1024-bit prime of an RSA 2048 key)."""
    if pow(2, n - 1, n) != 1:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random) -> int:
    """The first probable prime at or after a random odd start (top two bits set, so that
    p*q has exactly 2*bits bits), found by sieving a window of odd numbers by small primes
    before testing the survivors."""
    while True:
        start = rng.getrandbits(bits) | (0b11 << (bits - 2)) | 1
        alive = bytearray([1]) * _WINDOW  # alive[i]: start + 2i has no small factor
        for p in _SMALL_PRIMES:
            first = (-start * pow(2, -1, p)) % p  # the i with start + 2i = 0 (mod p)
            alive[first::p] = bytearray(len(alive[first::p]))
        for i in range(_WINDOW):
            n = start + 2 * i
            if alive[i] and (n - 1) % PUBLIC_EXPONENT and _probably_prime(n, rng):
                return n


def ec_key(purpose: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key for ``purpose`` (what the kubelet generates for its client certificate:
    ``ecdsa.GenerateKey(elliptic.P256(), …)``), derived from a hash of the purpose."""
    from cryptography.hazmat.primitives.asymmetric import ec

    digest = hashlib.sha256(f"k8sbook/{purpose}".encode()).digest()
    return ec.derive_private_key(int.from_bytes(digest, "big") % _P256_ORDER or 1,
                                 ec.SECP256R1())


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@functools.lru_cache(maxsize=64)
def rsa_numbers(purpose: str, bits: int = 2048) -> tuple[int, int, int]:
    """The primes ``p > q`` and the private exponent ``d`` of the key for ``purpose``."""
    rng = random.Random(f"k8sbook/{purpose}/{bits}")
    while True:
        p, q = _prime(bits // 2, rng), _prime(bits // 2, rng)
        if p != q:
            break
    p, q = max(p, q), min(p, q)
    return p, q, pow(PUBLIC_EXPONENT, -1, (p - 1) * (q - 1))


@functools.lru_cache(maxsize=64)
def rsa_key(purpose: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """The model's RSA key for ``purpose`` (``"sa"``, ``"ca"`` ...)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    p, q, d = rsa_numbers(purpose, bits)
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(PUBLIC_EXPONENT, p * q))
    return numbers.private_key()


def signing_key(purpose: str) -> rsa.RSAPrivateKey | rs256.PrivateKey:
    """The key for ``purpose`` as ``cryptography`` holds it, or, where ``cryptography`` cannot
    be imported (the browser edition offline), the same numbers for :mod:`k8sbook.core.rs256`."""
    try:
        return rsa_key(purpose)
    except ModuleNotFoundError as err:
        if (err.name or "cryptography").split(".")[0] != "cryptography":
            raise
    p, q, d = rsa_numbers(purpose)
    return rs256.PrivateKey(p * q, PUBLIC_EXPONENT, d)
