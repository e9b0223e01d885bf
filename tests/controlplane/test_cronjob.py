"""The CronJob controller (``pkg/controller/cronjob``), on virtual time."""

from __future__ import annotations

from itertools import pairwise

import kubernetes_validate
import pytest

from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from tests.helpers import snapshot


def cronjob(schedule: str = "*/5 * * * *", script: str = "echo tick", **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {"spec": {"template": {
                "spec": {"restartPolicy": "Never", "containers": [
                    {"name": "c", "image": "busybox:1.36",
                     "command": ["sh", "-c", script]}]}}}}}}


def _cluster() -> Cluster:
    c = Cluster(0)
    c.add_kubelet("node-a").start()
    c.add_scheduler().start()
    c.add_controller_manager(controllers=("cronjob", "job", "garbagecollector")).start()
    c.run_for(3)
    return c


def test_the_apiserver_defaults_a_cronjob():
    cj = Cluster(0).admin().create(cronjob())
    spec = cj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 6
    kubernetes_validate.validate(cj, "1.35.0", strict=True)


def test_a_job_every_minute_named_by_its_minute_and_history_kept_to_three():
    c = _cluster()
    adm = c.admin()
    adm.create(cronjob("* * * * *"))
    c.run_for(60 * 4 + 30)  # four and a half minutes of virtual time: four runs
    creates = [m for m in c.trace.filter(verb="CREATE", resource="jobs")]
    assert len(creates) == 4
    times = [c.clock.parse(adm.get("jobs", m.name.split("/")[1], "default")["metadata"][
        "annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"])
        for m in creates[-3:]]
    assert [b - a for a, b in pairwise(times)] == [60, 60]
    jobs = adm.list("jobs", "default")["items"]
    assert len(jobs) == 3  # successfulJobsHistoryLimit
    name = jobs[0]["metadata"]["name"]
    stamp = jobs[0]["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert name == f"tick-{int(c.clock.parse(stamp) + 1767225600) // 60}"
    cj = adm.get("cronjobs", "tick", "default")
    assert cj["status"]["lastScheduleTime"] and cj["status"]["lastSuccessfulTime"]
    assert "active" not in cj["status"]
    kubernetes_validate.validate(cj, "1.35.0", strict=True)
    # the pods of the deleted Jobs went with them (the garbage collector)
    owners = {p["metadata"]["ownerReferences"][0]["name"] for p in adm.list(
        "pods", "default")["items"]}
    assert owners <= {j["metadata"]["name"] for j in jobs}


def test_forbid_skips_a_run_while_one_is_active():
    c = _cluster()
    adm = c.admin()
    adm.create(cronjob("* * * * *", "sleep 150", concurrencyPolicy="Forbid"))
    c.run_for(60 * 5)
    reasons = [e["reason"] for e in adm.list("events", "default")["items"]
               if e["involvedObject"]["kind"] == "CronJob"]
    assert "JobAlreadyActive" in reasons
    assert len(adm.list("jobs", "default")["items"]) < 5


def test_a_schedule_that_is_not_cron_is_invalid_and_stores_nothing():
    c = Cluster(0)
    before = snapshot(c)
    with pytest.raises(StatusError) as err:
        c.admin().create(cronjob("every minute"))
    st = err.value.status
    assert (st["code"], st["reason"]) == (422, "Invalid")
    assert 'spec.schedule: Invalid value: "every minute": expected exactly 5 fields, ' \
        'found 2: [every minute]' in st["message"]
    assert snapshot(c) == before
