"""k8sbook.textbook.scenarios.views: how the chapters print objects."""

from __future__ import annotations

import yaml as pyyaml

from k8sbook.textbook.scenarios.views import yaml


def test_yaml_prints_objects_as_kubectl_does():
    obj = {"metadata": {"name": "web", "labels": {"app": "web"}}, "apiVersion": "v1",
           "kind": "Pod", "spec": {"tolerations": [{"key": "k", "operator": "Exists"}]},
           "status": {"conditions": ("Ready", "True")}}
    text = yaml(obj)
    assert text.splitlines()[:3] == ["apiVersion: v1", "kind: Pod", "metadata:"]
    assert "- key: k\n    operator: Exists" in text  # mappings in block style
    assert "conditions: [Ready, 'True']" in text       # a list of scalars on one line
    assert pyyaml.safe_load(text)["status"]["conditions"] == ["Ready", "True"]
    assert not text.endswith("\n")


def test_yaml_of_a_scalar_has_no_document_end_marker():
    assert yaml("x") == "x"
    assert yaml({"a": []}) == "a: []"
