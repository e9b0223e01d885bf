"""The Deployment controller's helpers (``pkg/controller/deployment/util``)."""

from __future__ import annotations

from k8sbook.controlplane.controllers.deployment_util import compute_hash, fenceposts
from tests.controlplane.test_deployment import deployment


def test_fenceposts_round_surge_up_and_unavailable_down():
    assert fenceposts(deployment(4)) == (1, 1)
    assert fenceposts(deployment(10)) == (3, 2)
    d = deployment(3, strategy={"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})
    assert fenceposts(d) == (0, 1)  # both zero: one may be unavailable
    assert all(c in "bcdfghjklmnpqrstvwxz2456789" for c in compute_hash({"a": 1}))
