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
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9_./-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<val>[A-Za-z0-9_.-]*)"
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


def parse_label_selector(selector: str) -> list[Requirement]:
    """Parse the string form (``?labelSelector=``); a bad one is a 400 BadRequest."""
    reqs: list[Requirement] = []
    for term in _split_terms(selector or ""):
        m = _TERM.match(term)
        if not m:
            raise bad_request(f"unable to parse requirement: {term.strip()!r}")
        key = m["key"]
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
