"""Decoding a body (``k8sbook.api.decoding``): the fast walks give the results of the plain ones.

The plain versions are kept here, as the module had them before it was made faster, and
compared with the module's on many generated values: the same answer, the same first error,
the same changes to the value.
"""

import copy
import json
import math
import random

import pytest

from k8sbook.api import decoding, fieldvalidation, objects
from k8sbook.api.decoding import MAX_DEPTH, PARSE_ERROR, BigNumber
from k8sbook.core.status import StatusError, bad_request


def plain_check_value(value, *, numbers=True):
    big = False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise bad_request(PARSE_ERROR + "exceeded max depth")
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise bad_request(PARSE_ERROR + f"json: unsupported type: key {k!r}")
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, BigNumber):
            big = True
            if numbers:
                raise bad_request(PARSE_ERROR + f"json: cannot unmarshal number {item} into "
                                  "Go value of type float64")
        elif isinstance(item, float) and not math.isfinite(item):
            raise bad_request(PARSE_ERROR + f"json: unsupported value: {item}")
        elif item is not None and not isinstance(item, str | int | float | bool):
            raise bad_request(PARSE_ERROR + f"json: unsupported type: {type(item).__name__}")
    return big


def outcome(check, value, numbers):
    try:
        return ("ok", check(value, numbers=numbers))
    except StatusError as err:
        return ("error", err.status["message"])


LEAVES = ["a", 1, 2.5, True, None, BigNumber("123456789012345678901234"), float("nan"),
          float("inf"), (1, 2), {1, 2}, b"x", 0]


def random_value(rng, depth=0):
    roll = rng.random()
    if depth > 6 or roll < 0.35:
        return rng.choice(LEAVES[:5] * 8 + LEAVES)  # mostly good leaves, a few bad ones
    if roll < 0.7:
        out = {}
        for i in range(rng.randint(0, 4)):
            key = rng.choice([f"k{i}", f"k{i}", f"k{i}", i, None])
            out[key] = random_value(rng, depth + 1)
        return out
    return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def nested(depth, leaf):
    value = leaf
    for i in range(depth - 1):
        value = {"a": value, "b": [1, "x"]} if i % 2 else [value, {"c": None}]
    return value


def test_check_value_finds_what_the_stack_walk_finds_first():
    rng = random.Random(7)
    for _ in range(3000):
        value = random_value(rng)
        for numbers in (True, False):
            assert outcome(decoding.check_value, value, numbers) == \
                outcome(plain_check_value, value, numbers)


@pytest.mark.parametrize("depth", [1, 2, 47, 48, 49, 50, 120, MAX_DEPTH - 1, MAX_DEPTH,
                                   MAX_DEPTH + 1, MAX_DEPTH + 40])
@pytest.mark.parametrize("leaf", ["x", float("nan"), BigNumber("99999999999999999999"), (1,)])
def test_check_value_at_every_depth(depth, leaf):
    value = nested(depth, leaf)
    for numbers in (True, False):
        assert outcome(decoding.check_value, value, numbers) == \
            outcome(plain_check_value, value, numbers)


def test_copy_json_is_the_json_round_trip_and_shares_nothing():
    shared = {"x": [1, 2]}
    value = {"a": shared, "b": shared, "c": [shared, 1.5, -0.0, 2**70, True, None, "é"]}
    copied = decoding.copy_json(value)
    assert copied == json.loads(json.dumps(value))
    assert json.dumps(copied) == json.dumps(value)  # same members in the same order
    assert copied["a"] is not copied["b"] and copied["a"] is not shared
    assert type(copied["c"][3]) is int and type(copied["c"][4]) is bool
    # a BigNumber (a str subclass) comes back a plain string, as from the JSON round trip
    odd = decoding.copy_json({"n": BigNumber("1" * 30)})
    assert odd == {"n": "1" * 30} and type(odd["n"]) is str


