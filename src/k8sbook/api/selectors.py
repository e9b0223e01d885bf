"""Label and field selectors.

Mirrors ``k8s.io/apimachinery/pkg/labels`` (the selector grammar: ``a=b``, ``a==b``,
``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``), ``metav1.LabelSelector``
(``matchLabels`` and ``matchExpressions`` with In, NotIn, Exists, DoesNotExist) and
``k8s.io/apimachinery/pkg/fields`` with the per-resource field labels the apiserver accepts
(``pkg/registry/core/pod/strategy.go`` ``ToSelectableFields`` and friends).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from k8sbook.core.status import bad_request

Requirement = tuple[str, str, tuple[str, ...]]  # (key, operator, values)

_TERM = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[^\s,()=!]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<val>[^\s,()=!]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<vals>[^)]*)\))?\s*$"
)


def _split_terms(selector: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur)
    return terms


_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = f"({_NAME})?"
_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
             "with an alphanumeric character")
_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
              "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
              f"'MyValue',  or 'my_value',  or '12345', regex used for validation is "
              f"'{_LABEL_VALUE}')")


def _key_errors(key: str) -> list[str]:
    """``content.IsLabelKey`` (``apimachinery/pkg/api/validate/content/kube.go``)."""
    errs: list[str] = []
    parts = key.split("/")
    regex = f"{_NAME_MSG} (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for " \
        f"validation is '{_NAME}')"
    if len(parts) > 2:
        return [(f"a valid label key {regex} with an optional DNS subdomain prefix and '/' "
                 "(e.g. 'example.com/MyName')")]
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            errs.append("prefix part must be non-empty")
        elif len(parts[0]) > 253 or not re.fullmatch(_SUBDOMAIN, parts[0]):
            errs.append("prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                        "alphanumeric characters, '-' or '.', and must start and end with an "
                        "alphanumeric character (e.g. 'example.com', regex used for validation "
                        f"is '{_SUBDOMAIN}')")
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not re.fullmatch(_NAME, name):
        errs.append(f"name part {regex}")
    return errs


def _check_requirement(key: str, values: tuple[str, ...]) -> None:
    """``labels.NewRequirement``: the key, then each value (``validateLabelKey``,
    ``validateLabelValue``); the parser prefixes ``unable to parse requirement: `` and the
    list handler answers 400 BadRequest."""
    errs = []
    if _key_errors(key):
        errs.append(f"key: Invalid value: {_quote(key)}: {'; '.join(_key_errors(key))}")
    for i, v in enumerate(values):
        msgs = (["must be no more than 63 characters"] if len(v) > 63 else []) + \
            ([] if re.fullmatch(_LABEL_VALUE, v) else [_VALUE_MSG])
        if msgs:
            errs.append(f"values[{i}][{key}]: Invalid value: {_quote(v)}: {'; '.join(msgs)}")
    if errs:
        text = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
        raise bad_request(f"unable to parse requirement: {text}")


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_label_selector(selector: str) -> list[Requirement]:
    """Parse the string form (``?labelSelector=``); a bad one is a 400 BadRequest, with
    the key and values validated as ``labels.Parse`` does."""
    reqs: list[Requirement] = []
    for term in _split_terms(selector or ""):
        m = _TERM.match(term)
        if not m:
            raise bad_request(f"unable to parse requirement: {term.strip()!r}")
        key = m["key"]
        vals_seen = (m["val"],) if m["op"] else tuple(
            v.strip() for v in (m["vals"] or "").split(",") if v.strip())
        _check_requirement(key, vals_seen)
        if m["neg"]:
            if m["op"] or m["setop"]:
                raise bad_request(f"unable to parse requirement: {term.strip()!r}")
            reqs.append((key, "DoesNotExist", ()))
        elif m["op"]:
            op = "NotIn" if m["op"] == "!=" else "In"
            reqs.append((key, op, (m["val"],)))
        elif m["setop"]:
            vals = tuple(sorted(v.strip() for v in m["vals"].split(",") if v.strip()))
            reqs.append((key, "In" if m["setop"] == "in" else "NotIn", vals))
        else:
            reqs.append((key, "Exists", ()))
    return reqs


def from_label_selector(sel: dict[str, Any] | None) -> list[Requirement]:
    """Requirements from a ``metav1.LabelSelector`` (``matchLabels``/``matchExpressions``)."""
    if not sel:
        return []
    reqs: list[Requirement] = [
        (k, "In", (v,)) for k, v in sorted((sel.get("matchLabels") or {}).items())
    ]
    for expr in sel.get("matchExpressions") or []:
        reqs.append((expr["key"], expr["operator"], tuple(sorted(expr.get("values") or ()))))
    return reqs


def matches(reqs: list[Requirement], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    for key, op, values in reqs:
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def selector_matches(sel: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """``metav1.LabelSelector`` semantics: an empty selector matches everything.

    (A *nil* selector matches nothing in most APIs; callers check for None themselves.)
    """
    return matches(from_label_selector(sel), labels)


def _pod_fields(obj: dict[str, Any]) -> dict[str, str]:
    spec, status = obj.get("spec", {}), obj.get("status", {})
    return {
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.restartPolicy": spec.get("restartPolicy", ""),
        "spec.schedulerName": spec.get("schedulerName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "spec.hostNetwork": str(bool(spec.get("hostNetwork", False))).lower(),
        "status.phase": status.get("phase", ""),
        "status.podIP": status.get("podIP", ""),
        "status.nominatedNodeName": status.get("nominatedNodeName", ""),
    }


def _event_fields(obj: dict[str, Any]) -> dict[str, str]:
    inv = obj.get("involvedObject", {})
    out = {f"involvedObject.{k}": str(inv.get(k, "")) for k in
           ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    out.update({"reason": obj.get("reason", ""), "type": obj.get("type", ""),
                "source": obj.get("source", {}).get("component", "")})
    return out


#: Extra field labels per kind, beyond metadata.name and metadata.namespace.
FIELD_LABELS: dict[str, Callable[[dict[str, Any]], dict[str, str]]] = {
    "Pod": _pod_fields,
    "Node": lambda o: {"spec.unschedulable": str(bool(o.get("spec", {}).get("unschedulable",
                                                                             False))).lower()},
    "Namespace": lambda o: {"status.phase": o.get("status", {}).get("phase", "")},
    "Secret": lambda o: {"type": o.get("type", "")},
    "Event": _event_fields,
    "ReplicaSet": lambda o: {"status.replicas": str(o.get("status", {}).get("replicas", 0))},
}


def parse_field_selector(selector: str, kind: str) -> list[tuple[str, str, str]]:
    """``?fieldSelector=spec.nodeName=node-a,status.phase!=Failed`` -> (field, op, value).

    Only the field labels a kind supports are accepted, as in the real apiserver.
    """
    out = []
    for term in [t for t in (selector or "").split(",") if t.strip()]:
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise bad_request(f"invalid selector: {selector!r}; can't understand {term!r}")
        fld, op, value = m.groups()
        supported = {"metadata.name", "metadata.namespace"}
        if kind in FIELD_LABELS:
            supported |= set(FIELD_LABELS[kind]({}))
        if fld not in supported:
            raise bad_request(f'"{fld}" is not a known field selector: only '
                              f'"{", ".join(sorted(supported))}"')
        out.append((fld, "!=" if op == "!=" else "=", value))
    return out


def field_matches(fsel: list[tuple[str, str, str]], obj: dict[str, Any], kind: str) -> bool:
    if not fsel:
        return True
    meta = obj.get("metadata", {})
    values = {"metadata.name": meta.get("name", ""),
              "metadata.namespace": meta.get("namespace", "")}
    if kind in FIELD_LABELS:
        values.update(FIELD_LABELS[kind](obj))
    return all((values.get(f, "") == v) == (op == "=") for f, op, v in fsel)
