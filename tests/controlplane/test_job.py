"""The Job controller (``pkg/controller/job``) and the apiserver's Job defaults."""

from __future__ import annotations

from itertools import pairwise

import kubernetes_validate
import pytest

from k8sbook.apiserver.kubelet_client import pod_logs
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError


def job(name: str, script: str, restart: str = "Never", **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {"restartPolicy": restart, "containers": [
                {"name": "c", "image": "busybox:1.36", "command": ["sh", "-c", script]}]}}}}


@pytest.fixture
def cluster():
    c = Cluster(0)
    c.add_kubelet("node-a").start()
    c.add_scheduler().start()
    c.add_controller_manager(controllers=("job",)).start()
    c.run_for(3)
    return c


def _conditions(j: dict) -> list[tuple[str, str, str]]:
    return [(c["type"], c["reason"], c["message"]) for c in j["status"].get("conditions", [])]


def test_the_apiserver_defaults_a_job_and_selects_its_uid():
    c = Cluster(0)
    j = c.admin().create(job("pi", "echo 3.14"))
    spec, uid = j["spec"], j["metadata"]["uid"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"],
            spec["completionMode"], spec["suspend"]) == (1, 1, 6, "NonIndexed", False)
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == "pi" and labels["controller-uid"] == uid
    kubernetes_validate.validate(j, "1.35.0", strict=True)


def test_a_job_runs_its_completions_in_parallel_and_completes(cluster):
    adm = cluster.admin()
    adm.create(job("ok", "echo hi; sleep 2", completions=3, parallelism=2))
    cluster.run_for(1)
    assert adm.get("jobs", "ok", "default")["status"]["active"] == 2
    pod = adm.list("pods", "default")["items"][0]
    assert pod["metadata"]["finalizers"] == ["batch.kubernetes.io/job-tracking"]
    assert pod["metadata"]["generateName"] == "ok-"
    cluster.run_for(10)
    j = adm.get("jobs", "ok", "default")
    assert j["status"]["succeeded"] == 3
    assert "failed" not in j["status"] and "active" not in j["status"]  # omitempty
    assert (j["status"]["ready"], j["status"]["terminating"]) == (0, 0)  # pointers: shown
    assert _conditions(j) == [
        ("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
        ("Complete", "CompletionsReached", "Reached expected number of succeeded pods")]
    assert j["status"]["completionTime"] and j["status"]["uncountedTerminatedPods"] == {}
    pods = adm.list("pods", "default")["items"]
    assert len(pods) == 3 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert not any("finalizers" in p["metadata"] for p in pods)  # counted, then released
    kubernetes_validate.validate(j, "1.35.0", strict=True)


def test_a_failing_job_backs_off_and_fails_past_its_backoff_limit(cluster):
    adm = cluster.admin()
    adm.create(job("bad", "echo oops; exit 3", backoffLimit=2))
    cluster.run_for(100)
    j = adm.get("jobs", "bad", "default")
    assert j["status"]["failed"] == 3
    assert _conditions(j) == [
        ("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]
    starts = sorted(p["metadata"]["creationTimestamp"] for p in adm.list("pods", "default")[
        "items"])
    gaps = [cluster.clock.parse(b) - cluster.clock.parse(a) for a, b in pairwise(starts)]
    assert gaps[0] >= 10 and gaps[1] >= 20  # the pod-failure back-off doubles
    term = adm.list("pods", "default")["items"][0]["status"]["containerStatuses"][0]
    assert term["state"]["terminated"]["exitCode"] == 3


def test_a_deadline_fails_the_job_and_deletes_its_pods(cluster):
    adm = cluster.admin()
    adm.create(job("slow", "sleep 600", activeDeadlineSeconds=5))
    cluster.run_for(40)
    j = adm.get("jobs", "slow", "default")
    assert _conditions(j)[-1] == ("Failed", "DeadlineExceeded",
                                  "Job was active longer than specified deadline")
    assert all(p["metadata"].get("deletionTimestamp") or p["status"]["phase"] != "Running"
               for p in adm.list("pods", "default")["items"])


def test_a_job_that_would_restart_forever_is_invalid_and_stores_nothing():
    from tests.helpers import snapshot
    c = Cluster(0)
    before = snapshot(c)
    with pytest.raises(StatusError) as err:
        c.admin().create(job("pi", "echo 3.14", restart="Always"))
    st = err.value.status
    assert (st["code"], st["reason"]) == (422, "Invalid")
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always": supported ' \
        'values: "OnFailure", "Never"' in st["message"]
    assert snapshot(c) == before


def _pods(c: Cluster) -> list[dict]:
    return sorted(c.admin().list("pods", "default")["items"],
                  key=lambda p: p["metadata"]["name"])


def test_an_indexed_job_gives_each_pod_its_index_and_lists_them_compressed(cluster):
    adm = cluster.admin()
    adm.create(job("idx", 'echo "index $JOB_COMPLETION_INDEX"', completions=3, parallelism=3,
                   completionMode="Indexed"))
    cluster.run_for(15)
    pods = _pods(cluster)
    assert [p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            for p in pods] == ["0", "1", "2"]
    for p in pods:
        ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == ix
        assert p["metadata"]["generateName"] == f"idx-{ix}-"
        assert p["spec"]["hostname"] == f"idx-{ix}"
        [env] = [e for e in p["spec"]["containers"][0]["env"]
                 if e["name"] == "JOB_COMPLETION_INDEX"]
        assert env["valueFrom"]["fieldRef"]["fieldPath"] == \
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        # the kubelet resolved the fieldRef: each container printed its own index
        assert f"index {ix}" in pod_logs(adm, "default", p["metadata"]["name"]).splitlines()
    j = adm.get("jobs", "idx", "default")
    assert (j["status"]["completedIndexes"], j["status"]["succeeded"]) == ("0-2", 3)
    assert _conditions(j)[-1][:2] == ("Complete", "CompletionsReached")
    kubernetes_validate.validate(j, "1.35.0", strict=True)
    kubernetes_validate.validate(pods[0], "1.35.0", strict=True)


def test_a_fail_job_rule_on_an_exit_code_fails_the_job_with_upstreams_message(cluster):
    adm = cluster.admin()
    adm.create(job("pfp", "exit 42", backoffLimit=6, podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In",
                                              "values": [42]}}]}))
    cluster.run_for(15)
    j = adm.get("jobs", "pfp", "default")
    [pod] = _pods(cluster)  # no retry: the rule failed the Job at the first failure
    msg = (f"Container c for pod default/{pod['metadata']['name']} failed with exit code 42 "
           "matching FailJob rule at index 0")
    assert _conditions(j) == [("FailureTarget", "PodFailurePolicy", msg),
                              ("Failed", "PodFailurePolicy", msg)]
    assert j["status"]["failed"] == 1
    assert j["spec"]["podReplacementPolicy"] == "Failed"  # the default with a policy
    kubernetes_validate.validate(j, "1.35.0", strict=True)


