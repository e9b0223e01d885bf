"""The in-tree plugins the model runs, with the real reasons they give.

Mirrors ``pkg/scheduler/framework/plugins``, one module per plugin package as upstream lays
them out: :mod:`.nodeunschedulable`, :mod:`.nodename`, :mod:`.tainttoleration`,
:mod:`.nodeaffinity`, :mod:`.nodeports`, :mod:`.noderesources` (``Fit`` with the
``LeastAllocated`` strategy, cpu and memory weighted 1, and ``BalancedAllocation``),
:mod:`.imagelocality` and :mod:`.defaultpreemption`; ``queuesort`` (``PrioritySort``),
``schedulinggates`` and ``dynamicresources`` (only its PostFilter: the model serves no
ResourceClaims) have no code of their own here. A Filter returns a
:class:`~k8sbook.controlplane.scheduler.framework.Status`; a Score returns a raw number per
node that the plugin then normalises to 0..100, for the nodes in the order it was given them.
Each Filter is also a :class:`~k8sbook.controlplane.scheduler.framework.FilterPlugin`
(:data:`FILTER_PLUGINS`): PreFilter reads the pod once per scheduling cycle, or says Skip
when the Filter would pass every node (NodeAffinity without a selector or required terms,
NodePorts without host ports, as upstream; NodeName without a node name), and the Filter
then judges each node from that state.

Left out (the model serves no volumes and draws no topology): the volume plugins,
``PodTopologySpread`` and ``InterPodAffinity``. They are in the real default profile with
weights 2 and 2; a pod with no volumes, no spread constraints and no pod (anti-)affinity would
pass their filters, but ``PodTopologySpread``'s default constraints would still add to scores.
"""

from __future__ import annotations

from k8sbook.controlplane.scheduler.framework import (
    FilterFn,
    FilterPlugin,
    ScoreFn,
    histogram,
    pod_priority,
)
from k8sbook.controlplane.scheduler.plugins import (
    imagelocality,
    nodeaffinity,
    nodename,
    nodeports,
    noderesources,
    nodeunschedulable,
    tainttoleration,
)
from k8sbook.controlplane.scheduler.plugins.defaultpreemption import (
    pick_one_node_for_preemption,
    preemption_candidates,
)
from k8sbook.controlplane.scheduler.plugins.nodeaffinity import node_selector_term_matches

#: filter plugins in the order of the default profile
FILTERS: dict[str, FilterFn] = {
    "NodeUnschedulable": nodeunschedulable.filter,
    "NodeName": nodename.filter,
    "TaintToleration": tainttoleration.filter,
    "NodeAffinity": nodeaffinity.filter,
    "NodePorts": nodeports.filter,
    "NodeResourcesFit": noderesources.fit_filter,
}

#: the same plugins split into PreFilter and Filter, as the scheduling cycle runs them
FILTER_PLUGINS: dict[str, FilterPlugin] = {
    "NodeUnschedulable": nodeunschedulable.PLUGIN,
    "NodeName": nodename.PLUGIN,
    "TaintToleration": tainttoleration.PLUGIN,
    "NodeAffinity": nodeaffinity.PLUGIN,
    "NodePorts": nodeports.PLUGIN,
    "NodeResourcesFit": noderesources.PLUGIN,
}

SCORES: dict[str, ScoreFn] = {
    "TaintToleration": tainttoleration.score,
    "NodeAffinity": nodeaffinity.score,
    "NodeResourcesFit": noderesources.least_allocated_score,
    "NodeResourcesBalancedAllocation": noderesources.balanced_allocation_score,
    "ImageLocality": imagelocality.score,
}

#: every plugin the model implements, at whatever extension points it has
REGISTRY = frozenset({"SchedulingGates", "PrioritySort", "DynamicResources",
                      "DefaultPreemption", "DefaultBinder", *FILTERS, *SCORES})

__all__ = ["FILTERS", "FILTER_PLUGINS", "REGISTRY", "SCORES", "histogram", "node_selector_term_matches",
           "pick_one_node_for_preemption", "pod_priority", "preemption_candidates"]
