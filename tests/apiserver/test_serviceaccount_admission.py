"""The ServiceAccount admission plugin (``plugin/pkg/admission/serviceaccount``)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from tests.helpers import snapshot


def test_the_admission_plugin_sets_the_account_and_the_token_volume():
    c = Cluster(0, service_account_admission=True)
    c.add_controller_manager(controllers=("serviceaccount",)).start()
    c.run_for(3)
    pod = c.admin().create(objects.pod("web", containers=[
        objects.container("app", "nginx:1.27"), objects.container("side", "busybox:1.36")]))
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default"
    [vol] = spec["volumes"]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == 21
    sources = vol["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert vol["projected"]["defaultMode"] == 420
    for ctr in spec["containers"]:
        assert ctr["volumeMounts"] == [{"name": vol["name"], "readOnly": True,
                                        "mountPath": "/var/run/secrets/kubernetes.io/"
                                                     "serviceaccount"}]
    kubernetes_validate.validate(pod, "1.35.0", strict=True)
    opted_out = c.admin().create(objects.pod("quiet", automountServiceAccountToken=False))
    assert "volumes" not in opted_out["spec"]


def test_a_pod_whose_account_does_not_exist_is_forbidden_and_not_stored():
    c = Cluster(0, service_account_admission=True)
    before = snapshot(c)
    with pytest.raises(StatusError) as err:
        c.admin().create(objects.pod("web"))
    st = err.value.status
    assert (st["code"], st["reason"]) == (403, "Forbidden")
    assert st["message"] == ('pods "web" is forbidden: error looking up service account '
                             'default/default: serviceaccount "default" not found')
    assert snapshot(c) == before