def test_an_ignore_rule_does_not_count_the_failures_toward_the_backoff_limit(cluster):
    adm = cluster.admin()
    adm.create(job("ign", "exit 3", backoffLimit=0, podFailurePolicy={"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}))
    cluster.run_for(40)
    j = adm.get("jobs", "ign", "default")
    assert len(_pods(cluster)) >= 2  # each ignored failure is replaced
    assert "failed" not in j["status"] and not j["status"].get("conditions")


def _index_pods(c: Cluster, ix: str) -> list[dict]:
    return [p for p in _pods(c)
            if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == ix]


def test_backoff_limit_per_index_and_max_failed_indexes(cluster):
    adm = cluster.admin()
    # each index exits with its own number: index 0 succeeds, index 1 fails
    adm.create(job("per", "exit $JOB_COMPLETION_INDEX", completions=2, parallelism=2,
                   completionMode="Indexed", backoffLimitPerIndex=1))
    cluster.run_for(120)
    j = adm.get("jobs", "per", "default")
    st = j["status"]
    assert (st["completedIndexes"], st["failedIndexes"], st["succeeded"], st["failed"]) == \
        ("0", "1", 1, 2)  # index 1 ran twice (backoffLimitPerIndex 1), then failed
    assert j["spec"]["backoffLimit"] == 2147483647  # the default with a per-index limit
    assert sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"]
                  for p in _index_pods(cluster, "1")) == ["0", "1"]
    assert _conditions(j) == [("FailureTarget", "FailedIndexes", "Job has failed indexes"),
                              ("Failed", "FailedIndexes", "Job has failed indexes")]
    kubernetes_validate.validate(j, "1.35.0", strict=True)
    adm.create(job("max", "exit 1", completions=4, parallelism=4, completionMode="Indexed",
                   backoffLimitPerIndex=0, maxFailedIndexes=1))
    cluster.run_for(60)
    j = adm.get("jobs", "max", "default")
    message = "Job has exceeded the specified maximal number of failed indexes"
    assert _conditions(j)[-1] == ("Failed", "MaxFailedIndexesExceeded", message)


def test_fail_index_fails_only_that_index(cluster):
    adm = cluster.admin()
    adm.create(job("fi", "exit $JOB_COMPLETION_INDEX", completions=3, parallelism=3,
                   completionMode="Indexed", backoffLimitPerIndex=2, podFailurePolicy={
                       "rules": [{"action": "FailIndex", "onExitCodes": {
                           "operator": "In", "values": [1]}}]}))
    cluster.run_for(400)
    st = adm.get("jobs", "fi", "default")["status"]
    assert (st["completedIndexes"], st["failedIndexes"]) == ("0", "1-2")
    assert len(_index_pods(cluster, "1")) == 1  # FailIndex: no retry
    assert len(_index_pods(cluster, "2")) == 3  # a counted failure: backoffLimitPerIndex 2


def test_a_success_policy_ends_the_job_early(cluster):
    adm = cluster.admin()
    # index 0 finishes at once, the others would run for minutes
    adm.create(job("sp", "sleep ${JOB_COMPLETION_INDEX}00", completions=3, parallelism=3,
                   completionMode="Indexed", successPolicy={"rules": [
                       {"succeededIndexes": "0"}]}))
    cluster.run_for(60)
    j = adm.get("jobs", "sp", "default")
    assert _conditions(j) == [("SuccessCriteriaMet", "SuccessPolicy", "Matched rules at index 0"),
                              ("Complete", "SuccessPolicy", "Matched rules at index 0")]
    assert "active" not in j["status"] and j["status"]["completionTime"]
    deleted = [e["message"] for e in adm.list("events", "default")["items"]
               if e["reason"] == "SuccessfulDelete"]
    assert sorted(m.rsplit("-", 2)[0] for m in deleted) == ["Deleted pod: sp", "Deleted pod: sp"]
    kubernetes_validate.validate(j, "1.35.0", strict=True)
