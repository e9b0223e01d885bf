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