def plain_walk(value, schema, struct, path):
    """decoding._walk before it was made faster (the module's helpers, which did not change)."""
    types_of = decoding._types  # the helpers that did not change
    name, schema = fieldvalidation.resolve(schema)
    if name and schema.get("properties") is not None:
        struct = name.rsplit(".", 1)[-1]
    if decoding._mismatch(value, schema):
        shown = decoding._json_type(value)
        if shown == "number" and types_of(schema) & {"integer", "number"}:
            shown = f"number {value}"
        where = f"Go struct field {struct}.{path}" if path else "Go value"
        return (f"json: cannot unmarshal {shown} into {where} of type "
                f"{decoding._go_type(schema)}")
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in list(value.items()):
            if item is None and props is not None and key in props:
                del value[key]
                continue
            if item is None and isinstance(extra, dict):
                value[key] = decoding._zero(extra)
                continue
            if props is not None and key in props:
                sub = props[key]
            elif isinstance(extra, dict):
                sub = extra
            else:
                continue
            known = props is not None and key in props
            here = (f"{path}.{key}" if path else key) if known else path
            err = plain_walk(item, sub, struct, here)
            if err:
                return err
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value[:] = [decoding._zero(schema["items"]) if item is None else item
                    for item in value]
        for item in value:
            err = plain_walk(item, schema["items"], struct, path)
            if err:
                return err
    return None


def samples():
    pod = objects.pod("web", labels={"app": "web"})
    pod["spec"]["containers"][0].update({"ports": [{"containerPort": 80}], "env": [
        {"name": "A", "value": "1"}], "resources": {"requests": {"cpu": "100m"}}})
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                     "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                            "image": "x", "imageID": "", "state": {
                                                "running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}
    return [pod, objects.node("n1"), objects.replicaset("rs", replicas=2),
            objects.service("svc", selector={"app": "web"}, ports=[80]),
            objects.configmap("cm", data={"a": "b"}),
            objects.lease("l", "kube-node-lease", "n1", 40, "2026-01-01T00:00:00.000000Z")]


WRONG = [None, 1, -1, 2**40, 2**70, 1.5, 2.0, "s", True, [], [None, 1], {}, {"a": None},
         BigNumber("1" * 25)]


def all_paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from all_paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from all_paths(v, (*path, i))


def put(value, path, new):
    for p in path[:-1]:
        value = value[p]
    value[path[-1]] = new


def test_type_error_gives_the_plain_walks_message_and_changes():
    rng = random.Random(3)
    checked = 0
    for obj in samples():
        schema = fieldvalidation.kind_schema(obj)
        paths = [p for p in all_paths(obj) if p]
        for _ in range(150):
            mine = copy.deepcopy(obj)
            for path in rng.sample(paths, min(len(paths), rng.randint(1, 3))):
                try:
                    put(mine, path, copy.deepcopy(rng.choice(WRONG)))
                except (KeyError, IndexError, TypeError):
                    continue  # a parent replaced by an earlier change
            theirs = copy.deepcopy(mine)
            assert decoding.type_error(mine, obj["apiVersion"], obj["kind"]) == \
                plain_walk(theirs, schema, obj["kind"], "")
            assert json.dumps(mine) == json.dumps(theirs)  # the same nulls dropped or zeroed
            checked += 1
    assert checked == 900


def test_copy_value_is_deepcopys_result():
    big = BigNumber("9" * 30)
    for value in [None, "s", 1, 2.5, True, [], {}, {"a": [1, {"b": None}], "c": "é"},
                  [{"x": big}], {"n": big}, samples()[0]]:
        copied = decoding.copy_value(value)
        assert copied == copy.deepcopy(value)
        assert json.dumps(copied) == json.dumps(value)  # members in the same order
        if isinstance(value, dict | list) and value:
            assert copied is not value
    kept = decoding.copy_value([big])
    assert type(kept[0]) is BigNumber  # what marshal refuses, deepcopy copies
