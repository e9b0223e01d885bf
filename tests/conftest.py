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


@pytest.fixture(autouse=True)
def _cache_mutation_detector():
    """With ``KUBE_CACHE_MUTATION_DETECTOR=true`` (as client-go reads it), every test fails
    if a component changed an object the watch cache sent it (they are shared)."""
    import os

    from k8sbook.storage import cacher
    if os.environ.get("KUBE_CACHE_MUTATION_DETECTOR", "") != "true":
        yield
        return
    cacher.detect_mutations()
    yield
    try:
        cacher.check_mutations()
    finally:
        cacher.detect_mutations()
