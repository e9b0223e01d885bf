"""What the kubelet prepares for a container (``pkg/kubelet/kubelet_pods.go``): the env."""

from __future__ import annotations

from k8sbook.node.kubelet.kubelet_pods import make_environment_variables


def test_field_refs_to_the_pods_metadata_and_spec_are_resolved():
    pod = {"metadata": {"name": "idx-1-abcde", "namespace": "team", "uid": "u-1",
                        "labels": {"app": "web"},
                        "annotations": {"batch.kubernetes.io/job-completion-index": "1"}},
           "spec": {"nodeName": "node-a", "serviceAccountName": "default"}}

    def ref(path: str) -> dict:
        return {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}
    container = {"env": [
        {"name": "PLAIN", "value": "x"},
        {"name": "INDEX",
         "valueFrom": ref("metadata.annotations['batch.kubernetes.io/job-completion-index']")},
        {"name": "APP", "valueFrom": ref("metadata.labels['app']")},
        {"name": "MISSING", "valueFrom": ref("metadata.labels['nope']")},
        {"name": "NS", "valueFrom": ref("metadata.namespace")},
        {"name": "NODE", "valueFrom": ref("spec.nodeName")},
        {"name": "IP", "valueFrom": ref("status.podIP")},  # not resolved by the model
        {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]}
    env = {e["key"]: e["value"] for e in make_environment_variables(
        container, ("10.96.0.1", 443), pod)}
    assert (env["PLAIN"], env["INDEX"], env["APP"], env["MISSING"], env["NS"], env["NODE"]) == \
        ("x", "1", "web", "", "team", "node-a")
    assert "IP" not in env and "CM" not in env
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"  # the Service variables come first
