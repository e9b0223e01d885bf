"""Taints and tolerations: which toleration tolerates which taint, in one place.

Mirrors ``Toleration.ToleratesTaint`` (``k8s.io/api/core/v1/toleration.go``) and the helpers
of ``k8s.io/component-helpers/scheduling/corev1`` (``helpers.go``):
``TolerationsTolerateTaint`` and ``FindMatchingUntoleratedTaint``. kube-scheduler's
``TaintToleration`` plugin, the taint eviction controller, the descheduler's
``RemovePodsViolatingNodeTaints`` and the kubelet's admission all call these.

The rules of ``ToleratesTaint``: an empty ``effect`` matches every effect, an empty ``key``
matches every key (validation allows that only with ``operator: Exists``), ``Exists``
matches any value and ``Equal`` (the default) needs the same value. Simplified: the
``Gt``/``Lt`` operators of KEP-5471 (alpha in v1.35 behind the feature gate
``TaintTolerationComparisonOperators``, off by default) are not modelled: an operator other
than ``Exists`` and ``Equal`` tolerates nothing, as with the gate off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Obj = dict[str, Any]

NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "PreferNoSchedule", "NoExecute"


def tolerates_taint(toleration: Obj, taint: Obj) -> bool:
    """``Toleration.ToleratesTaint``."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerations_tolerate_taint(tolerations: Iterable[Obj], taint: Obj) -> bool:
    """``TolerationsTolerateTaint``: some toleration of the list tolerates ``taint``."""
    return any(tolerates_taint(t, taint) for t in tolerations)


def find_matching_untolerated_taint(taints: Iterable[Obj], tolerations: Iterable[Obj],
                                    inclusion: Callable[[Obj], bool] | None = None) -> \
        Obj | None:
    """``FindMatchingUntoleratedTaint``: the first taint that ``inclusion`` keeps and no
    toleration tolerates, or ``None``."""
    tols = list(tolerations)
    for taint in taints:
        if inclusion is not None and not inclusion(taint):
            continue
        if not tolerations_tolerate_taint(tols, taint):
            return taint
    return None


def untolerated_taints(pod: Obj, node: Obj, effects: tuple[str, ...]) -> list[Obj]:
    """Every taint of ``node`` with one of ``effects`` that ``pod`` does not tolerate."""
    tols = list(pod.get("spec", {}).get("tolerations") or [])
    return [t for t in node.get("spec", {}).get("taints") or []
            if t.get("effect") in effects and not tolerations_tolerate_taint(tols, t)]


def matching_tolerations(pod: Obj, taint: Obj) -> list[Obj]:
    """The pod's tolerations that tolerate ``taint`` (the taint eviction controller reads
    their ``tolerationSeconds``: ``getMatchingTolerations``)."""
    return [t for t in pod.get("spec", {}).get("tolerations") or [] if tolerates_taint(t, taint)]
