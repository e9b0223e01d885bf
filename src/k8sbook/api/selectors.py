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

    The same answer as ``matches(from_label_selector(sel), labels)``, without building and
    sorting the ``matchLabels`` requirements (a conjunction's order does not change it): each
    label is looked up where it is (``tests/api/test_selectors.py`` compares the two)."""
    if not sel:
        return True
    exprs = sel.get("matchExpressions")
    reqs = [(e["key"], e["operator"], tuple(sorted(e.get("values") or ()))) for e in exprs] \
        if exprs else None
    labels = labels or {}
    for key, value in (sel.get("matchLabels") or {}).items():
        if key not in labels or labels[key] not in (value,):
            return False
    return matches(reqs, labels) if reqs else True


def _get(*path: str, default: Any = "") -> Callable[[dict[str, Any]], Any]:
    """A field label's value: ``obj[path[0]][path[1]]...``, ``default`` where one is missing
    (each level read as ``.get(name, {})``, as the apiserver's ``ToSelectableFields`` reads a
    field of a zero-valued struct)."""
    *parents, leaf = path

    def get(obj: dict[str, Any]) -> Any:
        for name in parents:
            obj = obj.get(name, {})
        return obj.get(leaf, default)
    return get


def _flag(*path: str) -> Callable[[dict[str, Any]], str]:
    get = _get(*path, default=False)
    return lambda obj: str(bool(get(obj))).lower()


def _text(*path: str, default: Any = "") -> Callable[[dict[str, Any]], str]:
    get = _get(*path, default=default)
    return lambda obj: str(get(obj))


_META: dict[str, Callable[[dict[str, Any]], Any]] = {
    "metadata.name": _get("metadata", "name"),
    "metadata.namespace": _get("metadata", "namespace"),
}

#: Each kind's field labels beyond metadata.name and metadata.namespace, as the field's name
#: and how to read it from an object (``pkg/registry/core/pod/strategy.go``
#: ``ToSelectableFields`` and its counterparts for the other kinds).
_FIELD_GETTERS: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
    "Pod": {
        "spec.nodeName": _get("spec", "nodeName"),
        "spec.restartPolicy": _get("spec", "restartPolicy"),
        "spec.schedulerName": _get("spec", "schedulerName"),
        "spec.serviceAccountName": _get("spec", "serviceAccountName"),
        "spec.hostNetwork": _flag("spec", "hostNetwork"),
        "status.phase": _get("status", "phase"),
        "status.podIP": _get("status", "podIP"),
        "status.nominatedNodeName": _get("status", "nominatedNodeName"),
    },
    "Node": {"spec.unschedulable": _flag("spec", "unschedulable")},
    "Namespace": {"status.phase": _get("status", "phase")},
    "Secret": {"type": _get("type")},
    "Event": {
        **{f"involvedObject.{k}": _text("involvedObject", k) for k in
           ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reason": _get("reason"), "type": _get("type"),
        "source": _get("source", "component"),
    },
    "ReplicaSet": {"status.replicas": _text("status", "replicas", default=0)},
}

#: every field label a kind can be selected by, metadata's first (later ones win)
_SELECTABLE: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
    kind: {**_META, **getters} for kind, getters in _FIELD_GETTERS.items()}


def _all_fields(getters: dict[str, Callable[[dict[str, Any]], Any]]
                ) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda obj: {name: get(obj) for name, get in getters.items()}


#: Extra field labels per kind, beyond metadata.name and metadata.namespace: every one of an
#: object's values at once.
FIELD_LABELS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    kind: _all_fields(getters) for kind, getters in _FIELD_GETTERS.items()}


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
        supported = _SELECTABLE.get(kind, _META)
        if fld not in supported:
            raise bad_request(f'"{fld}" is not a known field selector: only '
                              f'"{", ".join(sorted(supported))}"')
        out.append((fld, "!=" if op == "!=" else "=", value))
    return out


def field_matches(fsel: list[tuple[str, str, str]], obj: dict[str, Any], kind: str) -> bool:
    """Whether ``obj`` satisfies every term; only the fields the terms name are read (the
    same answer as reading all of the kind's field labels first; a field the kind does not
    have reads as ``""``)."""
    if not fsel:
        return True
    getters = _SELECTABLE.get(kind, _META)
    for fld, op, value in fsel:
        get = getters.get(fld)
        if ((get(obj) if get is not None else "") == value) != (op == "="):
            return False
    return True
