"""csrcleaner: approved, denied and failed CSRs go after an hour, pending ones after a day."""

import pytest
from kubernetes_validate import validate

from k8sbook.apiserver.certificates import certificate_approve, certificate_deny
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controllers.csr_cleaner import why_clean
from tests.controlplane.test_csr import csr


@pytest.fixture()
def c() -> Cluster:
    cluster = Cluster(0)
    cluster.add_controller_manager(
        controllers=("csrapproving", "csrsigning", "csrcleaner")).start()
    cluster.run_for(20)
    return cluster


def names(c: Cluster) -> list[str]:
    return sorted(x["metadata"]["name"] for x in
                  c.admin().list("certificatesigningrequests")["items"])


def cleaner(c: Cluster):
    return c.components["kube-controller-manager/cp-1"].controllers["csrcleaner"]


def test_each_kind_of_csr_is_deleted_after_its_deadline(c: Cluster):
    """Two hours of virtual time: the passes at start-up, +1 h and +2 h; the pending CSR's
    day is checked on the rule itself (a day of leader-election renewals is slow to run)."""
    node = c.client("kubelet/node-a")
    node.create(csr("issued", "system:node:node-a"))  # auto-approved and signed
    node.create(csr("pending", "system:node:node-a", signer="kubernetes.io/kubelet-serving",
                    usages=("digital signature", "server auth"), dns=("node-a",)))
    node.create(csr("denied", "system:node:node-a", signer="kubernetes.io/kubelet-serving",
                    usages=("digital signature", "server auth"), dns=("node-a",)))
    node.create(csr("failed", "system:node:node-a", signer="kubernetes.io/kubelet-serving",
                    usages=("digital signature", "server auth")))  # no SAN: the signer fails it
    c.run_for(2)
    certificate_deny(c.admin(), "denied")
    certificate_approve(c.admin(), "failed")
    c.run_for(2)
    for name in names(c):
        validate(c.admin().get("certificatesigningrequests", name), "1.35.0", strict=True)
    assert names(c) == ["denied", "failed", "issued", "pending"]
    c.run_for(3600)  # the second pass, an hour after the first: each an hour old, minus seconds
    assert names(c) == ["denied", "failed", "issued", "pending"]
    c.run_for(3600)
    assert names(c) == ["pending"]
    assert sorted((n, why) for _, n, why in cleaner(c).cleaned) == [
        ("denied", "more than deniedExpiration duration old and denied (deniedExpiration=1h0m0s)"),
        ("failed", "more than deniedExpiration duration old and failed (deniedExpiration=1h0m0s)"),
        ("issued", "more than approvedExpiration duration old and approved (approvedExpiration=1h0m0s)")]
    pending = c.admin().get("certificatesigningrequests", "pending")
    born = c.clock.parse(pending["metadata"]["creationTimestamp"])
    assert why_clean(pending, born + 24 * 3600) == ""
    assert why_clean(pending, born + 24 * 3600 + 1) == "more than pendingExpiration duration old and unhandled (pendingExpiration=24h0m0s)"
    deletes = [m for m in c.trace.filter(resource="certificatesigningrequests")
               if m.verb == "DELETE"]
    assert {m.src for m in deletes} == {"kube-controller-manager/cp-1"}
    assert {m.result for m in deletes} == {"200"}


def test_an_issued_certificate_that_expired_goes_at_the_next_pass():
    obj = {"metadata": {"name": "x", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "status": {"conditions": [{"type": "Approved", "status": "True"}]}}
    from k8sbook.core import pki
    from k8sbook.core.keys import ec_key

    request = pki.certificate_request(ec_key("x"), "system:node:a", ("system:nodes",))
    cert = pki.sign(request, by=pki.ca(), now=1000.0, duration=600.0)
    obj["status"]["certificate"] = pki.pem(cert).decode()
    # no lastUpdateTime: only the expiry rule can apply
    assert why_clean(obj, 1000.0 + 599) == ""
    assert why_clean(obj, 1000.0 + 601) == "the associated certificate is expired"


def test_times_that_are_not_set_never_count():
    assert why_clean({"metadata": {}, "status": {}}, 10 ** 9) == ""
    assert why_clean({"metadata": {}, "status": {"conditions": [{"type": "Denied"}]}},
                     10 ** 9) == ""
