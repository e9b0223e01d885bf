"""Field validation of API objects, with the real error texts.

Mirrors ``k8s.io/apimachinery/pkg/util/validation`` (name formats and their messages),
``k8s.io/apimachinery/pkg/util/validation/field`` (``field.Error`` with a path, a type and a
value) and a readable subset of ``pkg/apis/*/validation`` (Pod, Service, ReplicaSet,
Deployment, StatefulSet, DaemonSet, Job, CronJob, EndpointSlice, Ingress,
PodDisruptionBudget, Lease). Each check returns a list of causes; the apiserver turns a
non-empty list into one 422 Invalid ``Status``.

This module is over 400 lines: it is the one table of field rules for every kind the model
serves, and each rule shares the field-error helpers at its top.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from croniter import croniter  # type: ignore[import-untyped]

from k8sbook.api.selectors import selector_matches

Cause = dict[str, str]

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"

DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    f"regex used for validation is '{DNS1123_LABEL}')"
)
DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{DNS1123_SUBDOMAIN}')"
)
DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    f"'abc-123', regex used for validation is '{DNS1035_LABEL}')"
)


def _repr(value: Any) -> str:
    """Go's ``%#v``-like rendering used in field errors: strings quoted, numbers bare."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def invalid(field: str, value: Any, detail: str) -> Cause:
    return {"reason": "FieldValueInvalid", "message": f"Invalid value: {_repr(value)}: {detail}",
            "field": field}


def required(field: str, detail: str = "") -> Cause:
    msg = "Required value" + (f": {detail}" if detail else "")
    return {"reason": "FieldValueRequired", "message": msg, "field": field}


def not_supported(field: str, value: Any, supported: list[str]) -> Cause:
    valid = ", ".join(json.dumps(s) for s in supported)
    return {"reason": "FieldValueNotSupported",
            "message": f"Unsupported value: {_repr(value)}: supported values: {valid}",
            "field": field}


def forbidden(field: str, detail: str) -> Cause:
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {detail}", "field": field}


def duplicate(field: str, value: Any) -> Cause:
    return {"reason": "FieldValueDuplicate", "message": f"Duplicate value: {_repr(value)}",
            "field": field}


def too_many(field: str, actual: int, limit: int) -> Cause:
    return {"reason": "FieldValueTooMany",
            "message": f"Too many: {actual}: must have at most {limit} items", "field": field}


def _name_check(pattern: str, msg: str, max_len: int) -> Callable[[str, str], list[Cause]]:
    def check(field: str, name: str) -> list[Cause]:
        out = []
        if len(name) > max_len:
            out.append(invalid(field, name, f"must be no more than {max_len} characters"))
        if not re.fullmatch(pattern, name):
            out.append(invalid(field, name, msg))
        return out
    return check


dns1123_label = _name_check(DNS1123_LABEL, DNS1123_LABEL_MSG, 63)
dns1123_subdomain = _name_check(DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MSG, 253)
dns1035_label = _name_check(DNS1035_LABEL, DNS1035_LABEL_MSG, 63)

def path_segment_name(field: str, name: str) -> list[Cause]:
    """``path.IsValidPathSegmentName``: what RBAC object names must be (``system:...`` ok)."""
    if name in (".", ".."):
        return [invalid(field, name, f"may not be '{name}'")]
    for bad in ("/", "%"):
        if bad in name:
            return [invalid(field, name, f"may not contain '{bad}'")]
    return []


#: Which name rule each kind's ``metadata.name`` follows (the rest: DNS-1123 subdomain).
NAME_RULES: dict[str, Callable[[str, str], list[Cause]]] = {
    "Namespace": dns1123_label,
    "Service": dns1035_label,
    "Role": path_segment_name,
    "ClusterRole": path_segment_name,
    "RoleBinding": path_segment_name,
    "ClusterRoleBinding": path_segment_name,
    "CertificateSigningRequest": lambda f, n: [],  # "We don't care what you call" CSRs
}

_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"


