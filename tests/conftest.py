"""Fixtures shared by the test packages."""

from __future__ import annotations

import pytest

from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios import networking as net


@pytest.fixture
def esc_cluster():
    """A cluster running the EndpointSlice controller."""
    cluster = Cluster(3)
    ctrl = net.start_endpointslices(cluster)
    cluster.settle(1)
    return cluster, ctrl
