"""The Job controller: runs pods to completion, counting them through a finalizer.

Mirrors ``pkg/controller/job/job_controller.go`` (``syncJob``, ``manageJob``,
``trackJobStatusAndRemoveFinalizers``, ``enactJobFinished``; ``backoff_utils.go``), with the
indexes and policies of :mod:`~k8sbook.controlplane.controllers.job_policies`. Handlers on
the shared Job and Pod informers queue the Job's key. A sync:

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
* with ``completionMode: Indexed`` gives each pod an index from 0 to ``completions - 1``
  (the lowest pending first): the annotation and label
  ``batch.kubernetes.io/job-completion-index``, the env ``JOB_COMPLETION_INDEX`` (a
  ``fieldRef`` to that annotation, which the kubelet resolves), ``hostname`` ``<job>-<index>``
  and ``generateName`` ``<job>-<index>-``; an index succeeds once, and
  ``status.completedIndexes`` lists the succeeded ones compressed (``0-2,5``);
  ``backoffLimitPerIndex`` gives each index its own retries (the replacement pod carries
  ``batch.kubernetes.io/job-index-failure-count``), failed indexes go to
  ``status.failedIndexes``;
* ends the Job in two steps, as since 1.31: first an interim condition, ``FailureTarget``
  (the active pods are deleted) or ``SuccessCriteriaMet``; then, once no pod is terminating
  or uncounted, ``Failed`` or ``Complete`` with the same reason and message (and
  ``completionTime``). Failure reasons, checked in upstream's order: ``PodFailurePolicy`` (a
  ``FailJob`` rule matched: "Container c for pod ns/p failed with exit code 3 matching FailJob
  rule at index 0"), ``BackoffLimitExceeded`` (``failed > backoffLimit``, default 6; with
  ``restartPolicy: OnFailure`` the active pods' restarts count: "Job has reached the
  specified backoff limit"), ``DeadlineExceeded`` ("Job was active longer than specified
  deadline"), ``MaxFailedIndexesExceeded`` ("Job has exceeded the specified maximal number
  of failed indexes"), ``FailedIndexes`` ("Job has failed indexes", once every index
  succeeded or failed); success: ``SuccessPolicy`` ("Matched rules at index 0") or
  ``CompletionsReached`` ("Reached expected number of succeeded pods"). A failure an
  ``Ignore`` rule matches (say a ``DisruptionTarget`` condition) is not counted; a
  ``FailIndex`` rule fails the pod's index at once;
* writes ``status`` (``startTime``, ``active``, ``ready``, ``terminating``, ``succeeded``,
  ``failed``, ``completedIndexes``, ``failedIndexes``) through the ``status`` subresource,
  zero counters left out as ``omitempty`` leaves them out of the JSON.

The module is over 400 lines because ``syncJob``, ``manageJob`` and
``trackJobStatusAndRemoveFinalizers`` read and write one sync context (the pods, the
interim condition, the indexes) and keep upstream's order of writes; the pure decisions
(indexes, policies) live in ``job_policies``.

Simplified: no per-index back-off delay (the Job-wide pod-failure back-off applies), no
``MaxUncountedPods`` batching, one worker; ``suspend`` stops creations, deletes the active
pods and sets ``Suspended`` (``JobSuspended``/``JobResumed``).
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api.strategicpatch import STRATEGIC
from k8sbook.client.informer import SharedIndexInformer, meta_namespace_key
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import (
    Obj,
    QueueController,
    controller_of,
    is_pod_active,
    is_pod_ready,
    omit_empty,
    pod_from_template,
)
from k8sbook.controlplane.controllers import job_policies as jp
from k8sbook.controlplane.controllers.expectations import ControllerExpectations
from k8sbook.core.status import StatusError

NAME = "job-controller"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
#: ``DefaultJobPodFailureBackOff`` and ``MaxJobPodFailureBackOff``
POD_FAILURE_BACKOFF, MAX_POD_FAILURE_BACKOFF = 10.0, 600.0
COMPLETED = ("CompletionsReached", "Reached expected number of succeeded pods")
BACKOFF_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
MAX_FAILED_INDEXES = ("MaxFailedIndexesExceeded",
                      "Job has exceeded the specified maximal number of failed indexes")
FAILED_INDEXES = ("FailedIndexes", "Job has failed indexes")


def _finished(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase", "")) \
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") else ""


def job_finished(job: Obj) -> bool:
    """``IsJobFinished``: a ``Complete`` or ``Failed`` condition is True."""
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
               for c in (job.get("status") or {}).get("conditions", []) or [])


def only_replace_failed_pods(job: Obj) -> bool:
    """``onlyReplaceFailedPods``: ``podReplacementPolicy: Failed`` or a pod failure policy."""
    return job["spec"].get("podReplacementPolicy") == "Failed" or \
        bool(job["spec"].get("podFailurePolicy"))


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """``isPodFailed``: Failed, or (unless only failed pods are replaced) being deleted
    before it succeeded."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return bool(pod["metadata"].get("deletionTimestamp")) and phase != "Succeeded"


