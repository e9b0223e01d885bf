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
    from k8sbook.core import mutation_detector
    if not mutation_detector.enabled_by_environment():
        yield
        return
    mutation_detector.detect()
    yield
    try:
        mutation_detector.check()
    finally:
        mutation_detector.detect()
