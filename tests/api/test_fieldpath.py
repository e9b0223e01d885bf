"""structured-merge-diff's field sets over the official schemas (``k8sbook.api.fieldpath``)."""

from k8sbook.api import fieldpath

DEPLOY = fieldpath.kind_schema("apps/v1", "Deployment")


def spec(containers: list, **extra) -> dict:
    return {"spec": {"selector": {"matchLabels": {"app": "w"}},
                     "template": {"spec": {"containers": containers}}, **extra}}


def test_field_sets_follow_the_list_types_of_the_schema():
    obj = spec([{"name": "a", "image": "x", "ports": [{"containerPort": 80, "protocol": "TCP"}]}])
    paths = fieldpath.to_field_set(obj, DEPLOY)
    item = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"a"}')
    assert item in paths and (*item, "f:image") in paths
    assert (*item, "f:ports", 'k:{"containerPort":80,"protocol":"TCP"}') in paths
    # a LabelSelector is x-kubernetes-map-type: atomic: one leaf
    assert ("f:spec", "f:selector") in paths
    assert not any(p[:3] == ("f:spec", "f:selector", "f:matchLabels") for p in paths)


def test_fields_v1_round_trips_with_dot_for_members_with_children():
    paths = {("f:data",), ("f:data", "f:a"), ("f:metadata", "f:labels", "f:app")}
    fields = fieldpath.to_fields_v1(paths)
    assert fields == {"f:data": {".": {}, "f:a": {}},
                      "f:metadata": {"f:labels": {"f:app": {}}}}
    assert fieldpath.from_fields_v1(fields) == paths


def test_compare_and_merge_by_key():
    old = spec([{"name": "a", "image": "x:1"}])
    new = spec([{"name": "a", "image": "x:2"}, {"name": "b", "image": "y"}])
    added, modified, removed = fieldpath.compare(old, new, DEPLOY)
    base = ("f:spec", "f:template", "f:spec", "f:containers")
    assert modified == {(*base, 'k:{"name":"a"}', "f:image")}
    assert (*base, 'k:{"name":"b"}') in added and not removed
    merged = fieldpath.merge(old, spec([{"name": "b", "image": "y"}]), DEPLOY)
    names = [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]]
    assert names == ["a", "b"]
    pruned = fieldpath.remove(merged, (*base, 'k:{"name":"a"}'), DEPLOY)
    assert [c["name"] for c in pruned["spec"]["template"]["spec"]["containers"]] == ["b"]


def test_paths_print_as_upstream():
    path = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"nginx"}', "f:image")
    assert fieldpath.path_string(path) == '.spec.template.spec.containers[name="nginx"].image'
    assert fieldpath.path_string(("f:metadata", "f:finalizers", 'v:"a"')) == \
        '.metadata.finalizers[="a"]'


