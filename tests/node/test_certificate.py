"""TLS bootstrapping and certificate rotation, as the kubelet's certificate manager does them."""

import pytest
from cryptography import x509
from kubernetes_validate import validate

from k8sbook.api.request import ClientCertificate
from k8sbook.cluster import Cluster
from k8sbook.core import pki
from k8sbook.core.clock import EPOCH
from k8sbook.core.keys import rsa_key
from k8sbook.node.kubelet.certificate import CURRENT, digested_name
from tests.helpers import status_error


@pytest.fixture()
def boot():
    c = Cluster(0)
    kcm = c.add_controller_manager(controllers=("csrapproving", "csrsigning"))
    kcm.start()
    c.run_for(20)
    kcm.controllers["csrsigning"].duration = 3600.0  # --cluster-signing-duration=1h
    kubelet = c.add_kubelet("node-b", bootstrap=True).start()
    c.run_for(5)
    return c, kubelet


def test_kubelet_bootstraps_its_client_certificate(boot):
    c, kubelet = boot
    (name,) = kubelet.certificates.requests
    csr = c.admin().get("certificatesigningrequests", name)
    validate(csr, "1.35.0", strict=True)
    request = x509.load_pem_x509_csr(csr["spec"]["request"].encode())
    assert name == digested_name(request.public_key(), "system:node:node-b", ("system:nodes",),
                                 ("digital signature", "client auth"))
    assert pki.subject_of_request(request) == ("system:node:node-b", ("system:nodes",))
    spec = csr["spec"]
    assert spec["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    assert spec["username"].startswith("system:bootstrap:")
    assert spec["groups"] == ["system:bootstrappers",
                              "system:bootstrappers:kubeadm:default-node-token",
                              "system:authenticated"]
    (approved,) = csr["status"]["conditions"]
    assert (approved["type"], approved["reason"], approved["message"]) == (
        "Approved", "AutoApproved",
        "Auto approving kubelet client certificate after SubjectAccessReview.")
    cert = x509.load_pem_x509_certificate(csr["status"]["certificate"].encode())
    cert.verify_directly_issued_by(pki.ca().certificate)
    assert pki.subject_of(cert) == ("system:node:node-b", ("system:nodes",))
    # the kubelet now presents it, and registered its Node with it
    creds = kubelet.client.credentials
    assert isinstance(creds, ClientCertificate) and creds.pem == pki.pem(cert)
    assert c.admin().get("nodes", "node-b")["metadata"]["name"] == "node-b"
    assert kubelet.filesystem[CURRENT].startswith("-----BEGIN CERTIFICATE-----")
    registered = [m for m in c.trace.filter(resource="nodes") if m.src == "kubelet/node-b"]
    assert registered and registered[0].t >= c.trace.filter(
        resource="certificatesigningrequests/status")[0].t


def test_kubelet_rotates_before_expiry_with_a_selfnodeclient_csr(boot):
    c, kubelet = boot
    first = kubelet.certificates.current
    lifetime = (first.not_valid_after_utc - first.not_valid_before_utc).total_seconds()
    start = (first.not_valid_before_utc - EPOCH).total_seconds()
    deadline = kubelet.certificates.deadline
    assert start + 0.7 * lifetime <= deadline <= start + 0.9 * lifetime
    c.run_for(deadline - c.clock.now() + 2)
    assert len(kubelet.certificates.requests) == 2
    second_csr = c.admin().get("certificatesigningrequests", kubelet.certificates.requests[1])
    assert second_csr["metadata"]["name"].startswith("csr-")
    assert second_csr["spec"]["username"] == "system:node:node-b"
    assert second_csr["status"]["conditions"][0]["message"] == \
        "Auto approving self kubelet client certificate after SubjectAccessReview."
    assert kubelet.certificates.current != first
    assert kubelet.client.credentials.pem == pki.pem(kubelet.certificates.current)


def test_an_expired_client_certificate_is_401(boot):
    c, kubelet = boot
    old = kubelet.client.credentials
    kubelet.certificates.stop()  # no rotation
    c.run_for(3600 + 5)
    stale = c.client("curl", old)
    assert status_error(lambda: stale.get("nodes", "node-b")) == (401, "Unauthorized")
    assert c.apiserver.authn.last_failure.startswith(
        "x509: certificate has expired or is not yet valid: current time")


def test_certificate_not_signed_by_the_cluster_ca_is_401(boot):
    c, _ = boot
    key = rsa_key("intruder")
    foreign = pki.CA("intruder", pki.ca("front-proxy-ca").certificate, pki.ca("front-proxy-ca").key)
    request = pki.certificate_request(key, "system:node:node-b", ("system:nodes",))
    cert = pki.sign(request, by=foreign, now=c.clock.now(), duration=3600)
    who = c.client("curl", ClientCertificate("system:node:node-b", ("system:nodes",),
                                             pem=pki.pem(cert)))
    assert status_error(lambda: who.get("nodes", "node-b")) == (401, "Unauthorized")
    assert c.apiserver.authn.last_failure == "x509: certificate signed by unknown authority"
