"""Label and field selectors: the grammar, the field labels each kind supports, and matching.

``field_matches`` reads only the fields a selector names and ``selector_matches`` checks a
LabelSelector's ``matchLabels`` where they are; both are compared here with the plain way (all
of a kind's field labels first; requirements built, sorted and checked in turn).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from k8sbook.api import objects
from k8sbook.api.selectors import (
    FIELD_LABELS,
    field_matches,
    from_label_selector,
    matches,
    parse_field_selector,
    selector_matches,
)
from k8sbook.core.status import StatusError


def reference_fields(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """Every field label of ``obj`` at once, as the selectors module computed them before."""
    meta = obj.get("metadata", {})
    values = {"metadata.name": meta.get("name", ""),
              "metadata.namespace": meta.get("namespace", "")}
    spec, status = obj.get("spec", {}), obj.get("status", {})
    if kind == "Pod":
        values.update({
            "spec.nodeName": spec.get("nodeName", ""),
            "spec.restartPolicy": spec.get("restartPolicy", ""),
            "spec.schedulerName": spec.get("schedulerName", ""),
            "spec.serviceAccountName": spec.get("serviceAccountName", ""),
            "spec.hostNetwork": str(bool(spec.get("hostNetwork", False))).lower(),
            "status.phase": status.get("phase", ""),
            "status.podIP": status.get("podIP", ""),
            "status.nominatedNodeName": status.get("nominatedNodeName", "")})
    elif kind == "Node":
        values["spec.unschedulable"] = str(bool(spec.get("unschedulable", False))).lower()
    elif kind == "Namespace":
        values["status.phase"] = status.get("phase", "")
    elif kind == "Secret":
        values["type"] = obj.get("type", "")
    elif kind == "Event":
        inv = obj.get("involvedObject", {})
        values.update({f"involvedObject.{k}": str(inv.get(k, "")) for k in
                       ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                        "fieldPath")})
        values.update({"reason": obj.get("reason", ""), "type": obj.get("type", ""),
                       "source": obj.get("source", {}).get("component", "")})
    elif kind == "ReplicaSet":
        values["status.replicas"] = str(status.get("replicas", 0))
    return values


def reference_field_matches(fsel: list[tuple[str, str, str]], obj: dict[str, Any],
                            kind: str) -> bool:
    values = reference_fields(obj, kind)
    return all((values.get(f, "") == v) == (op == "=") for f, op, v in fsel)


def _objects() -> list[tuple[str, dict[str, Any]]]:
    scheduled = objects.pod("web", "prod")
    scheduled["spec"].update({"nodeName": "node-a", "hostNetwork": True})
    scheduled["status"] = {"phase": "Running", "podIP": "10.244.0.5"}
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "d"},
             "involvedObject": {"kind": "Pod", "name": "web", "namespace": "d", "uid": "u1"},
             "reason": "Scheduled", "type": "Normal", "source": {"component": "kubelet"}}
    return [("Pod", objects.pod("web")), ("Pod", scheduled), ("Pod", {}),
            ("Node", {"metadata": {"name": "node-a"}, "spec": {"unschedulable": True}}),
            ("Node", {"metadata": {"name": "node-b"}}),
            ("Namespace", {"metadata": {"name": "ns"}, "status": {"phase": "Active"}}),
            ("Secret", {"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque"}),
            ("Event", event), ("Event", {}),
            ("ReplicaSet", {"metadata": {"name": "rs"}, "status": {"replicas": 3}}),
            ("ReplicaSet", {"metadata": {"name": "rs"}}),
            ("ConfigMap", {"metadata": {"name": "cm", "namespace": "d"}})]


def test_a_field_selector_gives_the_answer_of_reading_every_field() -> None:
    for kind, obj in _objects():
        names = sorted(reference_fields({}, kind))
        # every field with its own value, with another value, and pairs of terms
        terms = []
        for name in names:
            value = str(reference_fields(obj, kind)[name])
            terms += [(name, "=", value), (name, "!=", value), (name, "=", "other"),
                      (name, "!=", "other"), (name, "=", "")]
        for fsel in [[t] for t in terms] + [list(p) for p in itertools.combinations(terms, 2)]:
            assert field_matches(fsel, obj, kind) == reference_field_matches(fsel, obj, kind), \
                (kind, fsel)
        assert field_matches([], obj, kind)


def test_the_field_labels_of_each_kind_are_unchanged() -> None:
    for kind, obj in _objects():
        if kind in FIELD_LABELS:
            want = reference_fields(obj, kind)
            want.pop("metadata.name")
            want.pop("metadata.namespace")
            assert FIELD_LABELS[kind](obj) == want


def test_only_a_kinds_field_labels_are_accepted() -> None:
    assert parse_field_selector("spec.nodeName=node-a,status.phase!=Failed", "Pod") == [
        ("spec.nodeName", "=", "node-a"), ("status.phase", "!=", "Failed")]
    with pytest.raises(StatusError) as err:
        parse_field_selector("spec.nodeName=a", "Node")
    assert err.value.code == 400
    assert err.value.status["message"] == (
        '"spec.nodeName" is not a known field selector: only '
        '"metadata.name, metadata.namespace, spec.unschedulable"')
    with pytest.raises(StatusError):
        parse_field_selector("data.x=1", "ConfigMap")


def test_a_label_selector_gives_the_answer_of_its_requirements() -> None:
    selectors: list[dict[str, Any] | None] = [
        None, {}, {"matchLabels": {}}, {"matchLabels": {"app": "web"}},
        {"matchLabels": {"app": "web", "tier": "front"}},
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]},
        {"matchLabels": {"app": "web"},
         "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["back"]},
                              {"key": "env", "operator": "Exists"}]},
        {"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]},
    ]
    label_sets: list[dict[str, str] | None] = [
        None, {}, {"app": "web"}, {"app": "db"}, {"app": "web", "tier": "front"},
        {"app": "web", "tier": "back", "env": "prod"}, {"app": "web", "env": "dev"},
        {"tier": "front"}]
    for sel, labels in itertools.product(selectors, label_sets):
        assert selector_matches(sel, labels) == matches(from_label_selector(sel), labels), \
            (sel, labels)
