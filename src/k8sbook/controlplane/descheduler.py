"""A descheduler: it finds pods that sit badly and evicts them, and nothing else.

Mirrors the out-of-tree ``kubernetes-sigs/descheduler`` (``pkg/descheduler``): every
``deschedulingInterval`` it looks at the pods and nodes its informers cache, runs its
plugins, and asks kube-apiserver to *evict* the pods they pick, through the Eviction API
(``POST pods/<name>/eviction``, ``policy/v1``), exactly as ``kubectl drain`` does. It never
binds, never schedules, never talks to a kubelet or to kube-scheduler: the evicted pod's owner
creates a replacement and kube-scheduler places it like any new pod. A PodDisruptionBudget
that allows no disruption makes the apiserver answer ``429 TooManyRequests``; the descheduler
leaves that pod alone until its next run.

Two of its plugins are here: ``RemoveDuplicates`` (more pods of one owner on a node than an
even spread over the nodes would put there) and ``RemovePodsViolatingNodeTaints`` (a pod on a
node whose ``NoSchedule`` taints it does not tolerate). The ``DefaultEvictor`` filter keeps
pods without an owner, pods owned by a DaemonSet and system-critical pods (priority at least
2000000000) out of reach. It authenticates as the ServiceAccount ``kube-system/descheduler-sa``
with the ClusterRole of the project's ``kubernetes/base/rbac.yaml``.

Simplified: no ``nodeFit`` check, no per-node or per-namespace eviction limits, no events, no
leader election (the project runs it as one Deployment, or as a Job/CronJob).
"""

from __future__ import annotations

import math
from typing import Any

from k8sbook.api.taints import NO_SCHEDULE, untolerated_taints
from k8sbook.apiserver import rbac
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import controller_of, is_pod_active
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError

Obj = dict[str, Any]
SYSTEM_CRITICAL_PRIORITY = 2000000000  # scheduling.SystemCriticalPriority

CLUSTER_ROLE: list[dict[str, list[str]]] = [
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "update"]},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "watch", "list"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "watch", "list"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list", "delete"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {"apiGroups": ["scheduling.k8s.io"], "resources": ["priorityclasses"],
     "verbs": ["get", "watch", "list"]},
]


def manifests() -> list[Obj]:
    """The descheduler's ServiceAccount, ClusterRole and binding (abridged: no lease rules)."""
    return rbac.service_account_manifests("descheduler-sa", "kube-system",
                                          "descheduler-cluster-role", CLUSTER_ROLE,
                                          binding="descheduler-cluster-role-binding")


def evictable(pod: Obj) -> str:
    """``DefaultEvictor``'s filter: "" if the pod may be evicted, else why not."""
    owner = controller_of(pod)
    if not pod["metadata"].get("ownerReferences"):
        return "pod does not have any ownerRefs"
    if owner and owner.get("kind") == "DaemonSet":
        return "pod is a DaemonSet pod"
    if int(pod["spec"].get("priority", 0) or 0) >= SYSTEM_CRITICAL_PRIORITY:
        return "pod has system critical priority"
    return ""


DEFAULT_PLUGINS = ("RemoveDuplicates", "RemovePodsViolatingNodeTaints")


class Descheduler:
    """The descheduler. ``client`` authenticates as ``kube-system/descheduler-sa``
    (:meth:`k8sbook.cluster.Cluster.add_descheduler` builds it)."""

    def __init__(self, client: Client, clock: Clock, *, interval: float = 300.0,
                 plugins: tuple[str, ...] = DEFAULT_PLUGINS) -> None:
        self.instance = client.instance
        self.clock = clock
        self.interval = interval
        self.plugins = plugins
        self.client = client
        self.pods = SharedIndexInformer(self.client, "pods")
        self.nodes = SharedIndexInformer(self.client, "nodes")
        self._timer: Any = None
        #: (time, pod key, plugin, result) for every eviction asked for
        self.evictions: list[tuple[float, str, str, str]] = []

    def start(self, first_run_after: float | None = None) -> None:
        self.nodes.run()
        self.pods.run()
        delay = self.interval if first_run_after is None else first_run_after
        self._timer = self.clock.call_later(delay, self._tick, "descheduler")

    def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
        self.pods.stop()
        self.nodes.stop()

    def _tick(self) -> None:
        self.run_once()
        self._timer = self.clock.call_later(self.interval, self._tick, "descheduler")

    # -- plugins -------------------------------------------------------------------------
    def remove_duplicates(self, pods: list[Obj], nodes: list[Obj]) -> list[Obj]:
        """Pods of one owner beyond ceil(count / nodes) on any single node."""
        groups: dict[tuple[str, str, str], dict[str, list[Obj]]] = {}
        for p in pods:
            owner = controller_of(p)
            if owner is None:
                continue
            images = ",".join(sorted(c.get("image", "") for c in p["spec"]["containers"]))
            key = (p["metadata"]["namespace"], f"{owner['kind']}/{owner['name']}", images)
            groups.setdefault(key, {}).setdefault(p["spec"]["nodeName"], []).append(p)
        victims = []
        for key in sorted(groups):
            by_node = groups[key]
            total = sum(len(v) for v in by_node.values())
            upper = math.ceil(total / max(len(nodes), 1))
            for node in sorted(by_node):
                on = sorted(by_node[node], key=lambda p: p["metadata"]["name"])
                victims += on[upper:]
        return victims

    def remove_pods_violating_node_taints(self, pods: list[Obj], nodes: list[Obj]) -> list[Obj]:
        by_name = {n["metadata"]["name"]: n for n in nodes}
        return [p for p in pods if p["spec"]["nodeName"] in by_name
                and untolerated_taints(p, by_name[p["spec"]["nodeName"]], (NO_SCHEDULE,))]

    def run_once(self) -> list[tuple[float, str, str, str]]:
        """One descheduling cycle: pick pods, ask for their eviction."""
        nodes = self.nodes.indexer.list()
        pods = [p for p in self.pods.indexer.list()
                if p["spec"].get("nodeName") and is_pod_active(p) and not evictable(p)]
        done = len(self.evictions)
        seen: set[str] = set()
        for plugin in self.plugins:
            fn = {"RemoveDuplicates": self.remove_duplicates,
                  "RemovePodsViolatingNodeTaints": self.remove_pods_violating_node_taints}[plugin]
            for pod in fn(pods, nodes):
                meta = pod["metadata"]
                key = f"{meta['namespace']}/{meta['name']}"
                if key in seen:
                    continue
                seen.add(key)
                try:
                    self.client.evict(meta["namespace"], meta["name"])
                    result = "evicted"
                except StatusError as err:
                    result = f"{err.code} {err.reason}"
                except DialError as err:
                    result = err.result  # what the network said: refused, i/o timeout
                self.evictions.append((round(self.clock.now(), 6), key, plugin, result))
        return self.evictions[done:]
