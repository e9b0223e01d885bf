"""CertificateSigningRequests in the apiserver: strategy, validation and the two admission checks.

Mirrors ``pkg/registry/certificates/certificates/strategy.go``, ``pkg/apis/certificates``
(validation) and the admission plugins ``CertificateApproval`` and ``CertificateSigning``
(``plugin/pkg/admission/certificates``), v1.35:

- **create**: whoever creates a CSR is recorded in ``spec.username``, ``spec.uid``,
  ``spec.groups`` and ``spec.extra`` (what a client sends there is replaced), and the status
  starts empty;
- **update** of the object keeps spec and status; ``/approval`` changes only
  ``status.conditions``; ``/status`` keeps spec and the Approved/Denied conditions; a new
  condition gets ``lastUpdateTime`` and ``lastTransitionTime`` now if its writer left them
  out (``populateConditionTimestamps``: the approver and signer leave them out, and the
  csrcleaner reads ``lastUpdateTime``);
- **validation**: ``spec.request`` must be a PEM ``CERTIFICATE REQUEST`` whose signature
  verifies (``spec.request: Invalid value: []byte{...}: PEM block type must be CERTIFICATE
  REQUEST``), ``spec.signerName`` and ``spec.usages`` are required, ``expirationSeconds`` at
  least 600, and a CSR cannot be both Approved and Denied;
- **CertificateApproval**: changing the Approved/Denied conditions requires the verb
  ``approve`` on ``signers`` (group ``certificates.k8s.io``) named after the signer or its
  domain wildcard (``kubernetes.io/*``): ``user not permitted to approve requests with
  signerName "…"``;
- **CertificateSigning**: setting ``status.certificate`` requires ``sign`` on the signer, in
  the same way;
- **the kubelet signers' rules** (``pkg/apis/certificates/v1/helpers.go``,
  ``ValidateKubeletClientCSR`` and ``ValidateKubeletServingCSR``): what a CSR for
  ``kubernetes.io/kube-apiserver-client-kubelet`` or ``kubernetes.io/kubelet-serving`` must
  look like, with upstream's error texts; the approver and the signer use them;
- **CertificateSubjectRestriction**: no CSR for ``kubernetes.io/kube-apiserver-client`` may ask
  for the group ``system:masters`` (``use of kubernetes.io/kube-apiserver-client signer with
  system:masters group is not allowed``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from k8sbook.api import validation
from k8sbook.apiserver.admission import AdmissionAttributes
from k8sbook.apiserver.authentication import UserInfo
from k8sbook.apiserver.authorization import Attributes
from k8sbook.core.status import forbidden

GROUP = "certificates.k8s.io"
KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING_SIGNER = "kubernetes.io/kubelet-serving"
KUBE_APISERVER_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
USAGES = ("signing", "digital signature", "content commitment", "key encipherment",
          "key agreement", "data encipherment", "cert sign", "crl sign", "encipher only",
          "decipher only", "any", "server auth", "client auth", "code signing",
          "email protection", "s/mime", "ipsec end system", "ipsec tunnel", "ipsec user",
          "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc")


def _approval(csr: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in (csr.get("status") or {}).get("conditions") or []
            if c.get("type") in ("Approved", "Denied")]


def is_approved(csr: dict[str, Any]) -> bool:
    return any(c["type"] == "Approved" for c in _approval(csr))


def is_denied_or_failed(csr: dict[str, Any]) -> bool:
    return any(c.get("type") in ("Denied", "Failed")
               for c in (csr.get("status") or {}).get("conditions") or [])


def prepare_for_create(obj: dict[str, Any], user: UserInfo | None) -> None:
    spec = obj.setdefault("spec", {})
    for k in ("username", "uid", "groups", "extra"):
        spec.pop(k, None)
    if user is not None:
        spec["username"] = user.name
        if user.uid:
            spec["uid"] = user.uid
        spec["groups"] = list(user.groups)
        if user.extra:
            spec["extra"] = {k: [v] for k, v in user.extra}
    obj["status"] = {}


def _populate_condition_timestamps(new: dict[str, Any], old: dict[str, Any], now: str) -> None:
    """``populateConditionTimestamps``: a condition without ``lastUpdateTime`` gets now; one
    without ``lastTransitionTime`` gets the old condition's of the same type and status, else
    now."""
    if not now:
        return
    before = {(c.get("type"), c.get("status")): c
              for c in (old.get("status") or {}).get("conditions") or []}
    for c in (new.get("status") or {}).get("conditions") or []:
        c.setdefault("lastUpdateTime", now)
        if "lastTransitionTime" not in c:
            prior = before.get((c.get("type"), c.get("status")))
            c["lastTransitionTime"] = (prior or {}).get("lastTransitionTime", now)


def prepare_for_update(new: dict[str, Any], old: dict[str, Any], subresource: str,
                       now: str = "") -> None:
    new["spec"] = copy.deepcopy(old.get("spec") or {})
    old_status = copy.deepcopy(old.get("status") or {})
    if subresource == "approval":
        conditions = (new.get("status") or {}).get("conditions")
        new["status"] = {**old_status, **({"conditions": conditions} if conditions else {})}
    elif subresource == "status":
        status = dict(new.get("status") or {})
        others = [c for c in status.get("conditions") or []
                  if c.get("type") not in ("Approved", "Denied")]
        status["conditions"] = _approval(old) + others
        if not status["conditions"]:
            del status["conditions"]
        new["status"] = status
    else:
        new["status"] = old_status
    _populate_condition_timestamps(new, old, now)


# -- pkg/apis/certificates/v1/helpers.go ----------------------------------------------------
ORGANIZATION_NOT_SYSTEM_NODES = "subject organization is not system:nodes"
COMMON_NAME_NOT_SYSTEM_NODE = "subject common name does not begin with system:node:"
DNS_OR_IP_SAN_REQUIRED = "DNS or IP subjectAltName is required"
DNS_SAN_NOT_ALLOWED = "DNS subjectAltNames are not allowed"
EMAIL_SAN_NOT_ALLOWED = "Email subjectAltNames are not allowed"
IP_SAN_NOT_ALLOWED = "IP subjectAltNames are not allowed"
URI_SAN_NOT_ALLOWED = "URI subjectAltNames are not allowed"
#: ``kubeletClientRequiredUsages`` (RSA keys) and ``kubeletClientRequiredUsagesNoRSA``
KUBELET_CLIENT_USAGES = ({"digital signature", "key encipherment", "client auth"},
                         {"digital signature", "client auth"})
#: ``kubeletServingRequiredUsages`` (RSA keys) and ``kubeletServingRequiredUsagesNoRSA``
KUBELET_SERVING_USAGES = ({"digital signature", "key encipherment", "server auth"},
                          {"digital signature", "server auth"})


def _parse_request(csr: dict[str, Any]) -> Any:
    from cryptography import x509  # here: only a CSR needs it

    try:
        return x509.load_pem_x509_csr(str((csr.get("spec") or {}).get("request", "")).encode())
    except ValueError:
        return None


def _go_set(usages: set[str]) -> str:
    """``sets.List`` printed by ``%v``: ``[client auth digital signature key encipherment]``."""
    return "[" + " ".join(sorted(usages)) + "]"


def validate_kubelet_client_csr(csr: dict[str, Any]) -> str:
    """``ValidateKubeletClientCSR``: ``""``, or why the request is not a kubelet client
    certificate request (O exactly ``system:nodes``, no SANs, CN ``system:node:...``, the
    usages), in upstream's order and words."""
    from k8sbook.core import pki

    req = _parse_request(csr)
    if req is None:
        return "PEM block type must be CERTIFICATE REQUEST"
    cn, orgs = pki.subject_of_request(req)
    dns, ips, emails, uris = pki.sans_of(req)
    usages = set((csr.get("spec") or {}).get("usages") or [])
    if orgs != ("system:nodes",):
        return ORGANIZATION_NOT_SYSTEM_NODES
    if dns:
        return DNS_SAN_NOT_ALLOWED
    if emails:
        return EMAIL_SAN_NOT_ALLOWED
    if ips:
        return IP_SAN_NOT_ALLOWED
    if uris:
        return URI_SAN_NOT_ALLOWED
    if not cn.startswith("system:node:"):
        return COMMON_NAME_NOT_SYSTEM_NODE
    if usages not in KUBELET_CLIENT_USAGES:
        return f"usages did not match {_go_set(KUBELET_CLIENT_USAGES[0])}"
    return ""


