"""The kubelet signers' request rules (``pkg/apis/certificates/v1/helpers.go``), condition
timestamps, and what ``kubectl certificate approve``/``deny`` send."""

import pytest
from kubernetes_validate import validate

from k8sbook.apiserver.certificates import (
    certificate_approve,
    certificate_deny,
    validate_kubelet_client_csr,
    validate_kubelet_serving_csr,
)
from k8sbook.cluster import Cluster
from tests.controlplane.test_csr import csr


def serving(**kw):
    return csr("s", kw.pop("cn", "system:node:a"), signer="kubernetes.io/kubelet-serving",
               **{"usages": ("digital signature", "server auth"), **kw})


@pytest.mark.parametrize(("obj", "why"), [
    (serving(dns=("a",)), ""),
    (serving(ips=("10.0.0.1",)), ""),
    (serving(dns=("a",), usages=("key encipherment", "digital signature", "server auth")), ""),
    (serving(), "DNS or IP subjectAltName is required"),
    (serving(dns=("a",), orgs=()), "subject organization is not system:nodes"),
    (serving(dns=("a",), cn="a"), "subject common name does not begin with system:node:"),
    (serving(dns=("a",), usages=("server auth",)),
     "usages did not match [digital signature key encipherment server auth]"),
])
def test_validate_kubelet_serving_csr(obj, why):
    assert validate_kubelet_serving_csr(obj) == why


@pytest.mark.parametrize(("obj", "why"), [
    (csr("c", "system:node:a"), ""),
    (csr("c", "system:node:a", dns=("a",)), "DNS subjectAltNames are not allowed"),
    (csr("c", "system:node:a", ips=("10.0.0.1",)), "IP subjectAltNames are not allowed"),
    (csr("c", "a"), "subject common name does not begin with system:node:"),
    (csr("c", "a", usages=("server auth",)), ("subject common name does not begin with "
                                             "system:node:")),  # CN is checked before usages
    (csr("c", "system:node:a", usages=("server auth",)),
     "usages did not match [client auth digital signature key encipherment]"),
])
def test_validate_kubelet_client_csr(obj, why):
    assert validate_kubelet_client_csr(obj) == why


def test_kubectl_approve_and_deny_and_the_condition_timestamps():
    c = Cluster(0)
    adm = c.admin()
    adm.create(serving(dns=("a",)))
    adm.create({**serving(dns=("b",)), "metadata": {"name": "t"}})
    c.run_for(30)
    assert certificate_approve(adm, "s") == "certificatesigningrequest.certificates.k8s.io/s approved"
    assert certificate_approve(adm, "s") == "certificatesigningrequest.certificates.k8s.io/s approved"
    assert certificate_deny(adm, "t") == "certificatesigningrequest.certificates.k8s.io/t denied"
    with pytest.raises(ValueError, match='"s" is already approved'):
        certificate_deny(adm, "s")
    s = adm.get("certificatesigningrequests", "s")
    validate(s, "1.35.0", strict=True)
    (approved,) = s["status"]["conditions"]  # approving twice adds nothing
    assert approved["lastUpdateTime"] == approved["lastTransitionTime"] == c.clock.timestamp()
    (denied,) = adm.get("certificatesigningrequests", "t")["status"]["conditions"]
    assert (denied["type"], denied["reason"], denied["message"]) == (
        "Denied", "KubectlDeny", "This CSR was denied by kubectl certificate deny.")
