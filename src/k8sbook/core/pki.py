"""The cluster PKI as ``kubeadm init`` makes it, in real x509 on the model's virtual time.

Mirrors ``cmd/kubeadm/app/phases/certs`` (``certlist.go``) and ``pkiutil``: three self-signed
CAs, each valid ten years (``CertificateValidityPeriod`` of a CA), whose subjects are CN
``kubernetes`` (``ca.crt``, the cluster CA that signs the apiserver's serving certificate and
every client certificate the apiserver trusts), CN ``etcd-ca`` (``etcd/ca.crt``, for etcd's
serving and peer certificates and the apiserver's ``apiserver-etcd-client``) and CN
``front-proxy-ca`` (``front-proxy-ca.crt``, for ``front-proxy-client``, the certificate the
aggregator presents to extension API servers); and the leaf certificates they sign, valid one
year, with the CN and O listed in :data:`KUBEADM_CERTIFICATES`.

:func:`sign` is also what ``csrsigning`` uses (``pkg/controller/certificates/signer``) to turn an
approved CertificateSigningRequest into a certificate, and :func:`certificate_request` what the
kubelet's certificate manager sends. Keys come from :func:`k8sbook.core.keys.rsa_key` and the
validity windows from virtual time (seconds since :data:`k8sbook.core.clock.EPOCH`), so every
certificate is the same bytes in every run. (``k8sbook serve``'s certificates, which real TLS
clients check against the wall clock, are made in :mod:`k8sbook.serve.certs`.)

``cryptography`` is imported by the functions that build, sign, read or verify a certificate,
not with this module, so that a run which never does any of that needs no ``cryptography``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from k8sbook.core.clock import EPOCH
from k8sbook.core.keys import rsa_key

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = [
    "CAS",
    "CA_DAYS",
    "KUBEADM_CERTIFICATES",
    "LEAF_DAYS",
    "bundle",
    "bundle_subjects",
    "ca",
    "certificate_request",
    "issuer_of",
    "pem",
    "sans_of",
    "sign",
    "subject_of",
    "subject_of_request",
    "verify",
]

CA_DAYS = 3650
LEAF_DAYS = 365
#: the three CAs: file name -> subject CN
CAS = {"ca": "kubernetes", "etcd/ca": "etcd-ca", "front-proxy-ca": "front-proxy-ca"}
#: kubeadm's leaf certificates: file, signing CA, CN, O, who presents it to whom
KUBEADM_CERTIFICATES: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    ("apiserver", "ca", "kube-apiserver", (), "kube-apiserver to its clients (serving)"),
    ("apiserver-kubelet-client", "ca", "kube-apiserver-kubelet-client",
     ("kubeadm:cluster-admins",), "kube-apiserver to each kubelet"),
    ("apiserver-etcd-client", "etcd/ca", "kube-apiserver-etcd-client", (),
     "kube-apiserver to etcd"),
    ("etcd/server", "etcd/ca", "<node name>", (), "etcd to its clients (serving)"),
    ("etcd/peer", "etcd/ca", "<node name>", (), "etcd member to etcd member"),
    ("etcd/healthcheck-client", "etcd/ca", "kube-etcd-healthcheck-client", (),
     "the etcd liveness probe to etcd"),
    ("front-proxy-client", "front-proxy-ca", "front-proxy-client", (),
     "kube-aggregator to extension API servers"),
    ("admin.conf", "ca", "kubernetes-admin", ("kubeadm:cluster-admins",),
     "kubectl to kube-apiserver"),
    ("super-admin.conf", "ca", "kubernetes-super-admin", ("system:masters",),
     "break-glass kubectl to kube-apiserver"),
    ("controller-manager.conf", "ca", "system:kube-controller-manager", (),
     "kube-controller-manager to kube-apiserver"),
    ("scheduler.conf", "ca", "system:kube-scheduler", (), "kube-scheduler to kube-apiserver"),
    ("kubelet.conf", "ca", "system:node:<node name>", ("system:nodes",),
     "kubelet to kube-apiserver (then rotated through CSRs)"),
)


def _at(virtual: float) -> datetime:
    return EPOCH + timedelta(seconds=int(virtual))


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _serial(*parts: object) -> int:
    """A deterministic positive serial number below 2^159 (RFC 5280 allows 20 octets)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:19], "big") | 1


@dataclass(frozen=True)
class CA:
    """One certificate authority: its certificate and key (``ca.crt`` / ``ca.key``)."""

    file: str
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