def validate_kubelet_serving_csr(csr: dict[str, Any]) -> str:
    """``ValidateKubeletServingCSR``: ``""``, or why the request is not a kubelet serving
    certificate request (O exactly ``system:nodes``, at least one DNS or IP SAN, no email or
    URI SAN, the usages, CN ``system:node:...``), in upstream's order and words."""
    from k8sbook.core import pki

    req = _parse_request(csr)
    if req is None:
        return "PEM block type must be CERTIFICATE REQUEST"
    cn, orgs = pki.subject_of_request(req)
    dns, ips, emails, uris = pki.sans_of(req)
    usages = set((csr.get("spec") or {}).get("usages") or [])
    if orgs != ("system:nodes",):
        return ORGANIZATION_NOT_SYSTEM_NODES
    if not dns and not ips:
        return DNS_OR_IP_SAN_REQUIRED
    if emails:
        return EMAIL_SAN_NOT_ALLOWED
    if uris:
        return URI_SAN_NOT_ALLOWED
    if usages not in KUBELET_SERVING_USAGES:
        return f"usages did not match {_go_set(KUBELET_SERVING_USAGES[0])}"
    if not cn.startswith("system:node:"):
        return COMMON_NAME_NOT_SYSTEM_NODE
    return ""


def is_kubelet_client_csr(csr: dict[str, Any]) -> bool:
    """``IsKubeletClientCSR``: the signer is the kubelet client signer and the request
    passes :func:`validate_kubelet_client_csr`."""
    return (csr.get("spec") or {}).get("signerName") == KUBELET_CLIENT_SIGNER and \
        not validate_kubelet_client_csr(csr)


