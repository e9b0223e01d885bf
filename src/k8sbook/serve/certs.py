"""The certificates ``k8sbook serve`` needs, made the way ``kubeadm init`` makes them.

Mirrors kubeadm's certs phase (``cmd/kubeadm/app/phases/certs``) and its ``admin.conf``: a
self-signed cluster CA with Common Name ``kubernetes``, a serving certificate for
kube-apiserver signed by it (Subject Alternative Names for the addresses clients dial, here
``127.0.0.1`` and ``localhost`` plus the ``kubernetes.default.svc`` names), and a client
certificate for kubectl with CN ``kubernetes-admin`` and O ``kubeadm:cluster-admins``, which the
apiserver's x509 authenticator turns into that user in that group. Keys are RSA 2048, kubeadm's
default; the CA is valid for ten years and the others for one, as kubeadm makes them.

These certificates are real (the only part of the model that reads the wall clock, since TLS
clients check validity against it): client-go sends a kubeconfig's credentials only over TLS,
so kubectl needs HTTPS to be anyone but ``system:anonymous``. ``cryptography`` is imported
when certificates are made, as in the rest of the model.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

CA_NAME = "kubernetes"
SERVER_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local")


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class PKI:
    ca: KeyPair
    apiserver: KeyPair
    admin: KeyPair


def _key() -> rsa.RSAPrivateKey:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sign(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name,
          issuer_key: rsa.RSAPrivateKey, *, days: int, ca: bool = False,
          usage: x509.ObjectIdentifier | None = None,
          sans: list[x509.GeneralName] | None = None) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, key_encipherment=not ca, key_cert_sign=ca,
                   content_commitment=False, data_encipherment=False, key_agreement=False,
                   crl_sign=False, encipher_only=False, decipher_only=False), critical=True))
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def make_pki() -> PKI:
    """A fresh CA, apiserver serving certificate and kubectl client certificate."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_key, server_key, admin_key = _key(), _key(), _key()
    ca_name = _name(CA_NAME)
    ca_pem = _sign(ca_name, ca_key, ca_name, ca_key, days=3650, ca=True)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_NAMES]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    server_pem = _sign(_name("kube-apiserver"), server_key, ca_name, ca_key, days=365,
                       usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=sans)
    admin_pem = _sign(_name("kubernetes-admin", ("kubeadm:cluster-admins",)), admin_key,
                      ca_name, ca_key, days=365, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return PKI(KeyPair(ca_pem, _pem_key(ca_key)), KeyPair(server_pem, _pem_key(server_key)),
               KeyPair(admin_pem, _pem_key(admin_key)))


def subject(cert_pem: bytes) -> str:
    """A certificate's subject as OpenSSL prints it, e.g. ``O = g, CN = user``."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_pem_x509_certificate(cert_pem)
    short = {NameOID.ORGANIZATION_NAME: "O", NameOID.COMMON_NAME: "CN"}
    return ", ".join(f"{short.get(a.oid, a.oid.dotted_string)} = {_text(a.value)}"
                     for a in cert.subject)


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode()


def tls_context(pki: PKI) -> ssl.SSLContext:
    """The apiserver's TLS: its serving certificate, and ``--client-ca-file``: a client
    certificate signed by the CA, if one is sent (tokens work too)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="k8sbook-pki-") as d:
        cert, key = Path(d, "apiserver.crt"), Path(d, "apiserver.key")
        cert.write_bytes(pki.apiserver.cert_pem)
        key.write_bytes(pki.apiserver.key_pem)
        ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cadata=pki.ca.cert_pem.decode())
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx
