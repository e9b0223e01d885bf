"""Bad input through :meth:`APIServer.handle` (the model's own clients): a table of requests,
the code and reason upstream answers, and the store unchanged by every refusal; then a seeded
fuzz of valid objects, mutated, that must never crash the server nor store what the official
Python client cannot read.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from kubernetes.client import ApiClient

from k8sbook.api.decoding import parse_json
from k8sbook.api.request import Request
from k8sbook.apiserver.authentication import LOOPBACK_USER
from k8sbook.cluster import Cluster
from tests.helpers import snapshot

JSON_PATCH, MERGE = "application/json-patch+json", "application/merge-patch+json"


def cm(name: str = "cfg", **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"a": "1"}, **extra}


def pod(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def create(plural: str, body: Any, group: str = "") -> Request:
    return Request("create", plural, group, "default", body=body, user=LOOPBACK_USER)


def patch(name: str, body: Any, ctype: str = MERGE, plural: str = "configmaps") -> Request:
    return Request("patch", plural, namespace="default", name=name, body=body,
                   content_type=ctype, user=LOOPBACK_USER)


def lst(**params: Any) -> Request:
    return Request("list", "configmaps", namespace="default", params=params, user=LOOPBACK_USER)


#: (case, request, code, reason, a text the message contains)
CASES: list[tuple[str, Request, int, str, str]] = [
    ("deep nesting", create("configmaps", cm(extra=nested(5000))), 400, "BadRequest",
     "exceeded max depth"),
    ("5000-digit integer", create("deployments", None), 0, "", ""),  # replaced below
    ("name as a number", create("configmaps", {**cm(), "metadata": {"name": 7}}), 400,
     "BadRequest", ('ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot '
     "unmarshal number into Go struct field ObjectMeta.metadata.name of type string")),
    ("labels as a list", create("configmaps", {**cm(), "metadata": {"name": "x",
                                                                    "labels": ["a"]}}),
     400, "BadRequest", ("cannot unmarshal array into Go struct field ObjectMeta.metadata.labels "
     "of type map[string]string")),
    ("containers as a string", create("pods", {**pod(), "spec": {"containers": "nginx"}}), 400,
     "BadRequest", ("cannot unmarshal string into Go struct field PodSpec.spec.containers of "
     "type []v1.Container")),
    ("annotation value a number", create("configmaps", {**cm(), "metadata": {
        "name": "x", "annotations": {"a": 1}}}), 400, "BadRequest",
     "Go struct field ObjectMeta.metadata.annotations of type string"),
    ("data as a list", create("configmaps", {**cm(), "data": ["a"]}), 400, "BadRequest",
     "ConfigMap.data of type map[string]string"),
    ("data with an integer", create("configmaps", {**cm(), "data": {"a": 1}}), 400,
     "BadRequest", "ConfigMap.data of type string"),
    ("NaN from a Python client", create("configmaps", {**cm(), "x": float("nan")}), 400,
     "BadRequest", "unsupported value: nan"),
    ("ConfigMap over 1 MiB", create("configmaps", {**cm(), "data": {"a": "x" * (1 << 20),
                                                                    "b": "y"}}),
     422, "Invalid", ('ConfigMap "cfg" is invalid: []: Too long: may not be more than 1048576 '
     "bytes")),
    ("300 KiB of annotations", create("configmaps", {**cm(), "metadata": {
        "name": "x", "annotations": {"a": "x" * 300 * 1024}}}), 422, "Invalid",
     "metadata.annotations: Too long: may not be more than 262144 bytes"),
    ("bad data key", create("configmaps", {**cm(), "data": {"a b": "1"}}), 422, "Invalid",
     "data[a b]: Invalid value: \"a b\": a valid config key must consist of"),
    ("merge patch: labels as a list", patch("base", {"metadata": {"labels": ["a"]}}), 422,
     "Invalid", "patch: Invalid value"),
    ("JSON patch: integer into data", patch("base", [{"op": "add", "path": "/data/n",
                                                      "value": 3}], JSON_PATCH),
     422, "Invalid", ("cannot unmarshal number into Go struct field ConfigMap.data of type "
     "string")),
    ("JSON patch: another name", patch("base", [{"op": "replace", "path": "/metadata/name",
                                                 "value": "other"}], JSON_PATCH),
     400, "BadRequest", ("the name of the object (other) does not match the name on the URL "
     "(base)")),
    ("JSON patch: another namespace", patch("base", [{"op": "replace",
                                                      "path": "/metadata/namespace",
                                                      "value": "kube-system"}], JSON_PATCH),
     400, "BadRequest", ("the namespace of the object (kube-system) does not match the "
     "namespace on the request (default)")),
    ("JSON patch: another uid", patch("base", [{"op": "replace", "path": "/metadata/uid",
                                                "value": "abc"}], JSON_PATCH),
     422, "Invalid", 'metadata.uid: Invalid value: "abc": field is immutable'),
    ("labelSelector with a bad value", lst(labelSelector="app=-x"), 400, "BadRequest",
     'unable to parse requirement: values[0][app]: Invalid value: "-x": a valid label must'),
    ("labelSelector with a bad key", lst(labelSelector="a/b/c=x"), 400, "BadRequest",
     'unable to parse requirement: key: Invalid value: "a/b/c"'),
]
CASES[1] = ("5000-digit integer", create("deployments", None, "apps"), 400, "BadRequest",
            "Go struct field DeploymentSpec.spec.replicas of type int32")


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    c = Cluster(seed=3)
    c.admin().create(cm("base"))
    return c


def _deployment_with_huge_replicas() -> Any:
    """What a client library decoding ``"replicas": 999...9`` (5000 digits) would hand over:
    the model keeps such a literal as :class:`~k8sbook.api.decoding.BigNumber`."""
    text = ('{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},'
            '"spec":{"replicas":' + "9" * 5000 + "}}")
    return parse_json(text.encode())


@pytest.mark.parametrize(("case", "req", "code", "reason", "text"), CASES,
                         ids=[c[0] for c in CASES])
def test_refused(cluster: Cluster, case: str, req: Request, code: int, reason: str,
                 text: str) -> None:
    if case == "5000-digit integer":
        req.body = _deployment_with_huge_replicas()
    before = snapshot(cluster)
    resp = cluster.apiserver.handle(copy.deepcopy(req) if case != "deep nesting" else req)
    assert (resp.code, resp.body.get("reason")) == (code, reason), resp.body
    assert text in resp.body["message"], resp.body["message"]
    assert resp.body["kind"] == "Status" and resp.body["status"] == "Failure"
    assert snapshot(cluster) == before, "a refused request changed the store"


def test_apiversion_and_kind_default_from_the_url(cluster: Cluster) -> None:
    resp = cluster.apiserver.handle(create("configmaps", {"metadata": {"name": "bare"},
                                                          "data": {"k": "v"}}))
    assert resp.code == 201
    assert (resp.body["apiVersion"], resp.body["kind"]) == ("v1", "ConfigMap")


def test_patch_without_uid_keeps_it(cluster: Cluster) -> None:
    uid = cluster.admin().get("configmaps", "base", "default")["metadata"]["uid"]
    resp = cluster.apiserver.handle(patch("base", [{"op": "remove", "path": "/metadata/uid"}],
                                          JSON_PATCH))
    assert resp.code == 200 and resp.body["metadata"]["uid"] == uid


# -- the seeded fuzz ---------------------------------------------------------------------------
def _values(rng: random.Random) -> Any:
    return rng.choice([7, -1, 2**40, 10**30, 1.5, True, None, "", "x" * rng.randint(1, 70),
                       "ünï", [], ["a"], {}, {"k": 1}, {"k": "v"}, nested(rng.randint(2, 300)),
                       float("inf")])


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(rng: random.Random, obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(obj)[1:])
        parent: Any = obj
        for p in path[:-1]:
            parent = parent[p]
        if path[:1] in (("apiVersion",), ("kind",)) and rng.random() < 0.8:
            continue
        if rng.random() < 0.2 and isinstance(parent, dict):
            parent[f"extra{rng.randint(0, 9)}"] = _values(rng)
        else:
            parent[path[-1]] = _values(rng)
    return obj


SEEDS = [
    (pod("f"), "pods", ""),
    (cm("f"), "configmaps", ""),
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "f"},
      "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "f"}},
               "template": {"metadata": {"labels": {"app": "f"}},
                            "spec": {"containers": [{"name": "c", "image": "nginx",
                                                     "ports": [{"containerPort": 80}]}]}}}},
     "deployments", "apps"),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "f"},
      "spec": {"selector": {"app": "f"}, "ports": [{"port": 80, "targetPort": 8080}]}},
     "services", ""),
]


def test_fuzz_never_crashes_and_stores_only_readable_objects() -> None:
    rng = random.Random(15)
    cluster = Cluster(seed=15)
    api, handle = ApiClient(), cluster.apiserver.handle
    codes: dict[int, int] = {}
    for i in range(300):
        base, plural, group = SEEDS[i % len(SEEDS)]
        body = _mutate(rng, base)
        if isinstance(body.get("metadata"), dict):
            body["metadata"]["name"] = f"f{i}"
        if i % 3 == 0:  # a patch of an existing object instead
            name = f"p{i}"
            handle(Request("create", plural, group, "default", body={
                **copy.deepcopy(base), "metadata": {"name": name}}, user=LOOPBACK_USER))
            ops = [{"op": "add", "path": "/" + "/".join(map(str, p)), "value": _values(rng)}
                   for p in rng.sample(_paths(base)[1:], 2)]
            req = Request("patch", plural, group, "default", name, body=ops,
                          content_type=JSON_PATCH, user=LOOPBACK_USER)
        else:
            req = Request("create", plural, group, "default", body=body, user=LOOPBACK_USER)
        before = snapshot(cluster)
        resp = handle(req)
        codes[resp.code] = codes.get(resp.code, 0) + 1
        assert resp.code < 500, (req, resp.body)
        if not resp.ok:
            assert snapshot(cluster) == before, (req, resp.body)
    assert codes.get(400, 0) and codes.get(201, 0), codes
    for plural, group, model in (("pods", "", "V1PodList"), ("configmaps", "", "V1ConfigMapList"),
                                 ("deployments", "apps", "V1DeploymentList"),
                                 ("services", "", "V1ServiceList")):
        body = handle(Request("list", plural, group, "default", user=LOOPBACK_USER)).body
        text = json.dumps(body, allow_nan=False)  # listings stay valid JSON
        items = api.deserialize(text, model, "application/json").items
        assert len(items) == len(body["items"])