def test_a_key_field_left_out_takes_its_default():
    live = spec([{"name": "a", "image": "x", "ports": [{"containerPort": 80, "protocol": "TCP"}]}])
    config = spec([{"name": "a", "ports": [{"containerPort": 80}]}])
    merged = fieldpath.merge(live, config, DEPLOY)
    assert merged["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}]


# -- the fast walks give the plain ones' results ---------------------------------------------
# ``plain_compare`` is ``compare`` as it was before it was made faster (three new sets per
# node, merged on the way up, and no separate walk for a create); the module's ``compare``
# must find the same paths on every pair of objects.

def plain_compare(old, new, schema, path=(), *, creating=False):
    added, modified, removed = set(), set(), set()
    if old == new and old is not None:
        return added, modified, removed
    form = fieldpath._form(schema)  # the helpers that did not change
    empty = not old and not new and isinstance(old or new or {}, dict | list)
    if form == "leaf" or empty or (not isinstance(old, dict | list | type(None))
                                   or not isinstance(new, dict | list | type(None))):
        if old is None and new is not None:
            added.add(path)
        elif new is None and old is not None:
            removed.add(path)
        elif old != new:
            modified.add(path)
        return added, modified, removed
    if form == "list":
        element = fieldpath.resolve(schema.get("items"))
        left, right = fieldpath._items(schema, old), fieldpath._items(schema, new)
        children = [(pe, left.get(pe), right.get(pe), element) for pe in {*left, *right}]
    else:
        left = old if isinstance(old, dict) else {}
        right = new if isinstance(new, dict) else {}
        children = [(f"f:{k}", left.get(k), right.get(k), fieldpath._child(schema, k))
                    for k in {*left, *right}]
    for pe, lv, rv, child_schema in children:
        if pe.startswith("v:"):
            if pe not in left:
                added.add((*path, pe))
            elif pe not in right:
                removed.add((*path, pe))
            continue
        a, m, r = plain_compare(lv, rv, child_schema, (*path, pe), creating=creating)
        added |= a
        modified |= m
        removed |= r
    if path and old is None and new is not None and not (creating and form == "struct"):
        added.add(path)
    elif path and new is None and old is not None:
        removed.add(path)
    return added, modified, removed


def _samples():
    import copy

    from k8sbook.api import objects
    pod = objects.pod("web", labels={"app": "web"})
    c = pod["spec"]["containers"][0]
    c.update({"ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
              "env": [{"name": "A", "value": "1"}], "resources": {"requests": {"cpu": "1"}}})
    pod["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    pod["metadata"]["finalizers"] = ["a/b", "c/d"]
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                     "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0}]}
    deploy = spec([{"name": "a", "image": "x", "ports": [{"containerPort": 80}]}],
                  replicas=2, strategy={"rollingUpdate": {"maxSurge": 1}})
    deploy.update({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "d", "labels": {"a": "b"}}})
    return [(pod, fieldpath.kind_schema("v1", "Pod")),
            (objects.node("n1"), fieldpath.kind_schema("v1", "Node")),
            (objects.service("s", selector={"a": "b"}, ports=[80, 443]),
             fieldpath.kind_schema("v1", "Service")),
            (deploy, DEPLOY), (copy.deepcopy(deploy), {})]


CHANGES = [None, {}, [], "", 0, 1, "x", True, {"name": "z"}, [{"name": "a"}], ["a/b"],
           {"k": "v"}, [1, 2], {"containerPort": 80}]


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def test_compare_finds_what_the_plain_walk_finds():
    import copy
    import random
    rng = random.Random(5)
    for obj, schema in _samples():
        paths = [p for p in _paths(obj) if p]
        assert fieldpath.compare({}, obj, schema, creating=True) == \
            plain_compare({}, obj, schema, creating=True)
        for _ in range(120):
            new = copy.deepcopy(obj)
            for path in rng.sample(paths, min(len(paths), rng.randint(1, 4))):
                target = new
                try:
                    for p in path[:-1]:
                        target = target[p]
                    if rng.random() < 0.2 and isinstance(target, dict):
                        target.pop(path[-1], None)
                    else:
                        target[path[-1]] = copy.deepcopy(rng.choice(CHANGES))
                except (KeyError, IndexError, TypeError):
                    continue
            for old, changed in ((obj, new), (new, obj), (None, new), ({}, new), (new, None)):
                for creating in (False, True):
                    assert fieldpath.compare(old, changed, schema, creating=creating) == \
                        plain_compare(old, changed, schema, creating=creating)


def test_fields_v1_conversions_hand_out_fresh_copies():
    paths = {("f:data",), ("f:data", "f:a"), ("f:metadata", "f:labels", "f:app")}
    first = fieldpath.to_fields_v1(paths)
    first["f:data"]["f:b"] = {}  # a caller changing its copy changes no one else's
    assert fieldpath.to_fields_v1(set(paths)) == {"f:data": {".": {}, "f:a": {}},
                                                  "f:metadata": {"f:labels": {"f:app": {}}}}
    assert list(fieldpath.to_fields_v1(paths)) == ["f:data", "f:metadata"]  # member order
    decoded = fieldpath.from_fields_v1(fieldpath.to_fields_v1(paths))
    decoded.add(("f:x",))
    assert fieldpath.from_fields_v1(fieldpath.to_fields_v1(paths)) == paths
