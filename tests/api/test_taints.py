from k8sbook.api.taints import (
    find_matching_untolerated_taint,
    matching_tolerations,
    tolerates_taint,
    tolerations_tolerate_taint,
    untolerated_taints,
)

UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
GPU = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


def test_tolerates_taint_follows_toleration_go():
    assert tolerates_taint({"operator": "Exists"}, UNREACHABLE)  # empty key: every key
    assert tolerates_taint({"key": UNREACHABLE["key"], "operator": "Exists",
                            "effect": "NoExecute"}, UNREACHABLE)
    assert not tolerates_taint({"key": "other", "operator": "Exists"}, UNREACHABLE)
    assert not tolerates_taint({"key": UNREACHABLE["key"], "operator": "Exists",
                                "effect": "NoSchedule"}, UNREACHABLE)
    # Equal is the default operator and needs the same value
    assert tolerates_taint({"key": "dedicated", "value": "gpu"}, GPU)
    assert not tolerates_taint({"key": "dedicated", "value": "cpu"}, GPU)
    assert not tolerates_taint({"key": "dedicated", "operator": "Equal"}, GPU)
    # an operator the model does not know (Gt/Lt with the alpha gate off) tolerates nothing
    assert not tolerates_taint({"key": "dedicated", "operator": "Gt", "value": "1"}, GPU)


def test_find_matching_untolerated_taint():
    taints = [GPU, UNREACHABLE]
    assert find_matching_untolerated_taint(taints, []) == GPU
    assert find_matching_untolerated_taint(taints, [{"key": "dedicated", "value": "gpu"}]) == \
        UNREACHABLE
    assert find_matching_untolerated_taint(
        taints, [], lambda t: t["effect"] == "NoExecute") == UNREACHABLE
    assert find_matching_untolerated_taint(taints, [{"operator": "Exists"}]) is None
    assert tolerations_tolerate_taint([{"operator": "Exists", "effect": "NoSchedule"}], GPU)


def test_untolerated_taints_and_matching_tolerations():
    pod = {"spec": {"tolerations": [{"key": UNREACHABLE["key"], "operator": "Exists",
                                     "effect": "NoExecute", "tolerationSeconds": 300}]}}
    node = {"spec": {"taints": [GPU, UNREACHABLE]}}
    assert untolerated_taints(pod, node, ("NoSchedule", "NoExecute")) == [GPU]
    assert untolerated_taints(pod, node, ("NoExecute",)) == []
    assert [t["tolerationSeconds"] for t in matching_tolerations(pod, UNREACHABLE)] == [300]
