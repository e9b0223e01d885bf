"""The namespace controller: empties a namespace being deleted, then lets it go.

Mirrors ``pkg/controller/namespace`` (``namespace_controller.go`` and
``deletion/namespaced_resources_deleter.go``, ``deletion/status_condition_utils.go``). A
DELETE of a Namespace only marks it (``deletionTimestamp``, ``status.phase: Terminating``;
the NamespaceLifecycle admission plugin then refuses new content) because its
``spec.finalizers`` holds ``kubernetes``. The controller, watching Namespaces, then

1. GETs the namespace live, and for every namespaced resource that can be listed and deleted
   (upstream asks discovery), LISTs it in the namespace and DELETEs each item with
   ``propagationPolicy: Background`` (``deleteEachItem``: the model serves no
   ``deletecollection``);
2. LISTs again and writes ``status.conditions``: ``NamespaceDeletionDiscoveryFailure``,
   ``NamespaceDeletionGroupVersionParsingFailure``, ``NamespaceDeletionContentFailure``,
   ``NamespaceContentRemaining`` (``SomeResourcesRemain``: ``pods. has 2 resource
   instances``, resource and group joined by a dot) and ``NamespaceFinalizersRemaining``, with upstream's reasons and messages;
3. while something remains (pods terminating gracefully, objects held by finalizers) tries
   again after ``estimate/2 + 1`` seconds (the longest pod grace period, or 15 s for
   finalizers: ``finalizerEstimateSeconds``);
4. when nothing remains, removes ``kubernetes`` from ``spec.finalizers`` with a PUT to
   ``namespaces/<name>/finalize``; with no finalizer left the apiserver deletes the
   Namespace (``ShouldDeleteNamespaceDuringUpdate``), and ``kubectl delete ns`` returns.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api.resources import RESOURCES, ResourceType
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj, QueueController
from k8sbook.core.status import StatusError

NAME = "namespace-controller"
FINALIZER = "kubernetes"
#: ``finalizerEstimateSeconds``: how long to wait for content held by finalizers
FINALIZER_ESTIMATE = 15
#: condition type -> (reason, message) when False, the order upstream writes them
OK_CONDITIONS = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered",
                                          "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions",
                                                    "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": (
        "ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentHasNoFinalizers",
                                     "All content-preserving finalizers finished"),
}


def namespaced_resources() -> list[ResourceType]:
    """What the deleter empties: namespaced, listable, deletable (sorted by group, plural)."""
    return sorted((rt for rt in RESOURCES if rt.namespaced and {"list", "delete"} <=
                   set(rt.verbs)), key=lambda rt: (rt.group, rt.plural))


class NamespaceController(QueueController):
    def __init__(self, client: Client, ns_informer: SharedIndexInformer) -> None:
        super().__init__(client, "namespace")
        self.ns_informer = ns_informer
        ns_informer.add_event_handler(self._enqueue, lambda old, new: self._enqueue(new))

    def _enqueue(self, ns: Obj) -> None:
        """Only namespaces being deleted have work."""
        if ns["metadata"].get("deletionTimestamp"):
            self.enqueue(ns)

    def sync(self, key: Any) -> None:
        """``syncNamespaceFromKey`` -> ``namespacedResourcesDeleter.Delete``."""
        try:
            ns = self.client.get("namespaces", key)
        except StatusError as err:
            if err.code == 404:
                return
            raise
        if not ns["metadata"].get("deletionTimestamp") or \
                FINALIZER not in (ns.get("spec") or {}).get("finalizers", []):
            return
        estimate = self.delete_all_content(ns)
        if estimate > 0:
            self.queue.add_after(key, estimate // 2 + 1)
            return
        ns = self.client.get("namespaces", key)
        ns["spec"]["finalizers"] = [f for f in ns["spec"].get("finalizers", [])
                                    if f != FINALIZER]
        self.client.update(ns, "finalize")

    def delete_all_content(self, ns: Obj) -> int:
        """``deleteAllContent``: the seconds to wait before looking again (0: all gone)."""
        name = ns["metadata"]["name"]
        estimate, failed = 0, []
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for rt in namespaced_resources():
            try:
                items = self.client.list(rt.plural + (f".{rt.group}" if rt.group else ""),
                                         name)["items"]
                for obj in items:
                    if not obj["metadata"].get("deletionTimestamp"):
                        self._delete(rt, obj)
                left = self.client.list(rt.plural + (f".{rt.group}" if rt.group else ""),
                                        name)["items"]
            except StatusError as err:
                failed.append(f"{rt.plural}.{rt.group}: {err.status.get('message', '')}")
                continue
            if not left:
                continue
            remaining[f"{rt.plural}.{rt.group}"] = len(left)  # "pods." as upstream prints
            if rt.kind == "Pod":  # estimateGracefulTermination
                estimate = max([estimate] + [int(p["spec"].get(
                    "terminationGracePeriodSeconds", 30)) for p in left])
            for obj in left:
                for f in obj["metadata"].get("finalizers") or []:
                    finalizers[f] = finalizers.get(f, 0) + 1
                    estimate = max(estimate, FINALIZER_ESTIMATE)
        self._update_conditions(ns, failed, remaining, finalizers)
        if failed:
            raise RuntimeError(f"failed to delete all resource types in namespace {name}")
        return estimate if remaining or estimate else 0

    def _delete(self, rt: ResourceType, obj: Obj) -> None:
        try:
            self.client.delete(rt.plural + (f".{rt.group}" if rt.group else ""),
                               obj["metadata"]["name"], obj["metadata"]["namespace"],
                               propagationPolicy="Background")
        except StatusError as err:
            if err.code not in (404, 409):
                raise

    def _update_conditions(self, ns: Obj, failed: list[str], remaining: dict[str, int],
                           finalizers: dict[str, int]) -> None:
        """``updateResourcesRemaining`` & co.: one condition of each type, True on trouble."""
        true: dict[str, tuple[str, str]] = {}
        if failed:
            true["NamespaceDeletionContentFailure"] = (
                "ContentDeletionFailed", (f"Failed to delete all resource types, {len(failed)} "
                f"remaining: {', '.join(sorted(failed))}"))
        if remaining:
            true["NamespaceContentRemaining"] = ("SomeResourcesRemain", "Some resources are "
                "remaining: " + ", ".join(f"{r} has {n} resource instances"
                                          for r, n in sorted(remaining.items())))
        if finalizers:
            true["NamespaceFinalizersRemaining"] = ("SomeFinalizersRemain", "Some content in "
                "the namespace has finalizers remaining: " + ", ".join(
                    f"{f} in {n} resource instances" for f, n in sorted(finalizers.items())))
        old = {c["type"]: c for c in (ns.get("status") or {}).get("conditions", []) or []}
        now = self.client.clock.timestamp()
        conditions = []
        for kind, (reason, message) in OK_CONDITIONS.items():
            status, (reason, message) = ("True", true[kind]) if kind in true else \
                ("False", (reason, message))
            prev = old.get(kind)
            same = prev is not None and (prev["status"], prev["reason"], prev["message"]) == \
                (status, reason, message)
            conditions.append(prev if same else {
                "type": kind, "status": status, "lastTransitionTime": now, "reason": reason,
                "message": message})
        if conditions == list(old.values()):
            return
        new = copy.deepcopy(ns)
        new["status"]["conditions"] = conditions
        try:
            self.client.update_status(new)
        except StatusError as err:
            if err.code not in (404, 409):
                raise
