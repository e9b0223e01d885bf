"""``csrapproving``: kubelet client certificates approved after a SubjectAccessReview.

Mirrors ``pkg/controller/certificates/approver/sarapprove.go`` (v1.35) on the shared
``certificate_controller.go`` loop, in kube-controller-manager as the ServiceAccount
``kube-system/certificate-controller``. For each CSR that has no certificate and is neither
Approved nor Denied, two recognizers are tried in order:

- ``selfnodeclient``: a kubelet renewing its own client certificate (the requester
  ``spec.username`` is the CSR's CN);
- ``nodeclient``: any kubelet client CSR (a new node with a bootstrap token);

where a kubelet client CSR (``IsKubeletClientCSR``,
:func:`k8sbook.apiserver.certificates.is_kubelet_client_csr`) has signer
``kubernetes.io/kube-apiserver-client-kubelet``, O exactly ``system:nodes``, a CN starting
``system:node:``, no SANs, and usages ``digital signature`` and ``client auth`` (optionally
``key encipherment``). A serving CSR (``kubernetes.io/kubelet-serving``) is never one:
upstream's approver recognises only the client signer, so a kubelet's serving certificate
waits for ``kubectl certificate approve``. The controller asks with a SubjectAccessReview for the requester
(``spec.username``, ``groups``, ``uid``, ``extra``) whether it may ``create`` the subresource
``certificatesigningrequests/<recognizer>``; kubeadm binds ``nodeclient`` to its bootstrap
tokens' group and ``selfnodeclient`` to ``system:nodes``. If allowed, it appends the condition
Approved/True, reason ``AutoApproved``, and writes it to ``/approval``. Anything else (serving
certificates with signer ``kubernetes.io/kubelet-serving``, a SAR that says no) is left
pending for a human: ``kubectl certificate approve``.
"""

from __future__ import annotations

from typing import Any

from k8sbook.apiserver.certificates import is_denied_or_failed, is_kubelet_client_csr
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj, QueueController
from k8sbook.core import pki
from k8sbook.core.status import StatusError

NAME = "certificate-controller"
RECOGNIZERS = (
    ("selfnodeclient", ("Auto approving self kubelet client certificate after "
                       "SubjectAccessReview.")),
    ("nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview."),
)


class CSRApprovingController(QueueController):
    def __init__(self, client: Client, csr_informer: SharedIndexInformer) -> None:
        super().__init__(client, "certificate")
        self.informer = csr_informer
        csr_informer.add_event_handler(lambda c: self.queue.add(c["metadata"]["name"]),
                                       lambda o, n: self.queue.add(n["metadata"]["name"]),
                                       lambda c: None)

    def sync(self, name: Any) -> None:
        csr = self.informer.indexer.get_by_key(name)
        if csr is None or (csr.get("status") or {}).get("certificate"):
            return
        conditions = (csr.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Approved" for c in conditions) or is_denied_or_failed(csr):
            return
        if not is_kubelet_client_csr(csr):
            return
        from cryptography import x509

        req = x509.load_pem_x509_csr(csr["spec"]["request"].encode())
        cn, _ = pki.subject_of_request(req)
        for subresource, message in RECOGNIZERS:
            if subresource == "selfnodeclient" and csr["spec"].get("username") != cn:
                continue
            try:
                if self._authorize(csr, subresource):
                    self._approve(csr, message)
                    return
            except StatusError:
                self.queue.add_rate_limited(name)
                return

    def _authorize(self, csr: Obj, subresource: str) -> bool:
        spec = csr["spec"]
        sar: dict[str, Any] = {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": spec.get("username", ""), "groups": spec.get("groups", []),
                     "resourceAttributes": {"group": "certificates.k8s.io",
                                            "resource": "certificatesigningrequests",
                                            "verb": "create", "subresource": subresource,
                                            "version": "*"}}}
        for k in ("uid", "extra"):
            if spec.get(k):
                sar["spec"][k] = spec[k]
        return bool(self.client.create(sar)["status"].get("allowed"))

    def _approve(self, csr: Obj, message: str) -> None:
        out = {**csr, "status": {**(csr.get("status") or {})}}
        out["status"]["conditions"] = [*(out["status"].get("conditions") or []), {
            "type": "Approved", "status": "True", "reason": "AutoApproved",
            "message": message}]
        self.client.update(out, "approval")
