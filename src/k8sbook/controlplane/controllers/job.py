"""The Job controller: runs pods to completion, counting them through a finalizer.

Mirrors ``pkg/controller/job/job_controller.go`` (``syncJob``, ``manageJob``,
``trackJobStatusAndRemoveFinalizers``; ``backoff_utils.go``) for ``completionMode:
NonIndexed``. Handlers on the shared Job and Pod informers queue the Job's key. A sync:

* creates pods (``generateName: <job>-``, the template's labels, which the apiserver's Job
  strategy made ``batch.kubernetes.io/controller-uid`` and ``batch.kubernetes.io/job-name``;
  an owner reference with ``controller`` and ``blockOwnerDeletion``; the finalizer
  ``batch.kubernetes.io/job-tracking``) until ``parallelism`` pods are active, but no more
  than the ``completions`` still missing (without ``completions``: until one succeeds), and,
  after failures, only once the pod-failure back-off has passed (``backoff_utils.go``: 10 s
  doubling with each failure since the last success, at most 10 min);
* counts each finished pod exactly once, in three writes: its uid goes into
  ``status.uncountedTerminatedPods``; its ``job-tracking`` finalizer is removed (a strategic
  merge patch of the pod); then the uid moves into ``status.succeeded`` or ``status.failed``
  (a pod deleted before it is counted is not lost: the finalizer held it);
* fails the Job when ``failed > backoffLimit`` (default 6; with ``restartPolicy: OnFailure``
  the active pods' container restarts count too) or ``activeDeadlineSeconds`` passed:
  ``FailureTarget`` first, active pods deleted, then ``Failed`` (``BackoffLimitExceeded``
  "Job has reached the specified backoff limit", ``DeadlineExceeded`` "Job was active longer
  than specified deadline"); completes it when ``succeeded >= completions``:
  ``SuccessCriteriaMet`` then ``Complete`` (``CompletionsReached`` "Reached expected number of
  succeeded pods") with ``completionTime``, as since 1.31;
* writes ``status`` (``startTime``, ``active``, ``ready``, ``terminating``, ``succeeded``,
  ``failed``) through the ``status`` subresource.

Simplified: no ``Indexed`` mode, ``podFailurePolicy``, ``successPolicy`` or
``backoffLimitPerIndex``; ``suspend`` only stops creations and deletes the active pods.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api.strategicpatch import STRATEGIC
from k8sbook.client.events import EventRecorder
from k8sbook.client.informer import SharedIndexInformer, final_state, meta_namespace_key
from k8sbook.client.rest import Client
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.controlplane.controllers import (
    Obj,
    controller_of,
    is_pod_ready,
    owner_key,
    pod_from_template,
)

NAME = "job-controller"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
#: ``DefaultJobPodFailureBackOff`` and ``MaxJobPodFailureBackOff``
POD_FAILURE_BACKOFF, MAX_POD_FAILURE_BACKOFF = 10.0, 600.0
COMPLETED = ("CompletionsReached", "Reached expected number of succeeded pods")
BACKOFF_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")


def _finished(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase", "")) \
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") else ""


def job_finished(job: Obj) -> bool:
    """``IsJobFinished``: a ``Complete`` or ``Failed`` condition is True."""
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
               for c in (job.get("status") or {}).get("conditions", []) or [])


class JobController:
    def __init__(self, client: Client, job_informer: SharedIndexInformer,
                 pod_informer: SharedIndexInformer) -> None:
        self.client = client
        self.clock = client.clock
        self.job_informer, self.pod_informer = job_informer, pod_informer
        self.queue = RateLimitingQueue(client.clock, "job")
        self.recorder = EventRecorder(client, NAME)
        #: pod uids already counted (``uncountedTerminatedPods`` moved into the counters)
        self.counted: set[str] = set()
        job_informer.add_event_handler(self._enqueue, lambda old, new: self._enqueue(new))
        pod_informer.add_event_handler(self._pod_changed, lambda old, new: self._pod_changed(new),
                                       lambda pod: self._pod_changed(final_state(pod)))

    def run(self) -> None:
        self.queue.run_worker(self.sync)

    def stop(self) -> None:
        self.queue.shut_down()

    def _enqueue(self, job: Obj) -> None:
        self.queue.add(meta_namespace_key(job))

    def _pod_changed(self, pod: Obj) -> None:
        if key := owner_key(pod, "Job"):
            self.queue.add(key)

    def pods(self, job: Obj) -> list[Obj]:
        uid = job["metadata"]["uid"]
        return sorted((p for p in self.pod_informer.indexer.by_index(
            "namespace", job["metadata"]["namespace"])
            if (controller_of(p) or {}).get("uid") == uid),
            key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))

    # -- the sync ----------------------------------------------------------------------
    def sync(self, key: Any) -> None:
        """``syncJob``."""
        cached = self.job_informer.get(key)
        if cached is None:
            return
        job = copy.deepcopy(cached)
        spec, status = job["spec"], job.setdefault("status", {})
        pods = self.pods(job)
        if job_finished(job):
            self._remove_finalizers([p for p in pods if _has_finalizer(p)])
            return
        uncounted = status.get("uncountedTerminatedPods") or {}
        if uncounted.get("succeeded") or uncounted.get("failed"):
            # a sync that recorded them and stopped short: finish counting them
            uids = set(uncounted.get("succeeded", [])) | set(uncounted.get("failed", []))
            self._remove_finalizers([p for p in pods if p["metadata"]["uid"] in uids and
                                     _has_finalizer(p)])
            for phase in ("succeeded", "failed"):
                status[phase] = status.get(phase, 0) + len(uncounted.get(phase, []))
            self.counted |= uids
            status["uncountedTerminatedPods"] = {}
        now = self.clock.now()
        if not spec.get("suspend"):
            status.setdefault("startTime", self.clock.timestamp())
        active = [p for p in pods if not _finished(p) and not p["metadata"].get(
            "deletionTimestamp")]
        new_finished = [p for p in pods if _finished(p) and _has_finalizer(p)
                        and p["metadata"]["uid"] not in self.counted]
        succeeded = status.get("succeeded", 0) + sum(
            1 for p in new_finished if _finished(p) == "Succeeded")
        failed = status.get("failed", 0) + sum(1 for p in new_finished
                                                if _finished(p) == "Failed")
        failure = self._failure(job, active, failed, now)
        completions = spec.get("completions")
        complete = failure is None and (succeeded >= completions if completions is not None
                                        else succeeded > 0 and not active)
        if failure is not None or complete:
            if _condition(job, "FailureTarget" if failure else "SuccessCriteriaMet") is None:
                reason, message = failure or COMPLETED
                _add_condition(job, "FailureTarget" if failure else "SuccessCriteriaMet",
                               reason, message, self.clock.timestamp())
            self._delete(job, active)
            active = []
        elif spec.get("suspend"):
            self._delete(job, active)
            active = []
        else:
            active += self._manage(job, len(active), succeeded, now)
        self._track(job, pods, new_finished, active)

    def _failure(self, job: Obj, active: list[Obj], failed: int,
                 now: float) -> tuple[str, str] | None:
        spec, status = job["spec"], job["status"]
        target = _condition(job, "FailureTarget")
        if target is not None:
            return target["reason"], target["message"]
        limit = spec.get("backoffLimit", 6)
        if failed > limit:
            return BACKOFF_EXCEEDED
        if spec["template"]["spec"].get("restartPolicy") == "OnFailure":
            restarts = sum(c.get("restartCount", 0) for p in active for c in (
                p.get("status", {}).get("containerStatuses", []) or []))
            if (limit == 0 and restarts > 0) or (limit and restarts >= limit):
                return BACKOFF_EXCEEDED
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and status.get("startTime") and \
                now - self.clock.parse(status["startTime"]) >= deadline:
            return DEADLINE_EXCEEDED
        if deadline is not None and status.get("startTime"):
            self.queue.add_after(meta_namespace_key(job), self.clock.parse(
                status["startTime"]) + deadline - now)
        return None

    def _manage(self, job: Obj, active: int, succeeded: int,
                now: float) -> list[Obj]:
        """``manageJob`` for the creations: the pods created."""
        spec = job["spec"]
        parallelism = spec.get("parallelism", 1)
        completions = spec.get("completions")
        wanted = min(parallelism, max(completions - succeeded, 0)) if completions is not None \
            else (parallelism if succeeded == 0 else 0)
        if active >= wanted:
            return []
        # the pod-failure back-off: 10 s doubling per failure since the last success
        done = [(self.clock.parse(_finished_at(p)), _finished(p)) for p in self.pods(job)
                if _finished(p) and _finished_at(p)]
        success = max((t for t, phase in done if phase == "Succeeded"), default=-1.0)
        failures = sorted(t for t, phase in done if phase == "Failed" and t > success)
        if failures:
            delay = min(POD_FAILURE_BACKOFF * 2 ** (len(failures) - 1), MAX_POD_FAILURE_BACKOFF)
            if now < failures[-1] + delay:
                self.queue.add_after(meta_namespace_key(job), failures[-1] + delay - now)
                return []
        created = []
        for _ in range(wanted - active):
            pod = self.client.create(self.pod_from_template(job))
            self.recorder.event(job, "Normal", "SuccessfulCreate",
                                f"Created pod: {pod['metadata']['name']}")
            created.append(pod)
        return created

    @staticmethod
    def pod_from_template(job: Obj) -> Obj:
        """``GetPodFromTemplate``, with the job-tracking finalizer (upstream 1.26+)."""
        return pod_from_template(job, "batch/v1", "Job", finalizers=(TRACKING_FINALIZER,))

    def _delete(self, job: Obj, pods: list[Obj]) -> None:
        for pod in pods:
            self.client.delete("pods", pod["metadata"]["name"], pod["metadata"]["namespace"])
            self.recorder.event(job, "Normal", "SuccessfulDelete",
                                f"Deleted pod: {pod['metadata']['name']}")

    def _remove_finalizers(self, pods: list[Obj]) -> None:
        for pod in pods:
            self.client.patch("pods", pod["metadata"]["name"], {"metadata": {
                "$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}},
                pod["metadata"]["namespace"], content_type=STRATEGIC)

    def _track(self, job: Obj, pods: list[Obj], new_finished: list[Obj],
               active: list[Obj]) -> None:
        """``trackJobStatusAndRemoveFinalizers``: record, unblock, count; then conditions."""
        status = job["status"]
        status.update({"active": len(active), "ready": sum(1 for p in active
                                                           if is_pod_ready(p)),
                       "terminating": sum(1 for p in pods if p["metadata"].get(
                           "deletionTimestamp") and not _finished(p))})
        if new_finished:
            status["uncountedTerminatedPods"] = {
                phase.lower(): sorted(p["metadata"]["uid"] for p in new_finished
                                      if _finished(p) == phase)
                for phase in ("Succeeded", "Failed")
                if any(_finished(p) == phase for p in new_finished)}
            job = self.client.update_status(job)
            self._remove_finalizers(new_finished)
            status = job["status"]
            for phase in ("succeeded", "failed"):
                uids = status["uncountedTerminatedPods"].get(phase, [])
                status[phase] = status.get(phase, 0) + len(uids)
                self.counted.update(uids)
            status["uncountedTerminatedPods"] = {}
        status.setdefault("uncountedTerminatedPods", {})
        now = self.clock.timestamp()
        if status.get("terminating", 0) == 0 and not status.get("active"):
            target = _condition(job, "FailureTarget")
            if target is not None and _condition(job, "Failed") is None:
                _add_condition(job, "Failed", target["reason"], target["message"], now)
                self.recorder.event(job, "Warning", target["reason"], target["message"])
            elif _condition(job, "SuccessCriteriaMet") is not None and \
                    _condition(job, "Complete") is None:
                _add_condition(job, "Complete", *COMPLETED, now)
                status["completionTime"] = now
                self.recorder.event(job, "Normal", "Completed", "Job completed")
        if job != self.job_informer.get(meta_namespace_key(job)):
            self.client.update_status(job)


def _has_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or [])


def _finished_at(pod: Obj) -> str:
    for c in pod.get("status", {}).get("containerStatuses", []) or []:
        term = (c.get("state") or {}).get("terminated")
        if term and term.get("finishedAt"):
            return str(term["finishedAt"])
    return ""


def _condition(job: Obj, kind: str) -> Obj | None:
    return next((c for c in (job.get("status") or {}).get("conditions", []) or []
                 if c["type"] == kind and c["status"] == "True"), None)


def _add_condition(job: Obj, kind: str, reason: str, message: str, now: str) -> None:
    job["status"].setdefault("conditions", []).append({
        "type": kind, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
        "reason": reason, "message": message})
