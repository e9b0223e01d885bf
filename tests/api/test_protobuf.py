"""The protobuf wire format of the built-in kinds (:mod:`k8sbook.api.protobuf`): every kind the
model serves has a message; objects the model's components write survive a round trip, losing
only what Go's JSON encoder would drop (``omitempty`` zero values); the envelope's bytes are
those ``generated.proto`` defines."""

from __future__ import annotations

from typing import Any

import pytest

from k8sbook.api import objects, protobuf
from k8sbook.api.resources import RESOURCES
from k8sbook.cluster import Cluster


def test_every_served_kind_has_a_message() -> None:
    for rt in RESOURCES:
        assert protobuf.supports(rt.api_version, rt.kind), rt.kind
        if "list" in rt.verbs:  # the reviews are create-only: no list message either
            assert protobuf.supports(rt.api_version, f"{rt.kind}List"), rt.kind
    assert protobuf.supports("v1", "Status") and protobuf.supports("v1", "DeleteOptions")
    assert not protobuf.supports("meta.k8s.io/v1", "Table")
    assert not protobuf.supports("metrics.k8s.io/v1beta1", "PodMetrics")


def test_the_envelope_bytes() -> None:
    # Namespace.metadata = 1, ObjectMeta.name = 1; Unknown: typeMeta = 1 (apiVersion = 1,
    # kind = 2), raw = 2, contentEncoding = 3, contentType = 4
    raw = b"\x0a\x03\x0a\x01a"
    type_meta = b"\x0a\x02v1\x12\x09Namespace"
    expected = (b"k8s\x00" + b"\x0a" + bytes([len(type_meta)]) + type_meta
                + b"\x12" + bytes([len(raw)]) + raw + b"\x1a\x00\x22\x00")
    assert protobuf.encode({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": "a"}}) == expected
    assert protobuf.decode(expected) == {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "a"}}


def test_special_types_convert_as_go_does() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "w", "creationTimestamp": "2026-01-01T00:00:05Z"},
           "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}},
                    "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                    "template": {"spec": {"containers": [{
                        "name": "c", "image": "i", "resources": {"limits": {"cpu": "500m"}}}],
                        "volumes": [{"name": "v", "emptyDir": {}}]}}}}
    back = protobuf.decode(protobuf.encode(obj))
    assert back["spec"]["replicas"] == 0  # a pointer: present on the wire, kept
    assert back["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 1}
    assert back["spec"]["template"]["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]
    assert back["metadata"]["creationTimestamp"] == "2026-01-01T00:00:05Z"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"k": "aGVsbG8="}, "type": "Opaque"}
    assert protobuf.decode(protobuf.encode(secret)) == secret
    assert protobuf.format_duration(3723 * 10**9) == "1h2m3s"
    assert protobuf.format_duration(1500 * 10**6) == "1.5s"
    assert protobuf.parse_duration("1m30s") == 90 * 10**9
    with pytest.raises(protobuf.ProtobufError):
        protobuf.parse_duration("ten seconds")


def _only_go_omissions(orig: Any, back: Any, path: str = "") -> list[str]:
    """Differences other than a zero value that decoding left out."""
    if isinstance(orig, dict) and isinstance(back, dict):
        out = [f"{path}.{k}: added" for k in back if k not in orig]
        for k, v in orig.items():
            if k not in back:
                if v not in ("", 0, False, None, [], {}):
                    out.append(f"{path}.{k}: lost {v!r}")
            else:
                out += _only_go_omissions(v, back[k], f"{path}.{k}")
        return out
    if isinstance(orig, list) and isinstance(back, list) and len(orig) == len(back):
        return [d for i, (a, b) in enumerate(zip(orig, back, strict=True))
                for d in _only_go_omissions(a, b, f"{path}[{i}]")]
    return [] if orig == back else [f"{path}: {orig!r} != {back!r}"]


