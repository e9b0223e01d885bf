"""kubectl's client-side rollout commands (``k8s.io/kubectl/pkg/polymorphichelpers``) against
the model's Deployment controller."""

from __future__ import annotations

import pytest

from k8sbook.client.kubectl_rollout import (
    RolloutError,
    rollout_pause,
    rollout_resume,
    rollout_undo,
)
from tests.controlplane.test_deployment import cluster, deployment, replicasets_by_name, set_image

__all__ = ["cluster"]  # the fixture


def test_rollout_undo_rolls_back_to_the_previous_replicaset(cluster):
    adm = cluster.admin()
    adm.create(deployment(2))
    cluster.run_for(8)
    first = next(iter(replicasets_by_name(cluster)))
    set_image(cluster, "nginx:1.28")
    cluster.run_for(20)
    assert rollout_undo(adm, "default", "web") == "deployment.apps/web rolled back"
    cluster.run_for(20)
    rss = replicasets_by_name(cluster)
    assert rss[first]["spec"]["replicas"] == 2 and len(rss) == 2
    ann = rss[first]["metadata"]["annotations"]
    assert ann["deployment.kubernetes.io/revision"] == "3"
    assert ann["deployment.kubernetes.io/revision-history"] == "1"
    d = adm.get("deployments", "web", "default")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert "pod-template-hash" not in d["spec"]["template"]["metadata"]["labels"]
    with pytest.raises(RolloutError, match="unable to find specified revision 9"):
        rollout_undo(adm, "default", "web", to_revision=9)


def test_a_paused_deployment_does_not_roll_and_says_so(cluster):
    adm = cluster.admin()
    adm.create(deployment(2))
    cluster.run_for(8)
    assert rollout_pause(adm, "default", "web") == "deployment.apps/web paused"
    set_image(cluster, "nginx:1.28")
    cluster.run_for(10)
    assert len(replicasets_by_name(cluster)) == 1
    cond = next(c for c in adm.get("deployments", "web", "default")["status"]["conditions"]
                if c["type"] == "Progressing")
    assert (cond["status"], cond["reason"], cond["message"]) == \
        ("Unknown", "DeploymentPaused", "Deployment is paused")
    with pytest.raises(RolloutError, match="cannot rollback a paused deployment"):
        rollout_undo(adm, "default", "web")
    rollout_resume(adm, "default", "web")
    cluster.run_for(20)
    assert sorted(rs["spec"]["replicas"] for rs in replicasets_by_name(cluster).values()) == [0, 2]
