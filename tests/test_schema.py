"""Every object the model writes validates against the official Kubernetes OpenAPI schema."""

import pytest

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from k8sbook.scenarios import all_scenarios, run

#: The Kubernetes release whose schemas the model follows ("current" is v1.34-v1.36).
K8S_VERSION = "1.35.0"


def stored_objects(cluster):
    """Every object in the model's etcd, as a client would read it."""
    from k8sbook.storage import decode
    resp = cluster.etcd.range("/registry/", "/registry0")
    return [decode(kv) for kv in resp.kvs]


@pytest.mark.parametrize("name", [s.name for s in all_scenarios()])
def test_scenario_objects_are_schema_valid(name):
    cluster = run(name).cluster
    objs = stored_objects(cluster)
    assert objs
    for obj in objs:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