def test_objects_the_model_writes_round_trip() -> None:
    cluster = Cluster(0)
    cluster.add_kubelet("node-a").start()
    cluster.add_scheduler().start()
    cluster.add_controller_manager().start()
    admin = cluster.admin()
    admin.create(objects.replicaset("web", replicas=2))
    admin.create(objects.service("web", selector={"app": "web"}))
    admin.create(objects.configmap("cfg", data={"a": "b"}))
    admin.create(objects.pdb("web", selector={"app": "web"}, min_available=1))
    cluster.settle(30)
    seen: set[str] = set()
    for rt in RESOURCES:
        items, _ = cluster.apiserver.storage.list(rt.prefix())
        for obj in items:
            obj = {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
            back = protobuf.decode(protobuf.encode(obj))
            assert _only_go_omissions(obj, back) == [], (rt.kind, obj["metadata"]["name"])
            assert protobuf.decode(protobuf.encode(back)) == back
            seen.add(rt.kind)
    assert {"Pod", "Node", "ReplicaSet", "Service", "ConfigMap", "Lease", "Namespace",
            "PodDisruptionBudget", "ClusterRole", "Event"} <= seen


def test_watch_frames_and_bad_input() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", **objects.pod("p")}
    frames = protobuf.watch_frame({"type": "ADDED", "object": pod}) + protobuf.watch_frame(
        {"type": "DELETED", "object": pod})
    assert int.from_bytes(frames[:4], "big") > 0
    events = protobuf.read_watch_frames(frames)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]
    assert events[0]["object"]["metadata"]["name"] == "p"
    with pytest.raises(protobuf.ProtobufError, match="expected prefix"):
        protobuf.decode(b'{"kind": "Pod"}')
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(b"k8s\x00\x01")
    unknown_kind = protobuf.encode({"apiVersion": "v1", "kind": "Namespace"}).replace(
        b"Namespace", b"Namespaze")
    with pytest.raises(protobuf.ProtobufError, match='no kind "Namespaze" is registered for '
                       'version "v1" in scheme') as err:
        protobuf.decode(unknown_kind)
    assert (err.value.kind, err.value.version) == ("Namespaze", "v1")


#: kinds kubectl creates or the cluster's controllers write, whether or not the model serves
#: them yet: each must come back as it went (every field here is one Go keeps)
SAMPLES: list[dict[str, Any]] = [
    {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
     "spec": {"backoffLimit": 6, "completions": 1, "template": {"spec": {
         "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox",
                                                   "command": ["sh", "-c", "exit 3"]}]}}},
     "status": {"failed": 1, "startTime": "2026-01-01T00:00:01Z"}},
    {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
     "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
         "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}},
    {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"},
     "spec": {"selector": {"matchLabels": {"a": "b"}}, "updateStrategy": {
         "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
         "template": {"metadata": {"labels": {"a": "b"}},
                      "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
    {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
     "spec": {"serviceName": "s", "replicas": 2, "selector": {"matchLabels": {"a": "b"}},
              "template": {"metadata": {"labels": {"a": "b"}},
                           "spec": {"containers": [{"name": "c", "image": "i"}]}},
              "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                  "accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "1Gi"}}}}]}},
    {"apiVersion": "events.k8s.io/v1", "kind": "Event",
     "metadata": {"name": "e", "namespace": "default"},
     "eventTime": "2026-01-01T00:00:01.250000Z", "reportingController": "kubelet",
     "reportingInstance": "kubelet-node-a", "action": "Started", "reason": "Started",
     "regarding": {"kind": "Pod", "name": "p"}, "type": "Normal"},
    {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"},
     "spec": {"replicas": 5}, "status": {"replicas": 3, "selector": "app=web"}},
    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
     "metadata": {"name": "sa"}, "spec": {"audiences": ["https://kubernetes.default.svc"],
                                          "expirationSeconds": 3600},
     "status": {"token": "t", "expirationTimestamp": "2026-01-01T01:00:00Z"}},
    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
     "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
     "status": {"userInfo": {"username": "bob", "groups": ["system:authenticated"],
                             "extra": {"scopes": ["a", "b"]}}}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug"},  # two inlined structs
     "spec": {"containers": [{"name": "c", "image": "i"}],
              "ephemeralContainers": [{"name": "dbg", "image": "busybox",
                                       "targetContainerName": "c"}],
              "volumes": [{"name": "cfg", "configMap": {"name": "cm"}}]}},
    {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
     "message": 'pods "x" not found', "reason": "NotFound",
     "details": {"name": "x", "kind": "pods"}, "code": 404},
    {"apiVersion": "v1", "kind": "ConfigMap",
     "metadata": {"name": "m", "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                                   "fieldsType": "FieldsV1",
                                                   "fieldsV1": {"f:data": {"f:a": {}}}}]},
     "data": {"a": "1"}},
]


@pytest.mark.parametrize("obj", SAMPLES, ids=[o["kind"] for o in SAMPLES])
def test_kinds_round_trip(obj: dict[str, Any]) -> None:
    assert protobuf.decode(protobuf.encode(obj)) == obj
