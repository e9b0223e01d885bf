"""The disruption controller (``pkg/controller/disruption``): the budget's arithmetic."""

from __future__ import annotations

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios import run


def test_disruption_controller_computes_the_budget():
    facts = run("rescheduling-eviction").facts
    assert facts["pdb_refusing"] == {"currentHealthy": 2, "desiredHealthy": 2,
                                     "disruptionsAllowed": 0, "expectedPods": 2}
    assert facts["pdb_allowing"]["disruptionsAllowed"] == 1


def test_disruption_controller_max_unavailable_uses_the_owners_scale():
    cluster = Cluster(0)
    cluster.add_controller_manager().start()
    cluster.run_for(3)
    admin = cluster.admin()
    admin.create(objects.replicaset("web", replicas=4))
    admin.create(objects.pdb("web", selector={"app": "web"}, max_unavailable="25%"))
    cluster.run_for(3)
    status = admin.get("poddisruptionbudgets", "web", "default")["status"]
    # no kubelet: no pod is Ready, so none is healthy and nothing may be disrupted
    assert (status["expectedPods"], status["desiredHealthy"], status["currentHealthy"],
            status["disruptionsAllowed"]) == (4, 3, 0, 0)
    assert status["conditions"][0]["reason"] == "InsufficientPods"