def validate_metadata(kind: str, meta: dict[str, Any], namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    name = meta.get("name", "")
    if not name:
        if not meta.get("generateName"):
            causes.append(required("metadata.name", "name or generateName is required"))
    else:
        causes += NAME_RULES.get(kind, dns1123_subdomain)("metadata.name", name)
    if namespaced and not meta.get("namespace"):
        causes.append(required("metadata.namespace"))
    for key, value in sorted((meta.get("labels") or {}).items()):
        prefix, _, short = key.rpartition("/")
        if not re.fullmatch(_QUALIFIED_NAME, short) or len(short) > 63 or (
            prefix and not re.fullmatch(DNS1123_SUBDOMAIN, prefix)
        ):
            causes.append(invalid("metadata.labels", key,
                                  "name part must consist of alphanumeric characters, '-', '_' "
                                  "or '.', and must start and end with an alphanumeric character"))
        if not isinstance(value, str) or len(value) > 63 or not re.fullmatch(_LABEL_VALUE, value):
            causes.append(invalid("metadata.labels", value,
                                  "a valid label must be an empty string or consist of "
                                  "alphanumeric characters, '-', '_' or '.', and must start and "
                                  "end with an alphanumeric character"))
    annotations = meta.get("annotations") or {}
    if isinstance(annotations, dict) and sum(
            len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items()
    ) > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


#: ``apimachinery/pkg/api/validation/objectmeta.go``: ``TotalAnnotationSizeLimitB = 256 KiB``
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
#: ``pkg/apis/core/types.go``: ``MaxSecretSize = 1 * 1024 * 1024``, a ConfigMap's limit too
MAX_SECRET_SIZE = 1024 * 1024
_CONFIG_KEY = r"[-._a-zA-Z0-9]+"


def too_long(field: str, limit: int) -> Cause:
    """``field.TooLong`` (v1.35): the value is omitted from the message."""
    return {"reason": "FieldValueTooLong",
            "message": f"Too long: may not be more than {limit} bytes", "field": field}


def validate_configmap(obj: dict[str, Any]) -> list[Cause]:
    """``ValidateConfigMap`` (``pkg/apis/core/validation``): ``IsConfigMapKey`` for every key
    of ``data`` and ``binaryData``, no key in both, and at most :data:`MAX_SECRET_SIZE` bytes
    of values in all (a ``field.TooLong`` on the path ``field.NewPath("")``, printed ``[]``)."""
    causes: list[Cause] = []
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    total = 0
    for bag, other, values in (("data", binary, data), ("binaryData", data, binary)):
        for key, value in sorted(values.items()):
            if len(key) > 253:
                causes.append(invalid(f"{bag}[{key}]", key, "must be no more than 253 characters"))
            if not re.fullmatch(_CONFIG_KEY, key):
                causes.append(invalid(f"{bag}[{key}]", key, "a valid config key must consist of "
                                      "alphanumeric characters, '-', '_' or '.' (e.g. "
                                      "'key.name',  or 'KEY_NAME',  or 'key-name', regex used "
                                      f"for validation is '{_CONFIG_KEY}')"))
            if key in other and bag == "data":
                causes.append(invalid(f"{bag}[{key}]", key,
                                      "duplicate of key present in binaryData"))
            total += len(str(value or "").encode())
    if total > MAX_SECRET_SIZE:
        causes.append(too_long("[]", MAX_SECRET_SIZE))
    return causes


def validate_secret(obj: dict[str, Any]) -> list[Cause]:  # ValidateSecret: a token names its SA
    key, notes = "kubernetes.io/service-account.name", obj["metadata"].get("annotations") or {}
    return [required(f"metadata.annotations[{key}]")] if obj.get("type") == \
        "kubernetes.io/service-account-token" and not notes.get(key) else []


def _port(field: str, value: Any) -> list[Cause]:
    if not isinstance(value, int) or not 1 <= value <= 65535:
        return [invalid(field, value, "must be between 1 and 65535, inclusive")]
    return []


def validate_pod_spec(spec: dict[str, Any], base: str = "spec") -> list[Cause]:
    causes: list[Cause] = []
    containers = spec.get("containers") or []
    if not containers:
        causes.append(required(f"{base}.containers"))
    seen: set[str] = set()
    for i, c in enumerate(containers):
        path = f"{base}.containers[{i}]"
        name = c.get("name", "")
        if not name:
            causes.append(required(f"{path}.name"))
        else:
            causes += dns1123_label(f"{path}.name", name)
            if name in seen:
                causes.append(duplicate(f"{path}.name", name))
            seen.add(name)
        if not c.get("image"):
            causes.append(required(f"{path}.image"))
        for j, p in enumerate(c.get("ports") or []):
            causes += _port(f"{path}.ports[{j}].containerPort", p.get("containerPort"))
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        causes.append(not_supported(f"{base}.restartPolicy", policy,
                                    ["Always", "OnFailure", "Never"]))
    dns = spec.get("dnsPolicy", "ClusterFirst")
    dns_ok = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
    if dns not in dns_ok:
        causes.append(not_supported(f"{base}.dnsPolicy", dns, dns_ok))
    return causes


def validate_pod(obj: dict[str, Any]) -> list[Cause]:
    return validate_pod_spec(obj.get("spec") or {})


def validate_service(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
    stype = spec.get("type", "ClusterIP")
    if stype not in types:
        causes.append(not_supported("spec.type", stype, types))
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if not ports and stype != "ExternalName" and not headless:
        causes.append(required("spec.ports"))
    names: set[str] = set()
    for i, p in enumerate(ports):
        path = f"spec.ports[{i}]"
        if len(ports) > 1 and not p.get("name"):
            causes.append(required(f"{path}.name"))
        if p.get("name"):
            causes += dns1123_label(f"{path}.name", p["name"])
            if p["name"] in names:
                causes.append(duplicate(f"{path}.name", p["name"]))
            names.add(p["name"])
        causes += _port(f"{path}.port", p.get("port"))
        proto = p.get("protocol", "TCP")
        if proto not in ("TCP", "UDP", "SCTP"):
            causes.append(not_supported(f"{path}.protocol", proto, ["SCTP", "TCP", "UDP"]))
        if "nodePort" in p and stype not in ("NodePort", "LoadBalancer"):
            causes.append(forbidden(f"{path}.nodePort",
                                    "may not be used when `type` is 'ClusterIP'"))
    return causes


def _validate_replicated(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    selector = spec.get("selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector:
        causes.append(required("spec.selector"))
    elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(invalid("spec.selector", selector, "empty selector is invalid for "
                              "deployment" if obj.get("kind") == "Deployment" else
                              "empty selector is invalid"))
    elif not selector_matches(selector, labels):
        causes.append(invalid("spec.template.metadata.labels", labels,
                              "`selector` does not match template `labels`"))
    template = spec.get("template")
    if not template:
        causes.append(required("spec.template"))
    else:
        causes += validate_pod_spec(template.get("spec") or {}, "spec.template.spec")
        policy = (template.get("spec") or {}).get("restartPolicy", "Always")
        if policy != "Always":
            causes.append(not_supported("spec.template.spec.restartPolicy", policy, ["Always"]))
    return causes


def validate_endpointslice(obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    at = obj.get("addressType")
    if at not in ("IPv4", "IPv6", "FQDN"):
        causes.append(not_supported("addressType", at, ["FQDN", "IPv4", "IPv6"])
                      if at else required("addressType"))
    endpoints = obj.get("endpoints") or []
    if len(endpoints) > 1000:
        causes.append(too_many("endpoints", len(endpoints), 1000))
    for i, ep in enumerate(endpoints):
        addrs = ep.get("addresses") or []
        if not 1 <= len(addrs) <= 100:
            causes.append(required(f"endpoints[{i}].addresses", "must contain at least 1 address")
                          if not addrs else too_many(f"endpoints[{i}].addresses", len(addrs), 100))
    return causes


def validate_ingress(obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    types = ["Exact", "ImplementationSpecific", "Prefix"]
    for i, rule in enumerate((obj.get("spec") or {}).get("rules") or []):
        for j, p in enumerate(((rule.get("http") or {}).get("paths")) or []):
            path = f"spec.rules[{i}].http.paths[{j}]"
            ptype = p.get("pathType")
            if ptype is None:
                causes.append(required(f"{path}.pathType", "pathType must be specified"))
            elif ptype not in types:
                causes.append(not_supported(f"{path}.pathType", ptype, types))
            elif ptype in ("Exact", "Prefix") and not str(p.get("path", "")).startswith("/"):
                causes.append(invalid(f"{path}.path", p.get("path", ""),
                                      "must be an absolute path"))
            elif ptype == "ImplementationSpecific" and p.get("path") and \
                    not str(p["path"]).startswith("/"):
                causes.append(invalid(f"{path}.path", p["path"], "must be an absolute path"))
            if ptype in ("Exact", "Prefix") and p.get("path"):
                # invalidPathSequences / invalidPathSuffixes of pkg/apis/networking/validation
                for seq in ("//", "/./", "/../", "%2f", "%2F"):
                    if seq in p["path"]:
                        causes.append(invalid(f"{path}.path", p["path"],
                                              f"must not contain '{seq}'"))
                for suffix in ("/..", "/."):
                    if p["path"].endswith(suffix):
                        causes.append(invalid(f"{path}.path", p["path"],
                                              f"cannot end with '{suffix}'"))
    return causes


def validate_pdb(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    if "minAvailable" in spec and "maxUnavailable" in spec:
        return [invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set")]
    return []


def validate_lease(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    d = spec.get("leaseDurationSeconds")
    if d is not None and (not isinstance(d, int) or d <= 0):
        return [invalid("spec.leaseDurationSeconds", d, "must be greater than 0")]
    return []


def _validate_job_template(spec: dict[str, Any], base: str) -> list[Cause]:
    """``ValidateJobSpec``: a pod template whose restartPolicy is OnFailure or Never."""
    template = spec.get("template")
    if not template:
        return [required(f"{base}.template")]
    policy = (template.get("spec") or {}).get("restartPolicy", "Always")
    causes = validate_pod_spec(template.get("spec") or {}, f"{base}.template.spec")
    if policy not in ("OnFailure", "Never"):
        causes.append(not_supported(f"{base}.template.spec.restartPolicy", policy,
                                    ["OnFailure", "Never"]))
    return causes


def validate_job(obj: dict[str, Any]) -> list[Cause]:
    return _validate_job_template(obj.get("spec") or {}, "spec")


def validate_cronjob(obj: dict[str, Any]) -> list[Cause]:
    """``ValidateCronJobSpec``: a standard cron schedule (``robfig/cron``'s ``ParseStandard``
    wants five fields or a ``@`` descriptor) and a valid job template."""
    spec = obj.get("spec") or {}
    schedule = spec.get("schedule") or ""
    causes: list[Cause] = []
    fields = schedule.split()
    if not schedule:
        causes.append(required("spec.schedule"))
    elif not schedule.startswith("@") and len(fields) != 5:
        causes.append(invalid("spec.schedule", schedule, f"expected exactly 5 fields, found "
                              f"{len(fields)}: [{' '.join(fields)}]"))
    else:
        if not croniter.is_valid(schedule):
            causes.append(invalid("spec.schedule", schedule, "unparseable schedule"))
    job = (spec.get("jobTemplate") or {}).get("spec") or {}
    return causes + _validate_job_template(job, "spec.jobTemplate.spec")


SPEC_RULES: dict[str, Callable[[dict[str, Any]], list[Cause]]] = {
    "Pod": validate_pod,
    "Service": validate_service,
    "ReplicaSet": _validate_replicated,
    "Deployment": _validate_replicated,
    "StatefulSet": _validate_replicated,
    "DaemonSet": _validate_replicated,
    "Job": validate_job,
    "CronJob": validate_cronjob,
    "EndpointSlice": validate_endpointslice,
    "Ingress": validate_ingress,
    "PodDisruptionBudget": validate_pdb,
    "Lease": validate_lease,
    "ConfigMap": validate_configmap,
    "Secret": validate_secret,
}


def validate(kind: str, obj: dict[str, Any], namespaced: bool) -> list[Cause]:
    """Every field error of ``obj``, in a stable order."""
    causes = validate_metadata(kind, obj.get("metadata") or {}, namespaced)
    rule = SPEC_RULES.get(kind)
    if rule:
        causes += rule(obj)
    return causes


#: Pod spec fields an update may change (``ValidatePodUpdate``: image, activeDeadlineSeconds,
#: tolerations additions, terminationGracePeriodSeconds, schedulingGates removal).
def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    def strip(spec: dict[str, Any]) -> dict[str, Any]:
        # shallow copies of what it changes (the spec and its containers), not a deep copy
        # of the spec: the same value to compare, made from JSON types
        s = dict(spec)
        if "containers" in s:
            s["containers"] = [{k: v for k, v in c.items() if k != "image"}
                               for c in s["containers"]]
        for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds",
                    "schedulingGates"):
            s.pop(key, None)
        return s

    if strip(new.get("spec") or {}) != strip(old.get("spec") or {}):
        return [forbidden("spec", "pod updates may not change fields other than "
                          "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                          "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                          "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it "
                          "to be set to 1 if it was previously negative)")]
    return []
