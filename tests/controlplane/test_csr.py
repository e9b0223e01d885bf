"""csrapproving and csrsigning: who gets a certificate automatically, and who does not."""

import pytest
from cryptography import x509

from k8sbook.api.request import Request
from k8sbook.cluster import Cluster
from k8sbook.core import pki
from k8sbook.core.keys import ec_key
from tests.helpers import snapshot, status_error


@pytest.fixture()
def c() -> Cluster:
    cluster = Cluster(0)
    cluster.add_controller_manager(controllers=("csrapproving", "csrsigning")).start()
    cluster.run_for(20)
    return cluster


def csr(name: str, cn: str, orgs=("system:nodes",), signer="kubernetes.io/kube-apiserver-client-kubelet",
        usages=("digital signature", "client auth"), dns=(), ips=()) -> dict:
    request = pki.certificate_request(ec_key(name), cn, tuple(orgs), dns_names=tuple(dns),
                                      ips=tuple(ips)).decode()
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": request, "signerName": signer, "usages": list(usages)}}


def conditions(c: Cluster, name: str) -> list[tuple[str, str]]:
    got = c.admin().get("certificatesigningrequests", name)
    return [(x["type"], x.get("reason", "")) for x in got["status"].get("conditions", [])]


def test_serving_certificates_are_not_auto_approved(c: Cluster):
    node = c.client("kubelet/node-a")
    node.create(csr("serving", "system:node:node-a", signer="kubernetes.io/kubelet-serving",
                    usages=("digital signature", "server auth"), dns=("node-a",),
                    ips=("192.168.0.10",)))
    c.run_for(5)
    got = c.admin().get("certificatesigningrequests", "serving")
    assert got["status"] == {}  # pending: a human must approve it
    # kubectl certificate approve: the admin may approve any signer; then csrsigning signs it
    got["status"] = {"conditions": [{"type": "Approved", "status": "True",
                                     "reason": "KubectlApprove", "message": "ok"}]}
    c.admin().update(got, "approval")
    c.run_for(2)
    cert = c.admin().get("certificatesigningrequests", "serving")["status"]["certificate"]
    ekus = x509.load_pem_x509_certificate(cert.encode()).extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    assert list(ekus) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    # the SANs are copied from the request
    issued = x509.load_pem_x509_certificate(cert.encode())
    assert pki.sans_of(issued) == (("node-a",), ("192.168.0.10",), (), ())


@pytest.mark.parametrize(("kwargs", "why"), [
    ({}, "DNS or IP subjectAltName is required"),
    ({"dns": ("node-a",), "orgs": ("system:masters",)}, "subject organization is not system:nodes"),
    ({"dns": ("node-a",), "usages": ("digital signature", "client auth")},
     "usages did not match [digital signature key encipherment server auth]"),
    ({"dns": ("node-a",), "cn": "node-a"}, "subject common name does not begin with system:node:"),
])
def test_csrsigning_fails_a_serving_csr_that_is_not_a_kubelets(c: Cluster, kwargs, why):
    """``ValidateKubeletServingCSR``: approved or not, the signer refuses what is not a
    kubelet's serving request, with the helper's error as the Failed condition's message."""
    cn = kwargs.pop("cn", "system:node:node-a")
    c.admin().create(csr("odd", cn, signer="kubernetes.io/kubelet-serving",
                         **{"usages": ("digital signature", "server auth"), **kwargs}))
    from k8sbook.apiserver.certificates import certificate_approve

    assert certificate_approve(c.admin(), "odd") == \
        "certificatesigningrequest.certificates.k8s.io/odd approved"
    c.run_for(2)
    got = c.admin().get("certificatesigningrequests", "odd")
    assert "certificate" not in got["status"]
    failed = got["status"]["conditions"][-1]
    assert (failed["type"], failed["reason"], failed["message"]) == (
        "Failed", "SignerValidationFailure", why)
    assert failed["lastUpdateTime"] == failed["lastTransitionTime"]


def test_requester_is_recorded_not_claimed(c: Cluster):
    body = csr("claim", "system:node:node-a")
    body["spec"].update(username="system:node:node-a", groups=["system:masters"])
    c.client("kubelet/node-b").create(body)
    got = c.admin().get("certificatesigningrequests", "claim")
    assert got["spec"]["username"] == "system:node:node-b"
    assert got["spec"]["groups"] == ["system:nodes", "system:authenticated"]


def test_a_node_asking_for_another_nodes_certificate_is_not_approved(c: Cluster):
    # node-b's CSR for node-a's name: not selfnodeclient (CN differs), and system:nodes has no
    # nodeclient permission (only bootstrap tokens do)
    c.client("kubelet/node-b").create(csr("steal", "system:node:node-a"))
    c.run_for(5)
    assert conditions(c, "steal") == []


def test_self_renewal_is_approved_and_signed(c: Cluster):
    c.client("kubelet/node-a").create(csr("renew", "system:node:node-a"))
    c.run_for(5)
    assert conditions(c, "renew") == [("Approved", "AutoApproved")]
    cert = c.admin().get("certificatesigningrequests", "renew")["status"]["certificate"]
    parsed = x509.load_pem_x509_certificate(cert.encode())
    assert (parsed.not_valid_after_utc - parsed.not_valid_before_utc).days == 365


