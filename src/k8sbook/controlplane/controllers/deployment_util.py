"""Helpers of the Deployment controller: hashes, revisions, fenceposts, conditions.

Mirrors ``pkg/controller/deployment/util/deployment_util.go`` (``ComputeHash`` is in
``pkg/controller/controller_utils.go``): the annotation names, ``ResolveFenceposts`` with
``intstr.GetScaledValueFromIntOrPercent`` (a surge rounds up, an unavailability down),
``EqualIgnoreHash``, ``SetDeploymentCondition``, ``DeploymentComplete``,
``DeploymentProgressing``, ``FindActiveOrLatest``, ``IsSaturated`` and proportional scaling
(``GetProportion``, ``getReplicaSetFraction``, the orders ``ReplicaSetsBySizeNewer`` and
``ReplicaSetsBySizeOlder`` of ``pkg/controller/controller_utils.go``).

The module is over 400 lines because it is upstream's ``deployment_util.go``: the pure
functions the controller's sync is built from, each small and tested on its own. Used by :mod:`k8sbook.controlplane.controllers.deployment`.
"""

from __future__ import annotations

import copy
import json
import math

from k8sbook.controlplane.controllers import Obj

REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HISTORY = "deployment.kubernetes.io/revision-history"
HASH_LABEL = "pod-template-hash"
#: ``rand.SafeEncodeString``'s alphabet: no vowels, no look-alike digits
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """``controller.ComputeHash``: FNV-32a of the template, then (when there is one) of the
    collision count as 8 little-endian bytes (a ``uint32`` in an 8-byte buffer), safe-encoded.
    Upstream hashes ``DeepHashObject``'s printout of the Go struct; the model hashes the
    template's JSON with sorted keys, so the names differ from a real cluster's."""
    h = 0x811C9DC5
    data = json.dumps(template, sort_keys=True).encode()
    if collision_count is not None:
        data += (int(collision_count) & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return "".join(ALPHANUMS[ord(c) % len(ALPHANUMS)] for c in str(h))


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if value is None:
        return 0
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def fenceposts(d: Obj) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge, maxUnavailable) for the Deployment's replicas."""
    strategy = d["spec"].get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    ru = strategy.get("rollingUpdate") or {}
    replicas = d["spec"].get("replicas", 1)
    surge = scaled_value(ru.get("maxSurge", "25%"), replicas, True)
    unavailable = scaled_value(ru.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def revision(rs: Obj) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    (t.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    if t.get("metadata") == {"labels": {}}:
        t["metadata"] = {}
    return t


def replicas_of(rs: Obj) -> int:
    return int(rs["spec"].get("replicas", 0))


def status_of(rs: Obj | None, field: str) -> int:
    return int(((rs or {}).get("status") or {}).get(field, 0) or 0)


def get_condition(obj: Obj, kind: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) or []
                 if c.get("type") == kind), None)


def set_condition(obj: Obj, kind: str, status: str, reason: str, message: str, now: str,
                   update: bool = False) -> None:
    """``SetDeploymentCondition``: the same status and reason is no change (unless
    ``update``: ``ReplicaSetUpdated`` is set afresh on every progress); the same status keeps
    ``lastTransitionTime``."""
    st = obj.setdefault("status", {})
    current = get_condition(obj, kind)
    if not update and current and current["status"] == status and current["reason"] == reason:
        return
    transition = current["lastTransitionTime"] if current and \
        current["status"] == status else now
    st["conditions"] = [c for c in st.get("conditions", []) if c["type"] != kind] + [{
        "type": kind, "status": status, "lastUpdateTime": now,
        "lastTransitionTime": transition, "reason": reason, "message": message}]


def deployment_complete(d: Obj, status: Obj) -> bool:
    """``DeploymentComplete``."""
    replicas = d["spec"].get("replicas", 1)
    return (status["updatedReplicas"] == replicas and status["replicas"] == replicas
            and status["availableReplicas"] == replicas
            and status["observedGeneration"] >= d["metadata"].get("generation", 1))


def deployment_progressing(d: Obj, status: Obj) -> bool:
    """``DeploymentProgressing``: more updated, fewer old, more ready or more available."""
    old = d.get("status") or {}
    return (status["updatedReplicas"] > old.get("updatedReplicas", 0)
            or status["replicas"] - status["updatedReplicas"] <
            old.get("replicas", 0) - old.get("updatedReplicas", 0)
            or status["readyReplicas"] > old.get("readyReplicas", 0)
            or status["availableReplicas"] > old.get("availableReplicas", 0))


def find_new_replicaset(d: Obj, rs_list: list[Obj]) -> Obj | None:
    """``FindNewReplicaSet``: the oldest whose template equals the Deployment's
    (``EqualIgnoreHash``)."""
    want = without_hash(d["spec"]["template"])
    return next((rs for rs in rs_list if without_hash(rs["spec"]["template"]) == want), None)


