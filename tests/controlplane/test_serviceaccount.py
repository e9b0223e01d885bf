"""The ServiceAccount controller (``pkg/controller/serviceaccount``)."""

from __future__ import annotations

from k8sbook.api import objects
from k8sbook.cluster import Cluster


def test_every_active_namespace_gets_a_default_service_account():
    c = Cluster(0)
    c.add_controller_manager(controllers=("serviceaccount",)).start()
    c.run_for(3)
    adm = c.admin()
    adm.create(objects.namespace("team"))
    c.run_for(1)
    for ns in ("default", "kube-system", "team"):
        assert adm.get("serviceaccounts", "default", ns)["metadata"]["name"] == "default"
    adm.delete("serviceaccounts", "default", "team")
    c.run_for(1)
    assert adm.get("serviceaccounts", "default", "team")  # made again
