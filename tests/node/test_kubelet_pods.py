"""What the kubelet prepares for a container (``pkg/kubelet/kubelet_pods.go``): the env."""

from __future__ import annotations

from k8sbook.node.kubelet.kubelet_pods import make_environment_variables, service_env


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


def test_service_env_is_a_new_dict_each_time_with_the_variables_of_envvars_go():
    first = service_env("10.96.0.1", 443)
    assert first == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp", "KUBERNETES_PORT_443_TCP_PORT": "443",
        "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"}
    first["KUBERNETES_SERVICE_HOST"] = "changed"  # a container's env over them
    again = service_env("10.96.0.1", 443)
    assert again is not first and again["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    # the strings are shared between containers, the dicts are not
    assert again["KUBERNETES_PORT"] is service_env("10.96.0.1", 443)["KUBERNETES_PORT"]
    assert service_env("10.0.0.10", 53, "kube-dns", "dns-tcp")["KUBE_DNS_SERVICE_PORT_DNS_TCP"] \
        == "53"
