"""Chapter 15's runs (textbook/scenarios/scale.py): KEP-752 and the zone outage."""

from __future__ import annotations

import pytest

from k8sbook.textbook.scenarios import scale


@pytest.fixture(scope="module")
def outages():
    """The three outages, each at the smallest size that shows it (the chapter runs them with
    four nodes a zone, and a zone of 51 nodes for the secondary rate: its check cell asserts
    those runs)."""
    return {"zone": scale.zone_outage("zone", nodes_per_zone=2, after=370),
            "partial": scale.zone_outage("partial", nodes_per_zone=(4, 1, 1)),
            "cluster": scale.zone_outage("cluster", nodes_per_zone=2, after=120)}


def test_one_zone_dark_is_tainted_at_the_eviction_rate(outages):
    run = outages["zone"]
    assert [n for _, n in run["tainted"]] == ["zone-a-00", "zone-a-01"]
    assert run["seconds_between_taints"] == {"zone-a": [10.0]}  # 0.1 per second
    assert run["zone_states"] == [(110.0, "zone-a", "FullDisruption", 0.1)]
    # each pod is deleted 300 s after its node's taint (the default tolerationSeconds)
    assert [t for t, _ in run["deleted"]] == [t + 300 for t, _ in run["tainted"]]


def test_partially_dark_small_zone_stops_tainting(outages):
    run = outages["partial"]
    assert run["dark"] == 3 and run["tainted"] == [] and run["deleted"] == []
    assert run["zone_states"] == [(110.0, "zone-a", "PartialDisruption", 0.0)]


def test_whole_cluster_dark_is_master_disruption(outages):
    run = outages["cluster"]
    assert run["master_disruption"] and run["tainted"] == [] and run["deleted"] == []
    assert {state for _, _, state, _ in run["zone_states"]} == {"FullDisruption"}
    assert set(run["rate_per_s"].values()) == {0.0}


def test_zone_outage_rejects_unknown_outage():
    with pytest.raises(ValueError):
        scale.zone_outage("moon")


@pytest.fixture(scope="module")
def updates():
    return {b: scale.endpoint_update(20, 5, per_slice=b) for b in (10, 1)}


def test_one_endpoint_change_is_one_event_per_watcher(updates):
    for run in updates.values():
        for what in ("endpoints_object", "endpointslices"):
            assert run[what]["watch_events"] == run["watchers"] == 5
            assert run[what]["writes"] == 1
            assert run[what]["bytes"] == 5 * run[what]["bytes_per_event"]
    ep = updates[10]["endpoints_object"]
    assert (ep["ready_before"], ep["addresses"], ep["not_ready_addresses"]) == (20, 19, 1)
    assert updates[10]["slices"] == 2 and updates[1]["slices"] == 20
    # the Endpoints object is the same whatever the slices
    assert updates[10]["endpoints_object"] == updates[1]["endpoints_object"]
    sizes = [updates[1]["endpointslices"]["bytes_per_event"],
             updates[10]["endpointslices"]["bytes_per_event"], ep["bytes_per_event"]]
    assert sizes == sorted(sizes)


def test_kep752_comparison_rows(updates):
    smaller = scale.endpoint_update(10, 5, per_slice=10)
    # the line through 10 and 20 addresses, read at 20: the 20-address run's own size
    rows = scale.kep752_comparison(updates[10], updates[1], smaller, endpoints=20,
                                   watchers=5)
    assert [r["watch_events"] for r in rows] == [5, 5, 5, 5]
    assert rows[0]["json_bytes"] == updates[10]["endpoints_object"]["bytes_per_event"]
    assert rows[1]["json_bytes"] == smaller["endpoints_object"]["bytes_per_event"]
    assert rows[2]["kep_object_bytes"] == 10e3
    assert rows[3]["total_json_bytes"] == 5 * updates[1]["endpointslices"]["bytes_per_event"]