@functools.lru_cache(maxsize=8)
def ca(file: str = "ca") -> CA:
    """The CA kubeadm writes as ``/etc/kubernetes/pki/<file>.crt`` (see :data:`CAS`); any
    other name is a self-signed authority of that CN that kubeadm does not make (a webhook's
    own CA, say)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = rsa_key(file)
    name = _name(CAS.get(file, file))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(_serial("ca", file))
            .not_valid_before(_at(0)).not_valid_after(_at(CA_DAYS * 86400))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_encipherment=True, key_cert_sign=True,
                content_commitment=False, data_encipherment=False, key_agreement=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return CA(file, cert, key)


def _sans(dns_names: tuple[str, ...], ips: tuple[str, ...]) -> x509.SubjectAlternativeName:
    import ipaddress

    from cryptography import x509

    return x509.SubjectAlternativeName(
        [*(x509.DNSName(d) for d in dns_names),
         *(x509.IPAddress(ipaddress.ip_address(i)) for i in ips)])


def certificate_request(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, cn: str,
                        orgs: tuple[str, ...] = (), *, dns_names: tuple[str, ...] = (),
                        ips: tuple[str, ...] = ()) -> bytes:
    """A PEM ``CERTIFICATE REQUEST`` for subject CN/O and, for a serving certificate, the
    subject alternative names ``dns_names`` and ``ips`` (``x509.CreateCertificateRequest`` of
    the certificate manager's template); an ECDSA signature is made deterministic (RFC 6979)
    so that runs repeat."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(cn, orgs))
    if dns_names or ips:
        builder = builder.add_extension(_sans(dns_names, ips), critical=False)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        csr = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    else:
        csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def sign(request_pem: bytes, *, by: CA, now: float, duration: float,
         usages: tuple[str, ...] = ("client auth",)) -> x509.Certificate:
    """Sign a CSR's subject and public key with ``by``, valid from ``now`` for ``duration``
    seconds but never past the CA's own expiry (the signer's ``PermissiveSigningPolicy``
    clamps ``notAfter`` to the CA's), with a back-dated ``notBefore`` of five minutes
    (``backdate``) as upstream does to absorb clock skew. The request's subject alternative
    names are copied (``authority.Sign`` takes ``DNSNames``, ``IPAddresses``, ``URIs`` and
    ``EmailAddresses`` from the CSR)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    csr = x509.load_pem_x509_csr(request_pem)
    not_before = _at(max(0.0, now - 300))
    not_after = min(_at(now + duration), by.certificate.not_valid_after_utc)
    ekus = {"client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
            "server auth": ExtendedKeyUsageOID.SERVER_AUTH}
    pub = csr.public_key()
    assert isinstance(pub, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    builder = (x509.CertificateBuilder().subject_name(csr.subject)
               .issuer_name(by.certificate.subject).public_key(pub)
               .serial_number(_serial(by.file, request_pem.decode(), now))
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, key_encipherment="key encipherment" in usages,
                   key_cert_sign=False,
                   content_commitment=False, data_encipherment=False, key_agreement=False,
                   crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ekus[u] for u in usages if u in ekus]),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   by.key.public_key()), critical=False))
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        builder = builder.add_extension(sans, critical=False)
    except x509.ExtensionNotFound:
        pass
    return builder.sign(by.key, hashes.SHA256())


def sans_of(obj: x509.Certificate | x509.CertificateSigningRequest
            ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The subject alternative names of a certificate or request: (DNS names, IP addresses,
    email addresses, URIs), each in the order written."""
    from cryptography import x509

    try:
        ext = obj.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), (), (), ()
    return (tuple(ext.get_values_for_type(x509.DNSName)),
            tuple(str(i) for i in ext.get_values_for_type(x509.IPAddress)),
            tuple(ext.get_values_for_type(x509.RFC822Name)),
            tuple(ext.get_values_for_type(x509.UniformResourceIdentifier)))


def pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def bundle(*files: str) -> str:
    """A ``caBundle`` value: the PEM certificates of the CAs ``files``, base64-encoded, as a
    webhook configuration or an APIService carries them."""
    import base64

    return base64.b64encode(b"".join(pem(ca(f).certificate) for f in files)).decode()


def bundle_subjects(ca_bundle: str) -> tuple[str, ...]:
    """The subject CNs of the certificates in a base64 ``caBundle`` (the roots a client that
    verifies with it trusts); none for an empty bundle or one that is not PEM."""
    import base64
    import binascii

    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(base64.b64decode(ca_bundle))
    except (ValueError, binascii.Error):
        return ()
    return tuple(subject_of(c)[0] for c in certs)


def subject_of(cert: x509.Certificate) -> tuple[str, tuple[str, ...]]:
    """(CN, Os) of a certificate: what the x509 authenticator turns into user and groups."""
    from cryptography.x509.oid import NameOID

    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return (str(cn[0].value) if cn else "", tuple(str(o.value) for o in orgs))


def issuer_of(cert: x509.Certificate) -> str:
    """The CN of a certificate's issuer (``kubernetes`` for what the cluster CA signed)."""
    from cryptography.x509.oid import NameOID

    cn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cn[0].value) if cn else ""


def subject_of_request(csr: x509.CertificateSigningRequest) -> tuple[str, tuple[str, ...]]:
    """(CN, Os) of a certificate request."""
    from cryptography.x509.oid import NameOID

    cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return (str(cn[0].value) if cn else "", tuple(str(o.value) for o in orgs))


def verify(cert: x509.Certificate, by: CA, now: float) -> str:
    """Why ``cert`` does not verify against ``by`` at virtual time ``now``, or ``""``: the
    messages of Go's ``crypto/x509`` that the apiserver logs."""
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(by.certificate)
    except (InvalidSignature, ValueError, TypeError):
        return "x509: certificate signed by unknown authority"
    t = _at(now)
    if t < cert.not_valid_before_utc or t > cert.not_valid_after_utc:
        return ("x509: certificate has expired or is not yet valid: current time "
                f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')} is after "
                f"{cert.not_valid_after_utc.strftime('%Y-%m-%dT%H:%M:%SZ')}"
                if t > cert.not_valid_after_utc else
                "x509: certificate has expired or is not yet valid")
    return ""
