"""kube-scheduler (``pkg/scheduler``): see :mod:`k8sbook.scheduler.scheduler`."""

from .framework import (
    DEFAULT_MULTIPOINT,
    Profile,
    SchedulerConfigError,
    num_feasible_nodes_to_find,
)
from .scheduler import KubeScheduler

__all__ = ["DEFAULT_MULTIPOINT", "KubeScheduler", "Profile", "SchedulerConfigError",
           "num_feasible_nodes_to_find"]
