"""events.k8s.io/v1 served from the core Events' storage (``pkg/apis/events/v1/conversion.go``)."""

import pytest

from k8sbook.api import eventsv1
from k8sbook.api.request import Request
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError

NEW = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
       "metadata": {"name": "e1", "namespace": "default"},
       "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "example.com/ctl",
       "reportingInstance": "ctl-1", "action": "Checked", "reason": "Fine", "type": "Normal",
       "note": "all good", "regarding": {"kind": "Pod", "name": "web", "namespace": "default"}}


def test_one_storage_two_shapes():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    made = admin.request(Request("create", "events", "events.k8s.io", "default", body=NEW))
    assert made["apiVersion"] == "events.k8s.io/v1" and made["note"] == "all good"
    core = admin.get("events", "e1", "default")
    assert (core["apiVersion"], core["message"], core["reportingComponent"]) == (
        "v1", "all good", "example.com/ctl")
    assert core["involvedObject"] == NEW["regarding"]
    listed = admin.request(Request("list", "events", "events.k8s.io", "default"))
    assert listed["kind"] == "EventList" and listed["apiVersion"] == "events.k8s.io/v1"
    assert [i["regarding"]["name"] for i in listed["items"]] == ["web"]
    assert cluster.etcd.get("/registry/events/default/e1") is not None
    with pytest.raises(StatusError) as err:
        admin.request(Request("get", "events", "events.k8s.io", "default", "nope"))
    assert err.value.status["message"] == 'events.events.k8s.io "nope" not found'


def test_conversion_round_trips():
    assert eventsv1.from_core(eventsv1.to_core(NEW)) == NEW


def test_new_events_are_validated_strictly():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    bad = {**NEW, "type": "Odd", "deprecatedCount": 3}
    del bad["eventTime"]
    with pytest.raises(StatusError) as err:
        admin.request(Request("create", "events", "events.k8s.io", "default", body=bad))
    assert err.value.status["message"] == (
        'Event.events.k8s.io "e1" is invalid: [eventTime: Required value, type: Invalid value: '
        '"": has invalid value: Odd, count: Invalid value: "": needs to be unset]')
    assert cluster.etcd.get("/registry/events/default/e1") is None
