"""The CronJob controller: a Job at each scheduled time, on the model's virtual clock.

Mirrors ``pkg/controller/cronjob`` (``cronjob_controllerv2.go``'s ``syncCronJob``,
``utils.go``'s ``mostRecentScheduleTime`` and ``getJobName``). The schedule is parsed by
`croniter <https://github.com/pallets-eco/croniter>`_ (standard five fields and the
``@hourly``-style macros, as ``robfig/cron``'s ``ParseStandard``; ``spec.timeZone`` through
``zoneinfo``). Handlers on the shared CronJob and Job informers queue the CronJob's key; a
sync

* takes finished Jobs out of ``status.active`` (``lastSuccessfulTime`` from a completed one),
* finds the most recent scheduled time not yet run (since ``lastScheduleTime``, or the
  creation; no earlier than ``startingDeadlineSeconds`` ago: a later start is a
  ``MissSchedule`` Warning),
* applies ``concurrencyPolicy``: ``Allow`` runs them side by side, ``Forbid`` skips the run
  while one is active (``JobAlreadyActive``), ``Replace`` deletes the active ones first,
* creates the Job ``<cronjob>-<scheduled time in minutes since the epoch>`` from
  ``jobTemplate`` (annotation ``batch.kubernetes.io/cronjob-scheduled-timestamp``, owned by
  the CronJob), records it in ``status.active`` and ``lastScheduleTime``,
* deletes the oldest finished Jobs beyond ``successfulJobsHistoryLimit`` (3) and
  ``failedJobsHistoryLimit`` (1), in the background so the garbage collector takes their pods,
* and requeues itself for the next scheduled time (``AddAfter``): nothing polls.

The clock is virtual: "now" is :class:`k8sbook.core.clock.Clock` time, so a chapter can run a
day of schedules in a second. Simplified: no ``TooManyMissedTimes`` cut-off at 100 misses
(only the latest missed time is run, as upstream does).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter  # type: ignore[import-untyped]

from k8sbook.client.informer import SharedIndexInformer, final_state
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj, QueueController, controller_of, controller_ref
from k8sbook.controlplane.controllers.job import job_finished
from k8sbook.core.status import StatusError

NAME = "cronjob-controller"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"


class CronJobController(QueueController):
    def __init__(self, client: Client, cj_informer: SharedIndexInformer,
                 job_informer: SharedIndexInformer) -> None:
        super().__init__(client, "cronjob", NAME)
        self.cj_informer, self.job_informer = cj_informer, job_informer
        cj_informer.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new))
        job_informer.add_event_handler(self._job_changed, lambda old, new: self._job_changed(new),
                                       lambda j: self._job_changed(final_state(j)))

    def _job_changed(self, job: Obj) -> None:
        self.enqueue_owner(job, "CronJob")

    # -- time --------------------------------------------------------------------------
    def _datetime(self, t: float, tz: str | None) -> datetime:
        dt = datetime.fromisoformat(self.clock.timestamp(t))
        return dt.astimezone(ZoneInfo(tz)) if tz else dt

    def _seconds(self, dt: datetime) -> float:
        return self.clock.parse(dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def schedule_times(self, cj: Obj, now: float) -> tuple[float | None, float]:
        """``mostRecentScheduleTime``: (the latest missed time, or None; the next one)."""
        spec, status = cj["spec"], cj.get("status") or {}
        last = status.get("lastScheduleTime") or cj["metadata"]["creationTimestamp"]
        earliest = self.clock.parse(last)
        if spec.get("startingDeadlineSeconds") is not None:
            earliest = max(earliest, now - spec["startingDeadlineSeconds"])
        it = croniter(spec["schedule"], self._datetime(earliest, spec.get("timeZone")))
        recent = None
        while True:
            t = self._seconds(it.get_next(datetime))
            if t > now:
                return recent, t
            recent = t

    # -- the sync ----------------------------------------------------------------------
    def owned_jobs(self, cj: Obj) -> list[Obj]:
        uid = cj["metadata"]["uid"]
        return sorted((j for j in self.job_informer.indexer.by_index(
            "namespace", cj["metadata"]["namespace"])
            if (controller_of(j) or {}).get("uid") == uid),
            key=lambda j: (j["metadata"].get("creationTimestamp", ""), j["metadata"]["name"]))

    def sync(self, key: Any) -> None:
        """``syncCronJob``."""
        cached = self.cj_informer.get(key)
        if cached is None or cached["metadata"].get("deletionTimestamp"):
            return
        cj = copy.deepcopy(cached)
        status = cj.setdefault("status", {})
        jobs = self.owned_jobs(cj)
        running = {j["metadata"]["uid"] for j in jobs if not job_finished(j)}
        for j in jobs:
            if job_finished(j) and any(a.get("uid") == j["metadata"]["uid"]
                                       for a in status.get("active", [])):
                complete = any(c["type"] == "Complete" and c["status"] == "True"
                               for c in j["status"].get("conditions", []))
                self.recorder.event(cj, "Normal", "SawCompletedJob", f"Saw completed job: "
                                    f"{j['metadata']['name']}, condition: "
                                    f"{'Complete' if complete else 'Failed'}")
                if complete and j["status"].get("completionTime"):
                    status["lastSuccessfulTime"] = j["status"]["completionTime"]
        status["active"] = [a for a in status.get("active", []) if a.get("uid") in running]
        self._cleanup(cj, jobs)
        now = self.clock.now()
        if cj["spec"].get("suspend"):
            self._write(cj, cached)
            return
        try:
            scheduled, upcoming = self.schedule_times(cj, now)
        except (ValueError, KeyError) as err:
            self.recorder.event(cj, "Warning", "UnparseableSchedule",
                                f"unparseable schedule: {cj['spec']['schedule']!r} : {err}")
            self._write(cj, cached)
            return
        self.queue.add_after(key, upcoming - now + 0.1)
        if scheduled is not None:
            self._start(cj, scheduled, now)
        self._write(cj, cached)

    def _start(self, cj: Obj, scheduled: float, now: float) -> None:
        spec, status = cj["spec"], cj["status"]
        deadline = spec.get("startingDeadlineSeconds")
        stamp = self.clock.timestamp(scheduled)
        if deadline is not None and scheduled + deadline < now:
            self.recorder.event(cj, "Warning", "MissSchedule",
                                f"Missed scheduled time to start a job: {stamp}")
            return
        name = f"{cj['metadata']['name']}-{int(self._seconds_since_epoch(scheduled)) // 60}"
        if any(a.get("name") == name for a in status.get("active", [])):
            return
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and status.get("active"):
            self.recorder.event(cj, "Normal", "JobAlreadyActive", "Not starting job because "
                                "prior execution is running and concurrency policy is Forbid")
            return
        if policy == "Replace":
            for ref in status.get("active", []):
                self._delete_job(cj, ref["name"])
            status["active"] = []
        template = copy.deepcopy(spec["jobTemplate"])
        meta = template.get("metadata") or {}
        cm = cj["metadata"]
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
            "name": name, "namespace": cm["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "annotations": {**(meta.get("annotations") or {}), SCHEDULED_TIMESTAMP: stamp},
            "ownerReferences": [controller_ref(cj, "batch/v1", "CronJob")]},
            "spec": template.get("spec", {})}
        if not job["metadata"]["labels"]:
            del job["metadata"]["labels"]
        try:
            created = self.client.create(job)
        except StatusError as err:
            if err.code != 409:
                raise
            return  # made by an earlier sync the informer has not shown yet
        self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {name}")
        status.setdefault("active", []).append({
            "kind": "Job", "namespace": cm["namespace"], "name": name,
            "uid": created["metadata"]["uid"], "apiVersion": "batch/v1",
            "resourceVersion": created["metadata"]["resourceVersion"]})
        status["lastScheduleTime"] = stamp

    def _seconds_since_epoch(self, t: float) -> float:
        return self._datetime(t, None).timestamp()

    def _cleanup(self, cj: Obj, jobs: list[Obj]) -> None:
        """``cleanupFinishedJobs``: the oldest finished Jobs beyond the history limits."""
        for kind, limit in (("Complete", cj["spec"].get("successfulJobsHistoryLimit", 3)),
                            ("Failed", cj["spec"].get("failedJobsHistoryLimit", 1))):
            done = [j for j in jobs if any(c["type"] == kind and c["status"] == "True"
                                           for c in j["status"].get("conditions", []))
                    and not j["metadata"].get("deletionTimestamp")]
            for j in done[:max(len(done) - limit, 0)]:
                self._delete_job(cj, j["metadata"]["name"])

    def _delete_job(self, cj: Obj, name: str) -> None:
        try:
            self.client.delete("jobs", name, cj["metadata"]["namespace"],
                               propagationPolicy="Background")
        except StatusError as err:
            if err.code != 404:
                raise
            return
        self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {name}")

    def _write(self, cj: Obj, cached: Obj) -> None:
        if not cj["status"].get("active"):
            cj["status"].pop("active", None)
        if cj.get("status") != (cached.get("status") or {}):
            self.client.update_status(cj)
