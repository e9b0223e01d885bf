"""The garbage collector: deletes what lost its owner, honouring the deletion's propagation.

Mirrors ``pkg/controller/garbagecollector`` (``garbagecollector.go``, ``graph_builder.go``,
``graph.go``, ``operations.go``, ``patch.go``). The ``GraphBuilder`` watches **every
resource that can be deleted, listed and watched** (``GetDeletableResources`` from
discovery, minus ``events``: ``DefaultIgnoredResources``): one informer, so one watch, per
resource type, shared with the other controllers where they watch the same type. From the
``ownerReferences`` it sees it keeps a graph of nodes (one per object uid; an owner it has not
seen yet is a *virtual* node, to be verified). Two queues feed two workers:

* ``attemptToDelete``: for an object whose owner went away, or that waits for its dependents.
  The worker GETs the object live, then GETs each owner live (``isDangling``: a 404 or
  another uid means the owner is gone). With a *solid* owner left it only patches the gone
  ones out of ``ownerReferences`` (a strategic merge patch ``$patch: delete`` by uid);
  otherwise it DELETEs the object, with ``preconditions.uid``, in the background (or
  foreground or orphan if the object has that finalizer; foreground when its owner waits in
  the foreground and it has dependents itself). An owner being deleted in the foreground
  (``deletionTimestamp`` and the ``foregroundDeletion`` finalizer the apiserver set for
  ``propagationPolicy: Foreground``) waits until no dependent with ``blockOwnerDeletion:
  true`` is left, then loses the finalizer and the apiserver deletes it.
* ``attemptToOrphan``: for an owner deleted with ``propagationPolicy: Orphan`` (finalizer
  ``orphan``): each dependent is patched to drop the reference, then the finalizer goes.

Simplified: metadata-only informers (``PartialObjectMetadata``) are full informers here; the
absent-owner cache and the periodic rediscovery of resources (every 30 s) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from k8sbook.api.patch import MERGE
from k8sbook.api.resources import RESOURCES, by_kind
from k8sbook.api.strategicpatch import STRATEGIC
from k8sbook.client.informer import SharedIndexInformer, final_state
from k8sbook.client.rest import Client
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.controlplane.controllers import Obj
from k8sbook.core.status import StatusError

NAME = "generic-garbage-collector"
ORPHAN, FOREGROUND = "orphan", "foregroundDeletion"
#: ``DefaultIgnoredResources``: never collected, never watched
IGNORED = ("events",)


@dataclass
class Node:
    """``node`` in graph.go: an object's identity, its owners and its dependents."""

    uid: str
    kind: str
    api_version: str
    namespace: str
    name: str
    owners: list[Obj] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)
    virtual: bool = False
    being_deleted: bool = False
    deleting_dependents: bool = False


def _deleting_with(obj: Obj, finalizer: str) -> bool:
    meta = obj.get("metadata", {})
    return bool(meta.get("deletionTimestamp")) and finalizer in (meta.get("finalizers") or [])


