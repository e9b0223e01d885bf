"""What the Job controller decides from a spec and its pods (``indexed_job_utils.go``,
``pod_failure_policy.go``, ``success_policy.go``)."""

from __future__ import annotations

from k8sbook.controlplane.controllers import job_policies as jp


def test_compressed_interval_lists_as_upstream():
    iv = jp.with_indexes([], [7, 1, 3, 4, 5])
    assert jp.to_string(iv) == "1,3-5,7" and jp.total(iv) == 5
    assert jp.parse_indexes("1,3-5,7", 6) == [(1, 1), (3, 5)]  # 7 is past completions
    assert jp.first_pending_indexes([(0, 1)], [(3, 3)], [2], 2, 6) == [4, 5]


def test_pod_failure_policy_rules_match_in_order():
    j = {"spec": {"podFailurePolicy": {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget",
                                                  "status": "True"}]},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [0, 42]}},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}}}

    def pod(code: int, disrupted: bool = False) -> dict:
        conds = [{"type": "DisruptionTarget", "status": "True"}] if disrupted else []
        return {"metadata": {"namespace": "ns", "name": "p"}, "status": {
            "phase": "Failed", "conditions": conds, "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": code}}}]}}
    assert jp.match_pod_failure_policy(j, pod(137, disrupted=True)) == (None, False, "Ignore")
    assert jp.match_pod_failure_policy(j, pod(1)) == (None, True, "Count")
    assert jp.match_pod_failure_policy(j, pod(42)) == (
        "Container c for pod ns/p failed with exit code 42 matching FailJob rule at index 2",
        True, "FailJob")
    j["spec"]["podFailurePolicy"]["rules"][0]["action"] = "FailJob"
    assert jp.match_pod_failure_policy(j, pod(1, disrupted=True))[0] == \
        "Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0"


def test_success_policy_rules_by_indexes_and_by_count():
    job = {"spec": {"completions": 10, "successPolicy": {"rules": [
        {"succeededIndexes": "0-2,5", "succeededCount": 3}, {"succeededCount": 6}]}}}
    assert jp.match_success_policy(job, [(0, 1)]) is None  # 2 of the rule's 4, count 3
    assert jp.match_success_policy(job, [(0, 1), (5, 5)]) == "Matched rules at index 0"
    assert jp.match_success_policy(job, [(6, 9), (3, 4)]) == "Matched rules at index 1"
    assert jp.match_success_policy({"spec": {"completions": 3}}, [(0, 2)]) is None
