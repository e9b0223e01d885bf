"""``csrsigning``: approved CSRs signed with the cluster CA.

Mirrors ``pkg/controller/certificates/signer/signer.go`` (v1.35): kube-controller-manager runs
one signer per built-in signer name, all with kubeadm's ``--cluster-signing-cert-file`` and
``--cluster-signing-key-file`` (the cluster CA, ``ca.crt``/``ca.key``), as the ServiceAccount
``kube-system/certificate-controller``. For a CSR that is Approved, not Failed and has no
certificate yet, and whose signer is one it serves, the signer checks the request is what the
signer may issue (``kubernetes.io/kube-apiserver-client-kubelet``:
``ValidateKubeletClientCSR``; ``kubernetes.io/kubelet-serving``: ``ValidateKubeletServingCSR``;
otherwise the condition Failed/True, reason ``SignerValidationFailure``, message the
validation's error, as ``handle`` writes it), then signs the request's subject, subject
alternative names and public key for ``--cluster-signing-duration`` (8760 h by default) or the
CSR's ``spec.expirationSeconds`` if shorter, never past the CA's own expiry, and writes the PEM
to ``status.certificate`` through ``/status``. Denied and pending CSRs are never signed.
"""

from __future__ import annotations

from typing import Any

from k8sbook.apiserver.certificates import (
    KUBE_APISERVER_CLIENT_SIGNER,
    KUBELET_CLIENT_SIGNER,
    KUBELET_SERVING_SIGNER,
    is_approved,
    validate_kubelet_client_csr,
    validate_kubelet_serving_csr,
)
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj, QueueController
from k8sbook.core import pki
from k8sbook.core.status import StatusError

#: ``--cluster-signing-duration`` default
CLUSTER_SIGNING_DURATION = 8760 * 3600.0
SIGNERS = (KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, KUBE_APISERVER_CLIENT_SIGNER)


class CSRSigningController(QueueController):
    def __init__(self, client: Client, csr_informer: SharedIndexInformer, *,
                 ca: pki.CA | None = None,
                 duration: float = CLUSTER_SIGNING_DURATION) -> None:
        super().__init__(client, "csrsigning")
        self.informer = csr_informer
        self._ca = ca
        self.duration = duration
        csr_informer.add_event_handler(lambda c: self.queue.add(c["metadata"]["name"]),
                                       lambda o, n: self.queue.add(n["metadata"]["name"]),
                                       lambda c: None)

    @property
    def ca(self) -> pki.CA:
        """``--cluster-signing-cert-file``/``-key-file``: the cluster CA unless given, made
        when the first certificate is signed (it needs ``cryptography``)."""
        return self._ca or pki.ca()

    def sync(self, name: Any) -> None:
        csr: Obj | None = self.informer.indexer.get_by_key(name)
        if csr is None or not is_approved(csr):
            return
        status = csr.get("status") or {}
        if status.get("certificate") or any(c.get("type") == "Failed"
                                            for c in status.get("conditions") or []):
            return
        spec = csr["spec"]
        signer = spec.get("signerName")
        if signer not in SIGNERS:
            return
        out = {**csr, "status": dict(status)}
        why = (validate_kubelet_client_csr(csr) if signer == KUBELET_CLIENT_SIGNER else
               validate_kubelet_serving_csr(csr) if signer == KUBELET_SERVING_SIGNER else "")
        if why:
            out["status"]["conditions"] = [*(status.get("conditions") or []), {
                "type": "Failed", "status": "True", "reason": "SignerValidationFailure",
                "message": why}]
        else:
            seconds = min(self.duration, float(spec.get("expirationSeconds") or self.duration))
            usages = tuple(spec.get("usages") or ())
            cert = pki.sign(spec["request"].encode(), by=self.ca, now=self.client.clock.now(),
                            duration=seconds, usages=usages)
            out["status"]["certificate"] = pki.pem(cert).decode()
        try:
            self.client.update(out, "status")
        except StatusError as err:
            if err.code not in (404, 409):
                self.queue.add_rate_limited(name)