class GarbageCollector:
    def __init__(self, client: Client, informers: dict[str, SharedIndexInformer]) -> None:
        self.client = client
        #: resource -> the informer it watches with (one watch each)
        self.informers = informers
        self.graph: dict[str, Node] = {}
        self.attempt_to_delete = RateLimitingQueue(client.clock,
                                                   "garbage_collector_attempt_to_delete")
        self.attempt_to_orphan = RateLimitingQueue(client.clock,
                                                   "garbage_collector_attempt_to_orphan")
        #: (time, action, object) for every delete, patch and finalizer removal it sends
        self.log: list[tuple[float, str, str]] = []
        for inf in informers.values():
            inf.add_event_handler(lambda o: self.process_graph_change(None, o),
                                  lambda old, new: self.process_graph_change(old, new),
                                  lambda o: self.process_delete(final_state(o)))

    def run(self) -> None:
        self.attempt_to_delete.run_worker(self.attempt_to_delete_item)
        self.attempt_to_orphan.run_worker(self.attempt_to_orphan_item)

    def stop(self) -> None:
        self.attempt_to_delete.shut_down()
        self.attempt_to_orphan.shut_down()

    # -- the GraphBuilder -----------------------------------------------------------------
    def process_graph_change(self, old: Obj | None, obj: Obj) -> None:
        """``processGraphChanges`` for an add or update event."""
        meta = obj["metadata"]
        refs = list(meta.get("ownerReferences") or [])
        n = self.graph.get(meta["uid"])
        if n is None:
            n = Node(meta["uid"], obj["kind"], obj["apiVersion"], meta.get("namespace", ""),
                     meta["name"])
            self.graph[n.uid] = n
            self._add_to_owners(n, refs)
        else:
            if n.virtual:
                n.virtual = False  # observed: it exists after all
            if refs != n.owners:
                old_uids = {r["uid"] for r in n.owners}
                new_uids = {r["uid"] for r in refs}
                for ref in n.owners:
                    owner = self.graph.get(ref["uid"])
                    if ref["uid"] not in new_uids and owner is not None:
                        owner.dependents.discard(n.uid)
                        if owner.deleting_dependents:  # addUnblockedOwnersToDeleteQueue
                            self.attempt_to_delete.add(owner.uid)
                self._add_to_owners(n, [r for r in refs if r["uid"] not in old_uids])
        n.owners = refs
        n.being_deleted = bool(meta.get("deletionTimestamp"))
        # processTransitions
        if _deleting_with(obj, ORPHAN) and not (old and _deleting_with(old, ORPHAN)):
            self.attempt_to_orphan.add(n.uid)
        elif _deleting_with(obj, FOREGROUND) and not (old and _deleting_with(old, FOREGROUND)):
            n.deleting_dependents = True
            for dep in sorted(n.dependents):
                self.attempt_to_delete.add(dep)
            self.attempt_to_delete.add(n.uid)

    def _add_to_owners(self, n: Node, refs: list[Obj]) -> None:
        """``addDependentToOwners``: an owner not seen yet becomes a virtual node to verify."""
        for ref in refs:
            owner = self.graph.get(ref["uid"])
            if owner is None:
                rt = by_kind(ref["kind"]) if _served(ref["kind"]) else None
                owner = Node(ref["uid"], ref["kind"], ref["apiVersion"],
                             n.namespace if rt is not None and rt.namespaced else "",
                             ref["name"], virtual=True)
                self.graph[owner.uid] = owner
                self.attempt_to_delete.add(owner.uid)
            owner.dependents.add(n.uid)

    def process_delete(self, obj: Obj) -> None:
        """``processGraphChanges`` for a delete event: the dependents are checked."""
        n = self.graph.pop(obj["metadata"]["uid"], None)
        if n is not None:
            self._remove(n)

    def _remove(self, n: Node) -> None:
        self.graph.pop(n.uid, None)
        for ref in n.owners:
            owner = self.graph.get(ref["uid"])
            if owner is not None:
                owner.dependents.discard(n.uid)
                if owner.deleting_dependents:
                    self.attempt_to_delete.add(owner.uid)
        for dep in sorted(n.dependents):
            self.attempt_to_delete.add(dep)

    # -- attemptToDelete ------------------------------------------------------------------
    def _get(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return self.client.get(by_kind(kind).plural, name, namespace)
        except StatusError as err:
            if err.code == 404:
                return None
            raise

    def attempt_to_delete_item(self, uid: Any) -> None:
        """``attemptToDeleteItem``."""
        n = self.graph.get(uid)
        if n is None or (n.being_deleted and not n.deleting_dependents):
            return
        if not _served(n.kind):
            return
        latest = self._get(n.kind, n.namespace, n.name)
        if latest is None or latest["metadata"]["uid"] != n.uid:
            if n.virtual:  # enqueueVirtualDeleteEvent: the owner never existed
                self._remove(n)
            return
        if n.deleting_dependents:
            return self._process_deleting_dependents(n, latest)
        refs = latest["metadata"].get("ownerReferences") or []
        if not refs:
            return
        if not all(_served(ref["kind"]) for ref in refs):
            # the RESTMapper cannot resolve an owner's kind: upstream logs it and retries,
            # and never takes an owner it cannot look up for a missing one
            return
        solid, dangling, waiting = [], [], []
        for ref in refs:  # classifyReferences, with isDangling's live GETs
            owner = self._get(ref["kind"], n.namespace if by_kind(ref["kind"]).namespaced
                              else "", ref["name"])
            if owner is None or owner["metadata"]["uid"] != ref["uid"]:
                dangling.append(ref)
            elif _deleting_with(owner, FOREGROUND):
                waiting.append(ref)
            else:
                solid.append(ref)
        if solid:
            if dangling or waiting:
                patch = {"metadata": {"uid": n.uid, "ownerReferences": [
                    {"$patch": "delete", "uid": r["uid"]} for r in dangling + waiting]}}
                self._send("patch ownerReferences", n, lambda: self.client.patch(
                    by_kind(n.kind).plural, n.name, patch, n.namespace,
                    content_type=STRATEGIC))
            return
        if waiting and n.dependents:
            policy = "Foreground"  # so that it blocks its own owner in turn
        else:
            finalizers = latest["metadata"].get("finalizers") or []
            policy = "Orphan" if ORPHAN in finalizers else \
                "Foreground" if FOREGROUND in finalizers else "Background"
        self._send(f"delete ({policy})", n, lambda: self.client.delete(
            by_kind(n.kind).plural, n.name, n.namespace, propagationPolicy=policy,
            preconditions={"uid": n.uid}))

    def _process_deleting_dependents(self, n: Node, latest: Obj) -> None:
        """``processDeletingDependentsItem``: the finalizer goes once nothing blocks."""
        blocking = [d for uid in sorted(n.dependents) if (d := self.graph.get(uid)) and any(
            r["uid"] == n.uid and r.get("blockOwnerDeletion") for r in d.owners)]
        if not blocking:
            self._remove_finalizer(n, latest, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.attempt_to_delete.add(dep.uid)

    def _remove_finalizer(self, n: Node, latest: Obj, finalizer: str) -> None:
        finalizers = [f for f in latest["metadata"].get("finalizers") or [] if f != finalizer]
        patch = {"metadata": {"finalizers": finalizers or None,
                              "resourceVersion": latest["metadata"]["resourceVersion"]}}
        self._send(f"remove finalizer {finalizer}", n, lambda: self.client.patch(
            by_kind(n.kind).plural, n.name, patch, n.namespace, content_type=MERGE))

    def _send(self, action: str, n: Node, request: Any) -> None:
        try:
            request()
        except StatusError as err:
            if err.code != 404:  # gone already: nothing left to do
                raise
        self.log.append((self.client.clock.now(), action,
                         f"{n.kind} {n.namespace + '/' if n.namespace else ''}{n.name}"))

    # -- attemptToOrphan ------------------------------------------------------------------
    def attempt_to_orphan_item(self, uid: Any) -> None:
        """``attemptToOrphanWorker``: dependents lose the reference, then the owner its
        ``orphan`` finalizer."""
        n = self.graph.get(uid)
        if n is None:
            return
        for dep_uid in sorted(n.dependents):
            dep = self.graph.get(dep_uid)
            if dep is None or not _served(dep.kind):
                continue
            patch = {"metadata": {"uid": dep.uid, "ownerReferences": [
                {"$patch": "delete", "uid": n.uid}]}}
            self._send("patch ownerReferences", dep, lambda d=dep, p=patch: self.client.patch(
                by_kind(d.kind).plural, d.name, p, d.namespace, content_type=STRATEGIC))
        latest = self._get(n.kind, n.namespace, n.name)
        if latest is not None and latest["metadata"]["uid"] == n.uid:
            self._remove_finalizer(n, latest, ORPHAN)


def _served(kind: str) -> bool:
    try:
        by_kind(kind)
    except KeyError:
        return False
    return True


def deletable_resources() -> list[str]:
    """``GetDeletableResources`` minus the ignored ones: what the collector watches (from
    the model's resource table, where upstream asks discovery)."""
    return sorted(rt.plural for rt in RESOURCES if {"delete", "list", "watch"} <=
                  set(rt.verbs) and rt.plural not in IGNORED)
