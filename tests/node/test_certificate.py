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


def _bootstrapped(signing_duration: float) -> tuple[Cluster, object]:
    c = Cluster(0)
    kcm = c.add_controller_manager(controllers=("csrapproving", "csrsigning"))
    kcm.start()
    c.run_for(20)
    kcm.controllers["csrsigning"].duration = signing_duration  # --cluster-signing-duration
    kubelet = c.add_kubelet("node-b", bootstrap=True).start()
    c.run_for(5)
    return c, kubelet


@pytest.fixture()
def boot():
    return _bootstrapped(3600.0)  # --cluster-signing-duration=1h


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


def test_an_expired_client_certificate_is_401():
    c, kubelet = _bootstrapped(600.0)  # a 10-minute certificate: expired sooner
    old = kubelet.client.credentials
    kubelet.certificates.stop()  # no rotation
    c.run_for(600 + 5)
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


def test_kubelet_rotates_before_expiry_and_its_watches_reconnect_with_the_new_certificate(boot):
    """The rotation: a selfnodeclient CSR at 70-90 % of the certificate's life; then
    ``UpdateTransport``'s ``closeAllConns``: the kubelet closes its connections when its
    client certificate changes, and the apiserver sees the new certificate on the watches
    opened again. (One run to the deadline for both.)"""
    c, kubelet = boot
    first = kubelet.certificates.current
    lifetime = (first.not_valid_after_utc - first.not_valid_before_utc).total_seconds()
    start = (first.not_valid_before_utc - EPOCH).total_seconds()
    deadline = kubelet.certificates.deadline
    assert start + 0.7 * lifetime <= deadline <= start + 0.9 * lifetime
    before = c.apiserver.peers.of("kubelet/node-b")
    assert {r["resource"] for r in before} >= {"nodes", "pods"}
    assert {r["serial"] for r in before} == {format(first.serial_number, "x")}
    closes = kubelet.certificates.connection_closes
    c.run_for(deadline - c.clock.now() + 5)
    assert len(kubelet.certificates.requests) == 2
    second_csr = c.admin().get("certificatesigningrequests", kubelet.certificates.requests[1])
    assert second_csr["metadata"]["name"].startswith("csr-")
    assert second_csr["spec"]["username"] == "system:node:node-b"
    assert second_csr["status"]["conditions"][0]["message"] == \
        "Auto approving self kubelet client certificate after SubjectAccessReview."
    second = kubelet.certificates.current
    assert second.serial_number != first.serial_number
    assert kubelet.client.credentials.pem == pki.pem(second)
    assert kubelet.certificates.connection_closes == closes + 1
    after = c.apiserver.peers.of("kubelet/node-b")
    assert {r["resource"] for r in after} == {r["resource"] for r in before}
    assert {r["serial"] for r in after} == {format(second.serial_number, "x")}
    assert {r["notAfter"] for r in after} == {
        second.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")}


@pytest.fixture()
def serving():
    c = Cluster(0)
    kcm = c.add_controller_manager(controllers=("csrapproving", "csrsigning"))
    kcm.start()
    c.run_for(20)
    kubelet = c.add_kubelet("node-a", server_tls_bootstrap=True).start()
    c.run_for(5)
    return c, kubelet


def test_server_tls_bootstrap_requests_a_serving_certificate(serving):
    from k8sbook.node.kubelet.certificate import SERVING_CURRENT

    c, kubelet = serving
    (name,) = kubelet.serving_certificates.requests
    csr = c.admin().get("certificatesigningrequests", name)
    validate(csr, "1.35.0", strict=True)
    assert name.startswith("csr-")
    spec = csr["spec"]
    assert spec["signerName"] == "kubernetes.io/kubelet-serving"
    assert spec["usages"] == ["digital signature", "server auth"]  # an ECDSA key
    assert spec["username"] == "system:node:node-a"
    request = x509.load_pem_x509_csr(spec["request"].encode())
    assert pki.subject_of_request(request) == ("system:node:node-a", ("system:nodes",))
    assert pki.sans_of(request) == (("node-a",), ("192.168.0.10",), (), ())
    assert csr["status"] == {}  # csrapproving leaves it pending
    c.run_for(60)
    assert c.admin().get("certificatesigningrequests", name)["status"] == {}
    assert SERVING_CURRENT not in kubelet.filesystem


def test_serving_usages_add_key_encipherment_only_for_rsa():
    from k8sbook.core.keys import ec_key
    from k8sbook.node.kubelet.certificate import serving_usages

    assert serving_usages(ec_key("x")) == ("digital signature", "server auth")
    assert serving_usages(rsa_key("x")) == ("key encipherment", "digital signature",
                                            "server auth")


def test_until_approved_every_handshake_on_10250_fails(serving):
    from k8sbook.api import objects
    from k8sbook.apiserver.certificates import certificate_approve
    from k8sbook.apiserver.kubelet_client import pod_logs

    c, kubelet = serving
    adm = c.admin()
    adm.create(objects.pod("web", node_name="node-a"))
    c.run_for(3)
    logs = lambda: status_error(lambda: pod_logs(adm, "default", "web"))
    want = (500, ('Get "https://node-a:10250/containerLogs/default/web/app": '
                 "remote error: tls: internal error"))
    assert logs() == want
    c.apiserver.kubelet_client.certificate_authority = "kubernetes"
    assert logs() == want
    (name,) = kubelet.serving_certificates.requests
    # approving needs ``approve`` on the signer: a user with only update on /approval fails
    c.admin().create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                      "metadata": {"name": "csr-approval-only"},
                      "rules": [{"apiGroups": ["certificates.k8s.io"],
                                 "resources": ["certificatesigningrequests",
                                               "certificatesigningrequests/approval"],
                                 "verbs": ["get", "update"]}]})
    c.admin().create({"apiVersion": "rbac.authorization.k8s.io/v1",
                      "kind": "ClusterRoleBinding", "metadata": {"name": "csr-approval-only"},
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": "csr-approval-only"},
                      "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                    "name": "jane"}]})
    jane = c.client("kubectl", ClientCertificate("jane"))
    assert status_error(lambda: certificate_approve(jane, name)) == (
        403, (f'certificatesigningrequests.certificates.k8s.io "{name}" is forbidden: user '
             'not permitted to approve requests with signerName '
             '"kubernetes.io/kubelet-serving"'))
    assert certificate_approve(adm, name) == \
        f"certificatesigningrequest.certificates.k8s.io/{name} approved"
    c.run_for(2)
    cert = kubelet.serving_certificates.current
    assert cert is not None and pki.issuer_of(cert) == "kubernetes"
    assert pki.sans_of(cert) == (("node-a",), ("192.168.0.10",), (), ())
    assert pod_logs(adm, "default", "web") == "app: started (attempt 0)\n"
    (approved,) = [x for x in adm.get("certificatesigningrequests", name)["status"]["conditions"]
                   if x["type"] == "Approved"]
    assert (approved["reason"], approved["message"]) == (
        "KubectlApprove", "This CSR was approved by kubectl certificate approve.")


def test_a_kubelet_without_server_tls_bootstrap_is_refused_by_a_verifying_apiserver(serving):
    from k8sbook.api import objects
    from k8sbook.apiserver.kubelet_client import pod_logs

    c, _ = serving
    c.add_kubelet("node-b").start()  # its self-signed certificate
    c.run_for(2)
    c.admin().create(objects.pod("web", node_name="node-b"))
    c.run_for(3)
    c.apiserver.kubelet_client.certificate_authority = "kubernetes"
    assert status_error(lambda: pod_logs(c.admin(), "default", "web")) == (
        500, ('Get "https://node-b:10250/containerLogs/default/web/app": tls: failed to verify '
             "certificate: x509: certificate signed by unknown authority"))


def test_a_serving_csr_nobody_approves_is_given_up_after_15_minutes(serving):
    c, kubelet = serving
    c.run_for(15 * 60 + 10)
    first, second = kubelet.serving_certificates.requests
    assert kubelet.serving_certificates.last_error == (
        "certificate request was not signed: timed out waiting for the condition")
    for name in (first, second):
        assert c.admin().get("certificatesigningrequests", name)["status"] == {}


def test_the_serving_certificate_rotates_and_an_expired_one_is_not_presented(serving):
    """The serving certificate renews at 70-90 % of its life with a CSR that waits for a
    person again; ``Current()`` returns no certificate past ``notAfter``, so without an
    approved renewal the handshakes fail again, until one is approved. (One run for both.)"""
    from k8sbook.api import objects
    from k8sbook.apiserver.certificates import certificate_approve
    from k8sbook.apiserver.kubelet_client import pod_logs

    c, kubelet = serving
    c.components["kube-controller-manager/cp-1"].controllers["csrsigning"].duration = 3600.0
    c.admin().create(objects.pod("web", node_name="node-a"))
    certificate_approve(c.admin(), kubelet.serving_certificates.requests[0])
    c.run_for(3)
    assert pod_logs(c.admin(), "default", "web") == "app: started (attempt 0)\n"
    first = kubelet.serving_certificates.current
    c.run_for(kubelet.serving_certificates.deadline - c.clock.now() + 2)
    (renewal,) = kubelet.serving_certificates.requests[1:]
    assert c.admin().get("certificatesigningrequests", renewal)["status"] == {}  # a human again
    c.run_for(first.not_valid_after_utc.timestamp() - EPOCH.timestamp() - c.clock.now() + 1)
    assert status_error(lambda: pod_logs(c.admin(), "default", "web"))[1].endswith(
        "remote error: tls: internal error")
    certificate_approve(c.admin(), kubelet.serving_certificates.requests[-1])
    c.run_for(2)
    assert kubelet.serving_certificates.current.serial_number != first.serial_number
    assert pod_logs(c.admin(), "default", "web") == "app: started (attempt 0)\n"
