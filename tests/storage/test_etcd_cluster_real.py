"""Three real etcd members on loopback: the differential tests against a member of a real
cluster, and chapter 14's failure scenario (the leader dies; then two of three members are
down) on real etcd next to the model's etcd cluster.

The members use short Raft timers (``--heartbeat-interval 10 --election-timeout 100``, as
:class:`~k8sbook.storage.etcd_process.EtcdServer` does) so the tests are quick; the model runs
etcd's defaults (100 ms, 1000 ms) in virtual time. Without an etcd binary these tests are
skipped; with ``CI=true`` they fail instead, as the other real-etcd tests do.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
from collections.abc import Iterator

import pytest

from k8sbook.client.network import Network
from k8sbook.core.clock import Clock
from k8sbook.core.trace import Trace
from k8sbook.storage.etcd_api import UnavailableError
from k8sbook.storage.etcd_client import RealEtcd
from k8sbook.storage.etcd_cluster import PEER_CA, EtcdCluster
from k8sbook.storage.etcd_process import EtcdServers, etcd_binary
from tests.storage.test_etcd_differential import (  # noqa: F401  (fixtures and tests reused)
    fresh_etcd,
    pair,
    test_compaction_errors,
    test_leases_expire_on_the_virtual_clock,
    test_prefix_ranges_and_range_deletes,
    test_put_range_versions_and_revisions,
    test_scenario_trace_is_identical_on_real_etcd,
    test_txn_compare_and_swap,
    test_watch_from_revision_order_and_content,
)


@pytest.fixture(scope="module")
def etcd_server() -> Iterator[EtcdServers]:
    """Three members for this module; the differential tests talk to the first one."""
    if etcd_binary() is None:
        message = "no etcd binary found: the real three-member etcd tests cannot run"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; they are required in CI")
        pytest.skip(message)
    servers = EtcdServers(3).start()
    yield servers
    servers.close()


def _post(port: int, path: str, body: dict[str, object], timeout: float = 1.0) -> \
        dict[str, object] | None:
    """One gateway call; None if no answer came within ``timeout`` (etcd is still waiting
    for a quorum that is not there)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(body))
        out: dict[str, object] = json.loads(conn.getresponse().read())
        return out
    except TimeoutError:
        return None
    finally:
        conn.close()


def _wait_for_leader(servers: EtcdServers, not_: str | None = None) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        leader = servers.leader()
        if leader is not None and leader != not_:
            return leader
        time.sleep(0.02)
    raise AssertionError("no leader elected")


def _model() -> EtcdCluster:
    clock = Clock()
    model = EtcdCluster(Network(clock, Trace()), clock, random.Random(0),
                        ["cp-1", "cp-2", "cp-3"], ["192.168.0.2", "192.168.0.3", "192.168.0.4"])
    model.start()
    model.wait_for_leader()
    return model


def test_the_leader_dies_then_two_members_are_down_as_in_the_model(
        etcd_server: EtcdServers) -> None:
    servers = etcd_server.reset()
    model = _model()
    old = _wait_for_leader(servers)
    model_old = model.leader()
    assert model_old is not None
    term = int(servers.status(old)["raft_term"])

    # the leader dies (SIGKILL: no leadership transfer); the other two elect a new one
    servers.members[old].kill()
    model_old.stop()
    new = _wait_for_leader(servers, not_=old)
    model_new = model.wait_for_leader()
    assert new != old and model_new.name != model_old.name
    assert int(servers.status(new)["raft_term"]) > term and model_new.raft.term > 1
    survivors = [n for n in servers.members if n != old]
    store = RealEtcd(servers.members[survivors[0]].endpoint, Clock())
    try:
        rev = store.put("/after-failover", "v")
        for name in survivors:  # both survivors have it
            got = _post(servers.members[name].client_port, "/v3/kv/range",
                        {"key": "L2FmdGVyLWZhaWxvdmVy", "serializable": True})
            assert got is not None and got["header"]["revision"] == str(rev)  # type: ignore[index]
    finally:
        store.close()

    # a second member down: no quorum. Writes and linearizable reads get no answer, a
    # serializable read is answered from the member's own data
    servers.members[survivors[1]].kill()
    alone = servers.members[survivors[0]]
    assert _post(alone.client_port, "/v3/kv/put", {"key": "L2I=", "value": "dg=="}) is None
    assert _post(alone.client_port, "/v3/kv/range", {"key": "L2FmdGVyLWZhaWxvdmVy"}) is None
    local = _post(alone.client_port, "/v3/kv/range",
                  {"key": "L2FmdGVyLWZhaWxvdmVy", "serializable": True})
    assert local is not None and local.get("kvs")
    model_alone = next(m for m in model.members.values() if m is not model_old)
    next(m for m in model.members.values() if m not in (model_old, model_alone)).stop()
    model.clock.run_for(3)
    for method, args in (("put", ("/b", "v")), ("range", ("/after-failover",))):
        with pytest.raises(UnavailableError):
            model_alone.network.dial("kube-apiserver", model_alone.client_address,
                                     (method, args, {}), protocol="gRPC", verb=method,
                                     client_certificate=PEER_CA)
    assert model_alone.store.range("/b").kvs == []

    # one member back: a quorum again, writes go through
    servers.members[survivors[1]].start()
    _wait_for_leader(servers)
    assert _post(alone.client_port, "/v3/kv/put", {"key": "L2I=", "value": "dg=="},
                 timeout=5.0) is not None
