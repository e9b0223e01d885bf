"""kube-scheduler (``pkg/scheduler``): see :mod:`k8sbook.controlplane.scheduler.scheduler`."""

from k8sbook.controlplane.scheduler.framework import num_feasible_nodes_to_find
from k8sbook.controlplane.scheduler.profile import (
    DEFAULT_MULTIPOINT,
    Profile,
    SchedulerConfigError,
)
from k8sbook.controlplane.scheduler.scheduler import KubeScheduler

__all__ = ["DEFAULT_MULTIPOINT", "KubeScheduler", "Profile", "SchedulerConfigError",
           "num_feasible_nodes_to_find"]