def is_scaling_event(d: Obj, rs_list: list[Obj]) -> bool:
    """``isScalingEvent``: an active ReplicaSet's ``desired-replicas`` is not the spec's."""
    for rs in rs_list:
        desired = (rs["metadata"].get("annotations") or {}).get(DESIRED)
        if replicas_of(rs) > 0 and desired is not None and \
                int(desired) != d["spec"].get("replicas", 1):
            return True
    return False


def new_rs_new_replicas(d: Obj, all_rs: list[Obj], new: Obj) -> int:
    """``NewRSNewReplicas``: rolling, as many more as ``replicas + maxSurge`` allows;
    ``Recreate``, all of them (the old ones are gone by then)."""
    replicas = d["spec"].get("replicas", 1)
    if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
        return int(replicas)
    surge, _ = fenceposts(d)
    current = sum(replicas_of(rs) for rs in all_rs)
    if current >= replicas + surge:
        return replicas_of(new)
    return replicas_of(new) + min(replicas + surge - current, replicas - replicas_of(new))


def _by_creation(rs: Obj) -> tuple[str, str]:
    """``ReplicaSetsByCreationTimestamp``: older first, then by name."""
    return rs["metadata"].get("creationTimestamp", ""), rs["metadata"]["name"]


def find_active_or_latest(new: Obj | None, old: list[Obj]) -> Obj | None:
    """``FindActiveOrLatest``: the only ReplicaSet with replicas, or (with none) the new one
    or else the newest old one; None when several have replicas."""
    if new is None and not old:
        return None
    newest_first = sorted(old, key=_by_creation, reverse=True)
    active = [rs for rs in [*newest_first, new] if rs is not None and replicas_of(rs) > 0]
    if not active:
        return new if new is not None else newest_first[0]
    return active[0] if len(active) == 1 else None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """``IsSaturated``: the new ReplicaSet has all the replicas, wants them, and has them
    available."""
    if rs is None:
        return False
    replicas = d["spec"].get("replicas", 1)
    try:
        desired = int((rs["metadata"].get("annotations") or {}).get(DESIRED, ""))
    except ValueError:
        return False
    return replicas_of(rs) == replicas == desired and \
        status_of(rs, "availableReplicas") == replicas


def _round(x: float) -> int:
    """``integer.RoundToInt32``: ``math.Round``, halves away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def replica_set_fraction(rs: Obj, d: Obj) -> int:
    """``getReplicaSetFraction``: how many replicas ``rs`` gains (or loses) if it keeps its
    share of ``max-replicas`` once the Deployment can have ``replicas + maxSurge``."""
    replicas = d["spec"].get("replicas", 1)
    if replicas == 0:
        return -replicas_of(rs)
    surge, _ = fenceposts(d)
    try:
        annotated = int((rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS, ""))
    except ValueError:
        annotated = 0
    if annotated <= 0:  # no annotation: the Deployment's current size
        annotated = int((d.get("status") or {}).get("replicas", 0) or 0) or 1
    return _round(replicas_of(rs) * (replicas + surge) / annotated) - replicas_of(rs)


def get_proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    """``GetProportion``: the fraction, bounded by what is still to be handed out."""
    if replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction, allowed = replica_set_fraction(rs, d), to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Obj, active: list[Obj]) -> tuple[list[tuple[Obj, int]], str]:
    """The proportional part of ``scale``: each active ReplicaSet's new size, in the order
    upstream updates them (larger first; of equal size the newer first when scaling up, the
    older first when scaling down), and the direction (``up``, ``down`` or empty). The
    leftover of rounding goes to the first."""
    replicas = d["spec"].get("replicas", 1)
    surge, _ = fenceposts(d)
    allowed = replicas + surge if replicas > 0 else 0
    to_add = allowed - sum(replicas_of(rs) for rs in active)
    if to_add > 0:  # ReplicaSetsBySizeNewer
        ordered = sorted(active, key=_by_creation, reverse=True)
        operation = "up"
    elif to_add < 0:  # ReplicaSetsBySizeOlder
        ordered = sorted(active, key=_by_creation)
        operation = "down"
    else:
        ordered, operation = list(active), ""
    ordered.sort(key=replicas_of, reverse=True)  # stable: ties keep the order above
    sizes: list[int] = []
    added = 0
    for rs in ordered:
        proportion = get_proportion(rs, d, to_add, added)
        sizes.append(replicas_of(rs) + proportion)
        added += proportion
    if ordered and to_add:
        sizes[0] = max(sizes[0] + to_add - added, 0)
    return list(zip(ordered, sizes, strict=True)), operation