def is_kubelet_serving_csr(csr: dict[str, Any]) -> bool:
    """``IsKubeletServingCSR``: the signer is ``kubernetes.io/kubelet-serving`` and the
    request passes :func:`validate_kubelet_serving_csr`."""
    return (csr.get("spec") or {}).get("signerName") == KUBELET_SERVING_SIGNER and \
        not validate_kubelet_serving_csr(csr)


def validate(obj: dict[str, Any]) -> list[validation.Cause]:
    """``ValidateCertificateSigningRequestCreate``/``Update``, abridged."""
    from cryptography import x509  # here: a cluster that makes no CSR needs no cryptography

    spec = obj.get("spec") or {}
    causes: list[validation.Cause] = []
    request = spec.get("request") or ""
    try:
        csr = x509.load_pem_x509_csr(request.encode() if isinstance(request, str) else request)
        if not csr.is_signature_valid:
            causes.append(validation.invalid("spec.request", "[]byte{...}",
                                             "x509: ECDSA verification failure"))
    except ValueError:
        causes.append(validation.invalid("spec.request", "[]byte{...}",
                                         "PEM block type must be CERTIFICATE REQUEST"))
    if not spec.get("signerName"):
        causes.append(validation.required("spec.signerName"))
    usages = spec.get("usages")
    if not usages:
        causes.append(validation.required("spec.usages"))
    for i, u in enumerate(usages or []):
        if u not in USAGES:
            causes.append(validation.not_supported(f"spec.usages[{i}]", u, list(USAGES)))
    exp = spec.get("expirationSeconds")
    if exp is not None and (not isinstance(exp, int) or exp < 600):
        causes.append(validation.invalid("spec.expirationSeconds", exp,
                                         "may not specify a duration less than 600 seconds "
                                         "(10 minutes)"))
    kinds = {c["type"] for c in _approval(obj)}
    if {"Approved", "Denied"} <= kinds:
        causes.append(validation.invalid("status.conditions", "Approved",
                                         "Approved and Denied conditions are mutually "
                                         "exclusive"))
    return causes


Authorize = Callable[[Attributes], "tuple[str, str]"]


def _signer_allowed(authorize: Authorize, user: UserInfo, verb: str, signer: str) -> bool:
    """``certificates.IsAuthorizedForSignerName``: the exact name, then ``<domain>/*``."""
    for name in (signer, signer.split("/", 1)[0] + "/*"):
        if authorize(Attributes(user, verb, GROUP, "signers", "", "", name))[0] == "allow":
            return True
    return False


