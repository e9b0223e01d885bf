"""The Job controller (``pkg/controller/job``) and the apiserver's Job defaults."""

from __future__ import annotations

from itertools import pairwise

import kubernetes_validate
import pytest

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
    assert (j["status"]["succeeded"], j["status"]["failed"], j["status"]["active"]) == (3, 0, 0)
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
