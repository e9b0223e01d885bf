"""The root CA certificate publisher (``pkg/controller/certificates/rootcacertpublisher``)."""

from __future__ import annotations

import kubernetes_validate

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controllers.rootcacertpublisher import (
    CONFIG_MAP,
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
)
from k8sbook.core import pki


def test_every_namespace_gets_the_root_ca_and_edits_are_put_back():
    # the controller's role is bootstrapped where the ServiceAccount admission plugin runs
    # (apiserver/rbac.py: ADMISSION_ADDITIONS)
    c = Cluster(0, service_account_admission=True)
    c.add_controller_manager(controllers=("root-ca-cert-publisher",)).start()
    c.run_for(3)
    adm = c.admin()
    adm.create(objects.namespace("team"))
    c.run_for(1)
    ca = pki.pem(pki.ca().certificate).decode()
    for ns in ("default", "kube-public", "kube-system", "team"):
        cm = adm.get("configmaps", CONFIG_MAP, ns)
        assert cm["data"] == {"ca.crt": ca}
        assert cm["metadata"]["annotations"] == {DESCRIPTION_ANNOTATION: DESCRIPTION}
        kubernetes_validate.validate(cm, "1.35.0", strict=True)
    # written by the controller's own service account
    cm = adm.get("configmaps", CONFIG_MAP, "team")
    assert cm["metadata"]["managedFields"][0]["manager"] == "kube-controller-manager"
    cm["data"] = {"ca.crt": "tampered"}
    adm.update(cm)
    c.run_for(1)
    assert adm.get("configmaps", CONFIG_MAP, "team")["data"] == {"ca.crt": ca}
    adm.delete("configmaps", CONFIG_MAP, "team")
    c.run_for(1)
    assert adm.get("configmaps", CONFIG_MAP, "team")["data"] == {"ca.crt": ca}