class CertificateApproval:
    """The ``CertificateApproval`` admission plugin."""

    name = "CertificateApproval"

    def __init__(self, authorize: Authorize) -> None:
        self.authorize = authorize

    def validate(self, attrs: AdmissionAttributes) -> None:
        if attrs.resource != "certificatesigningrequests" or attrs.subresource != "approval":
            return
        if attrs.obj is None or attrs.old_obj is None or _approval(attrs.obj) == \
                _approval(attrs.old_obj):
            return
        signer = (attrs.obj.get("spec") or {}).get("signerName", "")
        if not _signer_allowed(self.authorize, attrs.user, "approve", signer):
            raise forbidden("certificatesigningrequests", GROUP, attrs.name,
                            f'user not permitted to approve requests with signerName '
                            f'"{signer}"')


class CertificateSigning:
    """The ``CertificateSigning`` admission plugin."""

    name = "CertificateSigning"

    def __init__(self, authorize: Authorize) -> None:
        self.authorize = authorize

    def validate(self, attrs: AdmissionAttributes) -> None:
        if attrs.resource != "certificatesigningrequests" or attrs.subresource != "status":
            return
        new = (attrs.obj or {}).get("status", {}).get("certificate")
        if not new or new == (attrs.old_obj or {}).get("status", {}).get("certificate"):
            return
        signer = ((attrs.obj or {}).get("spec") or {}).get("signerName", "")
        if not _signer_allowed(self.authorize, attrs.user, "sign", signer):
            raise forbidden("certificatesigningrequests", GROUP, attrs.name,
                            f'user not permitted to sign requests with signerName "{signer}"')


class CertificateSubjectRestriction:
    """The ``CertificateSubjectRestriction`` admission plugin: no ``system:masters`` client
    certificate through the ``kubernetes.io/kube-apiserver-client`` signer."""

    name = "CertificateSubjectRestriction"

    def validate(self, attrs: AdmissionAttributes) -> None:
        if attrs.resource != "certificatesigningrequests" or attrs.operation != "CREATE" \
                or attrs.subresource or attrs.obj is None:
            return
        spec = attrs.obj.get("spec") or {}
        if spec.get("signerName") != KUBE_APISERVER_CLIENT_SIGNER:
            return
        from cryptography import x509

        try:
            req = x509.load_pem_x509_csr(str(spec.get("request", "")).encode())
        except ValueError:
            return  # validation refuses it next
        orgs = [str(a.value) for a in req.subject.get_attributes_for_oid(
            x509.oid.NameOID.ORGANIZATION_NAME)]
        if "system:masters" in orgs:
            raise forbidden("certificatesigningrequests", GROUP, attrs.name,
                            f"use of {KUBE_APISERVER_CLIENT_SIGNER} signer with system:masters "
                            "group is not allowed")


def _kubectl_condition(client: Any, name: str, kind: str, must_not: str, reason: str,
                       message: str, verb: str) -> str:
    csr = client.get("certificatesigningrequests", name)
    conditions = list((csr.get("status") or {}).get("conditions") or [])
    if any(c.get("type") == must_not for c in conditions):
        raise ValueError(f'certificate signing request "{name}" is already '
                         f"{must_not.lower()}")
    if not any(c.get("type") == kind for c in conditions):
        conditions.append({"type": kind, "status": "True", "reason": reason,
                           "message": message, "lastUpdateTime": client.clock.timestamp()})
        csr = {**csr, "status": {**(csr.get("status") or {}), "conditions": conditions}}
        client.update(csr, "approval")
    return f"certificatesigningrequest.certificates.k8s.io/{name} {verb}"


def certificate_approve(client: Any, name: str) -> str:
    """``kubectl certificate approve NAME``: read the CSR, add the condition Approved/True,
    reason ``KubectlApprove``, and write it to ``/approval`` (which needs ``approve`` on the
    signer); a CSR that already is Denied is an error. Returns what kubectl prints."""
    return _kubectl_condition(client, name, "Approved", "Denied", "KubectlApprove",
                              "This CSR was approved by kubectl certificate approve.",
                              "approved")


def certificate_deny(client: Any, name: str) -> str:
    """``kubectl certificate deny NAME``: the condition Denied/True, reason ``KubectlDeny``."""
    return _kubectl_condition(client, name, "Denied", "Approved", "KubectlDeny",
                              "This CSR was denied by kubectl certificate deny.", "denied")
