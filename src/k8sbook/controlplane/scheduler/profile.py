"""Scheduler profiles: the default plugin list, and the refusal of a profile naming an unknown one.

Mirrors the default profile of ``pkg/scheduler/apis/config/v1/default_plugins.go`` and the
framework's refusal of a profile that names a plugin it does not know
(``framework/runtime/framework.go``, ``NewFramework``). It sits above the plugins: it asks their
registry (:data:`k8sbook.controlplane.scheduler.plugins.REGISTRY`) which names exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8sbook.controlplane.scheduler.plugins import REGISTRY

#: The ``MultiPoint`` list of the default profile (v1 API, v1.35), in order, with score weights.
#: The in-tree volume-limit plugins (EBSLimits, GCEPDLimits, AzureDiskLimits, CinderLimits) left
#: the defaults in v1.31 (kubernetes#124500) and the scheduler in v1.32 (kubernetes#124003):
#: NodeVolumeLimits reads each CSI driver's limit from CSINode instead.
DEFAULT_MULTIPOINT: tuple[tuple[str, int], ...] = (
    ("SchedulingGates", 0), ("PrioritySort", 0), ("NodeUnschedulable", 0), ("NodeName", 0),
    ("TaintToleration", 3), ("NodeAffinity", 2), ("NodePorts", 0), ("NodeResourcesFit", 1),
    ("VolumeRestrictions", 0), ("NodeVolumeLimits", 0),
    ("VolumeBinding", 0), ("VolumeZone", 0), ("PodTopologySpread", 2),
    ("InterPodAffinity", 2), ("DynamicResources", 0), ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1), ("ImageLocality", 1), ("DefaultBinder", 0),
)


class SchedulerConfigError(ValueError):
    """The scheduler refuses to start with this configuration."""


@dataclass
class Profile:
    """A ``KubeSchedulerProfile``: a scheduler name and its enabled plugins with weights."""

    scheduler_name: str = "default-scheduler"
    plugins: tuple[tuple[str, int], ...] = ()
    #: plugins enabled at the filter and score extension points besides MultiPoint
    filter: tuple[str, ...] = ()
    score: tuple[tuple[str, int], ...] = ()
    percentage_of_nodes_to_score: int = 0

    def __post_init__(self) -> None:
        if not self.plugins:
            self.plugins = model_default_plugins()


def model_default_plugins() -> tuple[tuple[str, int], ...]:
    """The default ``MultiPoint`` list minus the plugins the model does not implement."""
    return tuple((n, w) for n, w in DEFAULT_MULTIPOINT if n in REGISTRY)


def validate_profile(profile: Profile) -> None:
    """What ``frameworkruntime.NewFramework`` refuses: a plugin name it has no factory for."""
    for point, names in (("FilterPlugin", profile.filter), ("ScorePlugin",
                                                            [n for n, _ in profile.score])):
        for name in names:
            if name not in REGISTRY:
                raise SchedulerConfigError(f'{point} "{name}" does not exist')
    for name, _ in profile.plugins:
        if name not in REGISTRY:
            # MultiPoint expansion walks the extension points, PreFilter first
            raise SchedulerConfigError(f'PreFilterPlugin "{name}" does not exist')
