"""What the Job controller decides from a Job's spec and its pods: indexes and policies.

Mirrors three files of ``pkg/controller/job``: ``indexed_job_utils.go`` (the completion index
of a pod, its annotation and label ``batch.kubernetes.io/job-completion-index``, the sets of
indexes as ordered intervals printed compressed, ``1,3-5,7``, the first pending indexes, the
index failure counts), ``pod_failure_policy.go`` (``matchPodFailurePolicy``: the first rule
whose ``onExitCodes`` or ``onPodConditions`` match a failed pod decides: ``FailJob`` with
upstream's message, ``FailIndex``, ``Ignore`` (not counted toward any limit) or ``Count``)
and ``success_policy.go`` (``matchSuccessPolicy``: ``succeededIndexes`` and/or
``succeededCount``, "Matched rules at index N").
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
Intervals = list[tuple[int, int]]

#: ``batch.JobCompletionIndexAnnotation`` (also the label, ``PodIndexLabel``)
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
#: ``batch.JobIndexFailureCountAnnotation`` and ``JobIndexIgnoredFailureCountAnnotation``
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
#: ``completionIndexEnvName``
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"


def is_indexed(job: Obj) -> bool:
    return job["spec"].get("completionMode") == "Indexed"


def completion_index(pod: Obj) -> int:
    """``getCompletionIndex``: the annotation's number, or -1 (``unknownCompletionIndex``)."""
    value = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX, "")
    return int(value) if value.isdigit() else -1


def valid_index(job: Obj, pod: Obj) -> bool:
    ix = completion_index(pod)
    return 0 <= ix < int(job["spec"].get("completions") or 0)


# -- ordered intervals ---------------------------------------------------------------------
def with_indexes(intervals: Intervals, indexes: list[int]) -> Intervals:
    """``withOrderedIndexes``: the union with some indexes, merged into intervals."""
    points = sorted({i for a, b in intervals for i in range(a, b + 1)} | set(indexes))
    out: Intervals = []
    for i in points:
        if out and out[-1][1] + 1 == i:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def total(intervals: Intervals) -> int:
    return sum(b - a + 1 for a, b in intervals)


def has(intervals: Intervals, ix: int) -> bool:
    return any(a <= ix <= b for a, b in intervals)


def to_string(intervals: Intervals) -> str:
    """``orderedIntervals.String``: ``1,3-5,7``."""
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in intervals)


def parse_indexes(text: str | None, completions: int) -> Intervals:
    """``parseIndexesFromString``: a compressed list back into intervals, indexes at or past
    ``completions`` dropped; an unreadable list is empty."""
    out: Intervals = []
    for part in (text or "").split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            a, b = int(first), int(last or first)
        except ValueError:
            return []
        b = min(b, completions - 1)
        if a <= b:
            out = with_indexes(out, list(range(a, b + 1)))
    return out


def first_pending_indexes(succeeded: Intervals, failed: Intervals, active: list[int],
                          count: int, completions: int) -> list[int]:
    """``firstPendingIndexes``: the lowest indexes neither succeeded, failed nor active."""
    taken = with_indexes(with_indexes(succeeded, active), [i for a, b in failed
                                                           for i in range(a, b + 1)])
    out: list[int] = []
    for ix in range(completions):
        if len(out) >= count:
            break
        if not has(taken, ix):
            out.append(ix)
    return out


def failure_count(pod: Obj, key: str = INDEX_FAILURE_COUNT) -> int:
    value = (pod["metadata"].get("annotations") or {}).get(key, "0")
    return int(value) if value.isdigit() else 0


# -- podFailurePolicy ---------------------------------------------------------------------
def _exit_code_matches(code: int, req: Obj) -> bool:
    values = req.get("values") or []
    if req.get("operator") == "In":
        return code in values
    if req.get("operator") == "NotIn":
        return code not in values
    return False


def _matching_container(pod: Obj, req: Obj) -> Obj | None:
    """``matchOnExitCodes``: the first terminated container (then init container) with a
    non-zero exit code the requirement selects."""
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or []:
            term = (cs.get("state") or {}).get("terminated")
            if term is None or (req.get("containerName") not in (None, cs.get("name"))):
                continue
            if term.get("exitCode", 0) != 0 and _exit_code_matches(term["exitCode"], req):
                return cs
    return None


def _matching_condition(pod: Obj, patterns: list[Obj]) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if any(cond.get("type") == p.get("type") and cond.get("status", "True") ==
               p.get("status", "True") for p in patterns):
            return cond
    return None


def match_pod_failure_policy(job: Obj, pod: Obj) -> tuple[str | None, bool, str | None]:
    """``matchPodFailurePolicy``: (the Job's failure message for ``FailJob``, whether the
    failure counts toward the limits, the action matched)."""
    policy = job["spec"].get("podFailurePolicy")
    if not policy:
        return None, True, None
    meta = pod["metadata"]
    for index, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            cs = _matching_container(pod, rule["onExitCodes"])
            if cs is None:
                continue
            message = (f"Container {cs['name']} for pod {meta['namespace']}/{meta['name']} "
                       f"failed with exit code {cs['state']['terminated']['exitCode']} "
                       f"matching {action} rule at index {index}")
        elif rule.get("onPodConditions") is not None:
            cond = _matching_condition(pod, rule["onPodConditions"])
            if cond is None:
                continue
            message = (f"Pod {meta['namespace']}/{meta['name']} has condition {cond['type']} "
                       f"matching {action} rule at index {index}")
        else:
            continue
        if action == "Ignore":
            return None, False, action
        if action == "FailJob":
            return message, True, action
        if action in ("Count", "FailIndex"):
            return None, True, action
    return None, True, None


# -- successPolicy -------------------------------------------------------------------------
def _covered(rule: Intervals, succeeded: Intervals, count: int | None) -> bool:
    """``matchSucceededIndexesRule``: all the rule's indexes succeeded, or ``count`` of
    them."""
    contains = sum(1 for a, b in rule for i in range(a, b + 1) if has(succeeded, i))
    return contains == total(rule) or (count is not None and contains >= count)


def match_success_policy(job: Obj, succeeded: Intervals) -> str | None:
    """``matchSuccessPolicy``: the message of the first rule the succeeded indexes meet."""
    policy = job["spec"].get("successPolicy")
    if not policy or not succeeded:
        return None
    completions = int(job["spec"].get("completions") or 0)
    for index, rule in enumerate(policy.get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse_indexes(rule["succeededIndexes"], completions)
            if required and _covered(required, succeeded, count):
                return f"Matched rules at index {index}"
        elif count is not None and total(succeeded) >= count:
            return f"Matched rules at index {index}"
    return None