def test_not_a_kubelet_csr_is_ignored(c: Cluster):
    c.client("kubelet/node-a").create(csr("masters", "system:node:node-a",
                                          orgs=("system:masters",)))
    c.run_for(5)
    assert conditions(c, "masters") == []


def test_approval_needs_approve_on_the_signer(c: Cluster):
    adm = c.admin()
    rbac = "rbac.authorization.k8s.io"
    adm.create({"apiVersion": f"{rbac}/v1", "kind": "ClusterRole",
                "metadata": {"name": "csr-updater"},
                "rules": [{"apiGroups": ["certificates.k8s.io"],
                           "resources": ["certificatesigningrequests",
                                         "certificatesigningrequests/approval"],
                           "verbs": ["get", "update"]}]})
    adm.create({"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "alice-csr"},
                "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "csr-updater"},
                "subjects": [{"apiGroup": rbac, "kind": "User", "name": "alice"}]})
    adm.create(csr("x", "system:node:node-z", signer="kubernetes.io/kubelet-serving",
                   usages=("digital signature", "server auth")))
    alice = adm.impersonating("alice")
    got = alice.get("certificatesigningrequests", "x")
    got["status"] = {"conditions": [{"type": "Approved", "status": "True"}]}
    before = snapshot(c)
    assert status_error(lambda: alice.update(got, "approval")) == (
        403, ('certificatesigningrequests.certificates.k8s.io "x" is forbidden: user not '
             'permitted to approve requests with signerName "kubernetes.io/kubelet-serving"'))
    assert snapshot(c) == before


def test_denied_is_never_signed_and_bad_requests_are_invalid(c: Cluster):
    adm = c.admin()
    adm.create(csr("no", "system:node:node-a", signer="kubernetes.io/kubelet-serving",
                   usages=("digital signature", "server auth")))
    got = adm.get("certificatesigningrequests", "no")
    got["status"] = {"conditions": [{"type": "Denied", "status": "True", "reason": "Nope"}]}
    adm.update(got, "approval")
    c.run_for(5)
    assert "certificate" not in adm.get("certificatesigningrequests", "no")["status"]
    bad = csr("bad", "x")
    bad["spec"]["request"] = "not a pem"
    code, message = status_error(lambda: adm.create(bad))
    assert code == 422 and "PEM block type must be CERTIFICATE REQUEST" in message
    both = adm.get("certificatesigningrequests", "no")
    both["status"]["conditions"].append({"type": "Approved", "status": "True"})
    code, message = status_error(lambda: adm.update(both, "approval"))
    assert code == 422 and "mutually exclusive" in message


def test_status_cannot_approve(c: Cluster):
    adm = c.admin()
    adm.create(csr("sneaky", "system:node:node-a", signer="kubernetes.io/kubelet-serving",
                   usages=("digital signature", "server auth")))
    got = adm.get("certificatesigningrequests", "sneaky")
    got["status"] = {"conditions": [{"type": "Approved", "status": "True"}]}
    adm.update(got, "status")
    assert conditions(c, "sneaky") == []


def test_bootstrap_csr_needs_the_nodeclient_binding(c: Cluster):
    adm = c.admin()
    adm.delete("clusterrolebindings", "kubeadm:node-autoapprove-bootstrap")
    c.run_for(1)
    kubelet = c.add_kubelet("node-c", bootstrap=True).start()
    c.run_for(10)
    (name,) = kubelet.certificates.requests
    assert conditions(c, name) == []  # recognised as nodeclient, SAR said no: pending
    assert kubelet.certificates.current is None
    assert status_error(lambda: adm.get("nodes", "node-c"))[0] == 404  # never registered
    _ = Request


def test_no_system_masters_through_the_apiserver_client_signer(c: Cluster):
    adm = c.admin()
    body = csr("masters-client", "mallory", orgs=("system:masters",),
               signer="kubernetes.io/kube-apiserver-client")
    before = snapshot(c)
    assert status_error(lambda: adm.create(body)) == (
        403, ('certificatesigningrequests.certificates.k8s.io "masters-client" is forbidden: '
              "use of kubernetes.io/kube-apiserver-client signer with system:masters group is "
              "not allowed"))
    assert snapshot(c) == before


def test_a_node_cannot_approve_or_sign_its_own_request(c: Cluster):
    node = c.client("kubelet/node-a")
    node.create(csr("serve-me", "system:node:node-a", signer="kubernetes.io/kubelet-serving",
                    usages=("digital signature", "server auth")))
    got = node.get("certificatesigningrequests", "serve-me")
    got["status"] = {"conditions": [{"type": "Approved", "status": "True"}]}
    code, message = status_error(lambda: node.update(got, "approval"))
    assert code == 403 and 'cannot update resource "certificatesigningrequests/approval"' in \
        message
    got["status"] = {"certificate": "forged"}
    assert status_error(lambda: node.update(got, "status"))[0] == 403