class _Ctx:
    """``syncJobCtx``: what one sync learned."""

    def __init__(self, job: Obj, pods: list[Obj]) -> None:
        self.job, self.pods = job, pods
        self.active = [p for p in pods if is_pod_active(p)]
        self.terminating = sum(1 for p in pods if p["metadata"].get("deletionTimestamp")
                               and not _finished(p))
        self.finished: Obj | None = None
        self.prev_succeeded: jp.Intervals = []
        self.succeeded_indexes: jp.Intervals = []
        self.failed_indexes: jp.Intervals | None = None
        self.delayed: dict[int, Obj] = {}


class JobController(QueueController):
    def __init__(self, client: Client, job_informer: SharedIndexInformer,
                 pod_informer: SharedIndexInformer) -> None:
        super().__init__(client, "job", NAME)
        self.job_informer, self.pod_informer = job_informer, pod_informer
        #: pod uids whose finalizer removal was issued (``finalizerExpectations``)
        self.counted: set[str] = set()
        #: pod creations and deletions asked for and not yet seen (``expectations``)
        self.expectations = ControllerExpectations()
        job_informer.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.observe_owned_pods(pod_informer, "Job")

    def pods(self, job: Obj) -> list[Obj]:
        uid = job["metadata"]["uid"]
        return sorted((p for p in self.pod_informer.indexer.by_index(
            "namespace", job["metadata"]["namespace"])
            if (controller_of(p) or {}).get("uid") == uid),
            key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))

    def _condition(self, kind: str, reason: tuple[str, str]) -> Obj:
        """``newCondition``."""
        now = self.clock.timestamp()
        return {"type": kind, "status": "True", "lastProbeTime": now,
                "lastTransitionTime": now, "reason": reason[0], "message": reason[1]}

    # -- the sync ----------------------------------------------------------------------
    def sync(self, key: Any) -> None:
        """``syncJob``."""
        cached = self.job_informer.get(key)
        if cached is None:
            self.expectations.delete(key)
            return
        job = copy.deepcopy(cached)
        spec, status = job["spec"], job.setdefault("status", {})
        satisfied = self.expectations.satisfied(key, self.clock.now())
        pods = self.pods(job)
        if job_finished(job):
            self._remove_finalizers([p for p in pods if _has_finalizer(p)])
            return
        status.setdefault("uncountedTerminatedPods", {})
        ctx = _Ctx(job, pods)
        uncounted = status["uncountedTerminatedPods"]
        new_succeeded, new_failed = self._new_finished(ctx)
        succeeded = int(status.get("succeeded", 0)) + len(new_succeeded) + \
            len(uncounted.get("succeeded") or [])
        failed = int(status.get("failed", 0)) + len(uncounted.get("failed") or []) + \
            sum(1 for p in new_failed if jp.match_pod_failure_policy(job, p)[1])
        if status.get("startTime") is None and not spec.get("suspend"):
            status["startTime"] = self.clock.timestamp()
        ctx.finished = _condition(job, "SuccessCriteriaMet")
        if ctx.finished is None:
            target = _condition(job, "FailureTarget")
            if target is not None:
                ctx.finished = self._condition("Failed", (target["reason"], target["message"]))
            elif (message := self._fail_job_message(job, pods)) is not None:
                ctx.finished = self._condition("FailureTarget", ("PodFailurePolicy", message))
        if ctx.finished is None:
            if failed > int(spec.get("backoffLimit", 6)) or \
                    self._past_backoff_on_failure(job, pods):
                ctx.finished = self._condition("FailureTarget", BACKOFF_EXCEEDED)
            elif self._past_deadline(job):
                ctx.finished = self._condition("FailureTarget", DEADLINE_EXCEEDED)
            elif spec.get("activeDeadlineSeconds") is not None and not spec.get("suspend"):
                self.queue.add_after(key, self.clock.parse(status["startTime"]) +
                                     spec["activeDeadlineSeconds"] - self.clock.now())
        if jp.is_indexed(job):
            succeeded = self._indexes(ctx)
        active = len(ctx.active)
        if ctx.finished is not None:
            self._delete(job, ctx.active)
            if not satisfied:  # pods may be missing from the cache: not finished yet
                ctx.finished = None
            ctx.terminating += active
            active = 0
        elif satisfied and not job["metadata"].get("deletionTimestamp"):
            if spec.get("suspend"):  # deleteJobPods: the finalizer first, then the pod
                self._remove_finalizers(ctx.active)
                self._delete(job, ctx.active)
                ctx.terminating += active
                active = 0
            else:
                active += len(self._manage(ctx, active, succeeded))
            completions = spec.get("completions")
            if (succeeded >= completions if completions is not None else succeeded > 0) and \
                    active == 0:
                ctx.finished = self._condition("SuccessCriteriaMet", COMPLETED)
            else:
                self._suspended_condition(job)
        ready = sum(1 for p in ctx.active if is_pod_ready(p)) if active else 0
        status.update({"active": active, "ready": ready, "terminating": ctx.terminating})
        self._track(ctx)

    def _new_finished(self, ctx: _Ctx) -> tuple[list[Obj], list[Obj]]:
        """``getNewFinishedPods``: finished pods not yet counted nor recorded as uncounted."""
        uncounted = ctx.job["status"]["uncountedTerminatedPods"]
        seen = set(uncounted.get("succeeded") or []) | set(uncounted.get("failed") or [])
        valid = [p for p in ctx.pods if _has_finalizer(p) and p["metadata"]["uid"] not in seen
                 and p["metadata"]["uid"] not in self.counted and
                 (not jp.is_indexed(ctx.job) or jp.valid_index(ctx.job, p))]
        return ([p for p in valid if _finished(p) == "Succeeded"],
                [p for p in valid if is_pod_failed(p, ctx.job)])

    def _fail_job_message(self, job: Obj, pods: list[Obj]) -> str | None:
        """``getFailJobMessage``: the message of the first failed pod a ``FailJob`` rule
        matches."""
        if not job["spec"].get("podFailurePolicy"):
            return None
        for pod in pods:
            if is_pod_failed(pod, job):
                message = jp.match_pod_failure_policy(job, pod)[0]
                if message is not None:
                    return message
        return None

    @staticmethod
    def _past_backoff_on_failure(job: Obj, pods: list[Obj]) -> bool:
        """``pastBackoffLimitOnFailure``: with ``OnFailure``, the restarts of running and
        pending pods reach the limit."""
        if job["spec"]["template"]["spec"].get("restartPolicy") != "OnFailure":
            return False
        limit = int(job["spec"].get("backoffLimit", 6))
        restarts = sum(c.get("restartCount", 0) for p in pods
                       if (p.get("status") or {}).get("phase") in ("Running", "Pending")
                       for key in ("initContainerStatuses", "containerStatuses")
                       for c in p["status"].get(key) or [])
        return restarts > 0 if limit == 0 else restarts >= limit

    def _past_deadline(self, job: Obj) -> bool:
        deadline = job["spec"].get("activeDeadlineSeconds")
        start = job["status"].get("startTime")
        if deadline is None or not start or job["spec"].get("suspend"):
            return False
        return self.clock.now() - self.clock.parse(start) >= deadline

    def _indexes(self, ctx: _Ctx) -> int:
        """The Indexed part of ``syncJob``: succeeded and failed indexes, the per-index
        limits, the success policy. Returns the number of succeeded indexes."""
        job, status = ctx.job, ctx.job["status"]
        completions = int(job["spec"].get("completions") or 0)
        ctx.prev_succeeded = jp.parse_indexes(status.get("completedIndexes"), completions)
        ctx.succeeded_indexes = jp.with_indexes(ctx.prev_succeeded, [
            jp.completion_index(p) for p in ctx.pods if _finished(p) == "Succeeded" and
            jp.valid_index(job, p) and _has_finalizer(p)])
        if job["spec"].get("backoffLimitPerIndex") is not None:
            prev = jp.parse_indexes(status.get("failedIndexes"), completions)
            ctx.failed_indexes = jp.with_indexes(prev, [
                jp.completion_index(p) for p in ctx.pods if self._index_failed(job, p) and
                jp.valid_index(job, p)])
            if ctx.finished is None:
                limit = job["spec"].get("maxFailedIndexes")
                n = jp.total(ctx.failed_indexes)
                if limit is not None and n > limit:
                    ctx.finished = self._condition("FailureTarget", MAX_FAILED_INDEXES)
                elif n and n + jp.total(ctx.succeeded_indexes) >= completions:
                    ctx.finished = self._condition("FailureTarget", FAILED_INDEXES)
            ctx.delayed = self._delayed_per_index(ctx)
        if ctx.finished is None and \
                (message := jp.match_success_policy(job, ctx.succeeded_indexes)) is not None:
            ctx.finished = self._condition("SuccessCriteriaMet", ("SuccessPolicy", message))
        return jp.total(ctx.succeeded_indexes)

    @staticmethod
    def _index_failed(job: Obj, pod: Obj) -> bool:
        """``isIndexFailed``: a ``FailIndex`` rule matched, or a counted failure of a pod
        whose index has used up ``backoffLimitPerIndex``."""
        if not is_pod_failed(pod, job):
            return False
        _, counts, action = jp.match_pod_failure_policy(job, pod)
        if action == "FailIndex":
            return True
        return counts and jp.failure_count(pod) >= int(job["spec"]["backoffLimitPerIndex"])

    def _delayed_per_index(self, ctx: _Ctx) -> dict[int, Obj]:
        """``getPodsWithDelayedDeletionPerIndex``: per index still to run, its latest failed
        pod, kept (finalizer and all) until its replacement carries the failure count."""
        out: dict[int, Obj] = {}
        failed = ctx.failed_indexes or []
        for pod in ctx.pods:
            ix = jp.completion_index(pod)
            if not _has_finalizer(pod) or not is_pod_failed(pod, ctx.job) or \
                    not jp.valid_index(ctx.job, pod) or jp.has(ctx.succeeded_indexes, ix) or \
                    jp.has(failed, ix):
                continue
            if ix not in out or jp.failure_count(pod) >= jp.failure_count(out[ix]):
                out[ix] = pod
        return out

    def _manage(self, ctx: _Ctx, active: int, succeeded: int) -> list[Obj]:
        """``manageJob`` for the creations: the pods created."""
        job, spec = ctx.job, ctx.job["spec"]
        parallelism = spec.get("parallelism", 1)
        completions = spec.get("completions")
        wanted = min(parallelism, max(completions - succeeded, 0)) if completions is not None \
            else (parallelism if succeeded == 0 else 0)
        if jp.is_indexed(job):
            failed_active = [p for p in ctx.active if jp.has(ctx.failed_indexes or [],
                                                             jp.completion_index(p))]
            if failed_active:  # the active pods of an index that failed go
                self._delete(job, failed_active)
                return []
        if active >= wanted:
            return []
        now = self.clock.now()
        # the pod-failure back-off: 10 s doubling per failure since the last success
        done = [(self.clock.parse(_finished_at(p)), _finished(p)) for p in ctx.pods
                if _finished(p) and _finished_at(p)]
        success = max((t for t, phase in done if phase == "Succeeded"), default=-1.0)
        failures = sorted(t for t, phase in done if phase == "Failed" and t > success)
        if failures:
            delay = min(POD_FAILURE_BACKOFF * 2 ** (len(failures) - 1), MAX_POD_FAILURE_BACKOFF)
            if now < failures[-1] + delay:
                self.queue.add_after(meta_namespace_key(job), failures[-1] + delay - now)
                return []
        indexes: list[int | None] = [None] * (wanted - active)
        if jp.is_indexed(job):
            indexes = list(jp.first_pending_indexes(
                ctx.succeeded_indexes, ctx.failed_indexes or [],
                [jp.completion_index(p) for p in ctx.active], wanted - active,
                int(completions or 0)))
        created = []
        self.expectations.expect_creations(meta_namespace_key(job), len(indexes), now)
        for ix in indexes:
            replaced = ctx.delayed.get(ix) if ix is not None else None
            pod = self.client.create(self.pod_from_template(job, ix, replaced))
            self.recorder.event(job, "Normal", "SuccessfulCreate",
                                f"Created pod: {pod['metadata']['name']}")
            created.append(pod)
        return created

    @staticmethod
    def pod_from_template(job: Obj, index: int | None = None,
                          replaced: Obj | None = None) -> Obj:
        """``GetPodFromTemplate``, with the job-tracking finalizer (upstream 1.26+); for an
        Indexed Job the index's annotation, label, env, hostname and name, and with
        ``backoffLimitPerIndex`` the failure counts of the pod it replaces."""
        pod = pod_from_template(job, "batch/v1", "Job", finalizers=(TRACKING_FINALIZER,))
        if index is None:
            return pod
        meta, spec = pod["metadata"], pod["spec"]
        name = job["metadata"]["name"]
        meta["generateName"] = f"{name}-{index}-"
        meta.setdefault("annotations", {})[jp.COMPLETION_INDEX] = str(index)
        meta.setdefault("labels", {})[jp.COMPLETION_INDEX] = str(index)
        spec["hostname"] = f"{name}-{index}"
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            env = c.setdefault("env", [])
            if not any(e.get("name") == jp.COMPLETION_INDEX_ENV for e in env):
                env.append({"name": jp.COMPLETION_INDEX_ENV, "valueFrom": {"fieldRef": {
                    "fieldPath": f"metadata.annotations['{jp.COMPLETION_INDEX}']"}}})
        if job["spec"].get("backoffLimitPerIndex") is not None:
            counts, ignored = 0, 0
            if replaced is not None:  # getNewIndexFailureCounts
                counts = jp.failure_count(replaced)
                ignored = jp.failure_count(replaced, jp.INDEX_IGNORED_FAILURE_COUNT)
                if jp.match_pod_failure_policy(job, replaced)[1]:
                    counts += 1
                else:
                    ignored += 1
            meta["annotations"][jp.INDEX_FAILURE_COUNT] = str(counts)
            if ignored:
                meta["annotations"][jp.INDEX_IGNORED_FAILURE_COUNT] = str(ignored)
        return pod

    def _suspended_condition(self, job: Obj) -> None:
        """``ensureJobConditionStatus`` of ``Suspended``, with its events."""
        current = next((c for c in job["status"].get("conditions") or []
                        if c["type"] == "Suspended"), None)
        if job["spec"].get("suspend"):
            if current is None or current["status"] != "True":
                self._set_condition(job, "Suspended", "True", "JobSuspended", "Job suspended")
                self.recorder.event(job, "Normal", "Suspended", "Job suspended")
        elif current is not None and current["status"] == "True":
            self._set_condition(job, "Suspended", "False", "JobResumed", "Job resumed")
            self.recorder.event(job, "Normal", "Resumed", "Job resumed")
            job["status"]["startTime"] = self.clock.timestamp()

    def _set_condition(self, job: Obj, kind: str, status: str, reason: str,
                       message: str) -> None:
        now = self.clock.timestamp()
        conds = [c for c in job["status"].get("conditions") or [] if c["type"] != kind]
        job["status"]["conditions"] = conds + [{
            "type": kind, "status": status, "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}]

    def _delete(self, job: Obj, pods: list[Obj]) -> None:
        """``deleteActivePods``: deletions that keep the finalizers."""
        key = meta_namespace_key(job)
        if pods:
            self.expectations.expect_deletions(key, len(pods), self.clock.now())
        for pod in pods:
            try:
                self.client.delete("pods", pod["metadata"]["name"], pod["metadata"]["namespace"])
            except StatusError as err:
                if err.code != 404:
                    raise
                self.expectations.deletion_observed(key)
                continue
            self.recorder.event(job, "Normal", "SuccessfulDelete",
                                f"Deleted pod: {pod['metadata']['name']}")

    def _remove_finalizers(self, pods: list[Obj]) -> None:
        for pod in pods:
            self.counted.add(pod["metadata"]["uid"])
            try:
                self.client.patch("pods", pod["metadata"]["name"], {"metadata": {
                    "$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}},
                    pod["metadata"]["namespace"], content_type=STRATEGIC)
            except StatusError as err:
                if err.code != 404:
                    raise

    def _track(self, ctx: _Ctx) -> None:
        """``trackJobStatusAndRemoveFinalizers``: record the finished pods as uncounted,
        flush, remove their finalizers, count them; then the terminal condition."""
        job = ctx.job
        status = job["status"]
        uncounted = status["uncountedTerminatedPods"]
        indexed = jp.is_indexed(job)
        with_finalizer = {p["metadata"]["uid"] for p in ctx.pods if _has_finalizer(p) and
                          p["metadata"]["uid"] not in self.counted}
        needs_flush = self._clean_uncounted(status, with_finalizer)
        to_remove: list[Obj] = []
        new_indexes: list[int] = []
        ending = ctx.finished is not None and ctx.finished["type"] != "SuccessCriteriaMet"
        pods = sorted(ctx.pods, key=jp.completion_index) if indexed else ctx.pods
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if uid not in with_finalizer:
                continue
            failed = is_pod_failed(pod, job)
            if not self._can_remove_finalizer(ctx, pod, failed):
                continue
            to_remove.append(pod)
            if _finished(pod) == "Succeeded" and uid not in (uncounted.get("failed") or []):
                if indexed:
                    ix = jp.completion_index(pod)
                    if jp.valid_index(job, pod) and not jp.has(ctx.prev_succeeded, ix):
                        new_indexes.append(ix)
                        needs_flush = True
                elif uid not in (uncounted.get("succeeded") or []):
                    uncounted.setdefault("succeeded", []).append(uid)
                    needs_flush = True
            elif (failed or ending) and uid not in (uncounted.get("failed") or []) and \
                    (not indexed or jp.valid_index(job, pod)) and \
                    jp.match_pod_failure_policy(job, pod)[1]:  # an Ignore rule: not counted
                uncounted.setdefault("failed", []).append(uid)
                needs_flush = True
        if indexed:
            ctx.succeeded_indexes = jp.with_indexes(ctx.succeeded_indexes, new_indexes)
            text = jp.to_string(ctx.succeeded_indexes)
            needs_flush |= text != status.get("completedIndexes")
            status["succeeded"] = jp.total(ctx.succeeded_indexes)
            status["completedIndexes"] = text
            if ctx.failed_indexes is not None:
                failed_text = jp.to_string(ctx.failed_indexes)
                needs_flush |= failed_text != status.get("failedIndexes")
                status["failedIndexes"] = failed_text
        finished = ctx.finished
        if finished is not None and finished["type"] == "FailureTarget":
            status.setdefault("conditions", []).append(finished)
            needs_flush = True
            finished = self._condition("Failed", (finished["reason"], finished["message"]))
        elif finished is not None and finished["type"] == "SuccessCriteriaMet":
            if _condition(job, "SuccessCriteriaMet") is None:
                status.setdefault("conditions", []).append(finished)
                needs_flush = True
            finished = self._condition("Complete", (finished["reason"], finished["message"]))
        _omit_empty(status)
        needs_flush |= job != self.job_informer.get(meta_namespace_key(job))
        if needs_flush:  # flushUncountedAndRemoveFinalizers
            job = self.client.update_status(job)
            status = job["status"]
            needs_flush = False
        self._remove_finalizers(to_remove)
        with_finalizer -= {p["metadata"]["uid"] for p in to_remove}
        needs_flush |= self._clean_uncounted(status, with_finalizer)
        done = finished is not None and not (status["uncountedTerminatedPods"].get("succeeded")
                                             or status["uncountedTerminatedPods"].get("failed"))
        done = done and ctx.terminating == 0  # enactJobFinished
        if done and finished is not None:
            kind = finished["type"]
            if _condition(job, kind) is None:
                status.setdefault("conditions", []).append(finished)
            if kind == "Complete":
                status["completionTime"] = finished["lastTransitionTime"]
        if needs_flush or done:
            _omit_empty(status)
            self.client.update_status(job)
        if done and finished is not None:  # recordJobFinished
            if finished["type"] == "Complete":
                completions = job["spec"].get("completions")
                if completions is not None and status.get("succeeded", 0) > completions:
                    self.recorder.event(job, "Warning", "TooManySucceededPods", "Too many "
                                        "succeeded pods running after completion count "
                                        "reached")
                self.recorder.event(job, "Normal", "Completed", "Job completed")
            else:
                self.recorder.event(job, "Warning", finished["reason"], finished["message"])

    @staticmethod
    def _can_remove_finalizer(ctx: _Ctx, pod: Obj, failed: bool) -> bool:
        """``canRemoveFinalizer``."""
        if ctx.job["metadata"].get("deletionTimestamp") or ctx.finished is not None or \
                _finished(pod) == "Succeeded":
            return True
        if not failed:
            return False
        kept = ctx.delayed.get(jp.completion_index(pod))
        return not (kept is not None and kept["metadata"]["uid"] == pod["metadata"]["uid"])

    @staticmethod
    def _clean_uncounted(status: Obj, with_finalizer: set[str]) -> bool:
        """``cleanUncountedPodsWithoutFinalizers``: uncounted pods whose finalizer is gone
        move into the counters."""
        uncounted = status["uncountedTerminatedPods"]
        changed = False
        for phase in ("succeeded", "failed"):
            uids = uncounted.get(phase) or []
            keep = [u for u in uids if u in with_finalizer]
            if len(keep) != len(uids):
                status[phase] = int(status.get(phase, 0)) + len(uids) - len(keep)
                changed = True
            if keep:
                uncounted[phase] = keep
            else:
                uncounted.pop(phase, None)
        return changed


def _omit_empty(status: Obj) -> None:
    """``batch/v1`` ``JobStatus`` as its JSON has it: ``active``, ``succeeded``, ``failed``
    and ``completedIndexes`` are ``omitempty`` (``ready``, ``terminating`` and
    ``failedIndexes`` are pointers, shown when 0 or empty)."""
    omit_empty(status, "active", "succeeded", "failed", "completedIndexes")


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
