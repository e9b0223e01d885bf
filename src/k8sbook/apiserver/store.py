"""The generic registry verbs of the model's kube-apiserver.

Mirrors ``k8s.io/apiserver/pkg/registry/generic/registry`` (``Store``: ``Get``, ``List``,
``Watch``, ``Create``, ``Update`` through ``GuaranteedUpdate``, ``Delete`` with graceful
deletion and finalizers) and the request checks of ``endpoints/handlers`` (``create.go``,
``update.go``, ``patch.go``, ``delete.go``: the body's kind and apiVersion, the namespace on the
URL, optimistic concurrency on ``resourceVersion``, delete preconditions). Reads at
``resourceVersion=""`` or ``resourceVersionMatch=Exact`` go to etcd; others are served from the
watch cache (``storage/cacher``). Service cluster IPs and node ports are allocated on create
(``pkg/registry/core/service/ipallocator``). Every create, update and patch records its
writer in ``managedFields``, and an apply patch is served by the field manager
(:mod:`k8sbook.apiserver.fieldmanager`); writes with ``dryRun=All`` go to a storage that only
checks (:mod:`k8sbook.apiserver.dryrun`); lists with ``limit``/``continue`` page through etcd
(:mod:`k8sbook.apiserver.pagination`); a DELETE that removes the object answers a ``Status``
``Success`` unless the registry returns deleted objects (pods, services, service accounts,
namespaces: ``ReturnDeletedObject``). :class:`Store` is a part of
:class:`k8sbook.apiserver.server.APIServer`.

This module is over 400 lines: it holds every generic verb, as upstream's ``Store`` does;
what can stand alone (options, dry run, pagination, the field manager, triggers, the
registry strategies) already does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from k8sbook.api import decoding, selectors, validation
from k8sbook.api import patch as patching
from k8sbook.api.request import Request, Response, UserInfo
from k8sbook.api.resources import ResourceType
from k8sbook.apiserver import certificates, fieldmanager, options, pagination, registry, triggers
from k8sbook.apiserver.dryrun import DryRunStorage
from k8sbook.core.clock import Clock
from k8sbook.core.ids import IdGenerator
from k8sbook.core.status import (
    OPTIMISTIC_LOCK_MESSAGE,
    StatusError,
    bad_request,
    conflict,
    invalid,
    not_found,
    status_object,
    success_status,
    timeout,
)
from k8sbook.storage.cacher import WatchCache
from k8sbook.storage.etcd3 import Storage

#: kube-apiserver's ``--event-ttl`` default: Events are written with a one-hour etcd lease.
EVENT_TTL = 3600
#: kinds whose registry sets ``ReturnDeletedObject: true`` (``pkg/registry/core/{pod,service,
#: serviceaccount,namespace}/storage``): a DELETE that removes one answers with the object;
#: for the others ``finalizeDelete`` answers a ``Status`` ``Success`` naming it
RETURN_DELETED_OBJECT = ("Pod", "Service", "ServiceAccount", "Namespace")


class APIServerPart:
    """A part of :class:`~k8sbook.apiserver.server.APIServer` (:class:`Store`,
    :class:`~k8sbook.apiserver.pod_subresources.PodSubresources`): what the server provides it."""

    if TYPE_CHECKING:  # provided by APIServer
        storage: Storage
        clock: Clock
        ids: IdGenerator
        ips: registry.IPAllocator
        caches: dict[str, WatchCache]

        def admit(self, op: str, rt: ResourceType, req: Request, user: UserInfo,
                  obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None: ...

        def cached_objects(self, plural: str,
                           group: str | None = None) -> list[dict[str, Any]]: ...


class Store(APIServerPart):
    """The generic verbs; mixed into :class:`~k8sbook.apiserver.server.APIServer`.

    Its public methods are the handler chain's REST handlers (``endpoints/handlers``:
    ``GetResource``, ``ListResource``, ``CreateResource``, ``UpdateResource``,
    ``PatchResource``, ``DeleteResource``, ``ListResource`` with ``watch=true``): ``*_resource
    (rt, req, user)`` for one authenticated, authorized request, called by
    :meth:`~k8sbook.apiserver.server.APIServer.handle`; :meth:`watch_cache` is a resource's
    cacher.
    """

    def writes(self, req: Request) -> Storage | DryRunStorage:
        """Where a write goes: etcd, or for ``dryRun=All`` nowhere (:mod:`.dryrun`); checks
        the handler checked the options (:mod:`.options`) before."""
        return DryRunStorage(self.storage) if options.dry_run(req.verb, req.params) \
            else self.storage

    def watch_cache(self, rt: ResourceType) -> WatchCache:
        """The watch cache (``storage/cacher``) serving ``rt``."""
        return self.caches[rt.plural if not rt.group else f"{rt.plural}.{rt.group}"]

    # -- reads -----------------------------------------------------------------------------
    def get_resource(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        obj = self.storage.get(rt.key(req.namespace, req.name))
        if obj is None:
            raise not_found(rt.plural, rt.group, req.name)
        return Response(200, obj)

    def _filter(self, rt: ResourceType, req: Request) -> Callable[[dict[str, Any]], bool]:
        labels = selectors.parse_label_selector(req.params.get("labelSelector", ""))
        fields = selectors.parse_field_selector(req.params.get("fieldSelector", ""), rt.kind)

        def matches(obj: dict[str, Any]) -> bool:
            return (selectors.matches(labels, obj["metadata"].get("labels"))
                    and selectors.field_matches(fields, obj, rt.kind))
        return matches

    def list_resource(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        rv = str(req.params.get("resourceVersion", ""))
        match = req.params.get("resourceVersionMatch", "")
        matches = self._filter(rt, req)
        if match and not rv:
            raise invalid("ListOptions", "meta.k8s.io", "", [validation.forbidden(
                "resourceVersionMatch", "resourceVersionMatch is forbidden unless "
                "resourceVersion is provided")])
        if match and match not in ("Exact", "NotOlderThan"):
            raise invalid("ListOptions", "meta.k8s.io", "", [validation.not_supported(
                "resourceVersionMatch", match, ["Exact", "NotOlderThan"])])
        if rv and not rv.isdigit():
            raise bad_request(f"invalid resource version: {rv!r}")
        ns = req.namespace if rt.namespaced else ""
        if req.params.get("continue") or (req.params.get("limit") and rv != "0"
                                          and match != "NotOlderThan"):
            # ``shouldDelegateList``: a paginated read goes to etcd; at ``resourceVersion=0``
            # or ``NotOlderThan`` the cache answers, and ignores the limit
            return pagination.list_page(self.storage, rt, req, ns, rv, matches)
        if rv == "" or match == "Exact":
            # a consistent read (or a read at one exact revision) goes to etcd
            items, rev = self.storage.list(rt.prefix(ns), int(rv) if match == "Exact" else 0)
            items = [o for o in items if matches(o)]
        else:
            cache = self.watch_cache(rt)
            if int(rv) > cache.revision:
                raise _too_large(rv, cache.revision)
            items, rev = cache.list(ns, matches)
        body = {"apiVersion": rt.api_version, "kind": f"{rt.kind}List",
                "metadata": {"resourceVersion": str(rev)}, "items": items}
        return Response(200, body)

    def watch_resource(self, rt: ResourceType, req: Request,
               on_event: Callable[[dict[str, Any] | None], None] | None) -> Response:
        if on_event is None:
            raise bad_request("a watch needs a consumer for its events")
        rv = str(req.params.get("resourceVersion", ""))
        if rv and not rv.isdigit():
            raise bad_request(f"invalid resource version: {rv!r}")
        cache = self.watch_cache(rt)
        if rv and int(rv) > cache.revision:
            raise _too_large(rv, cache.revision)
        matches = self._filter(rt, req)
        if req.name:
            inner = matches
            matches = lambda o: inner(o) and o["metadata"]["name"] == req.name
        timeout_s = req.params.get("timeoutSeconds")
        value = None
        if cache.trigger is not None:
            value = triggers.trigger_value(cache.trigger[0], selectors.parse_field_selector(
                req.params.get("fieldSelector", ""), rt.kind))
        # a streaming list (WatchList, on by default in client-go 1.35+, so kubectl 1.37)
        initial = bool(req.params.get("sendInitialEvents")) and \
            req.params.get("resourceVersionMatch") == "NotOlderThan" and \
            bool(req.params.get("allowWatchBookmarks"))
        watcher = cache.watch(req.namespace if rt.namespaced else "", matches, rv, on_event,
                              bookmarks=bool(req.params.get("allowWatchBookmarks")),
                              timeout=float(timeout_s) if timeout_s else None,
                              trigger_value=value, send_initial_events=initial)
        return Response(200, None, watcher)

    # -- writes ----------------------------------------------------------------------------
    def _check_body(self, rt: ResourceType, req: Request) -> dict[str, Any]:
        body = req.body
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        decoding.check_value(body, numbers=False)
        body = copy.deepcopy(body)
        # the handler decodes with the URL's group, version and kind as defaults
        # (``decoder.Decode(body, &defaultGVK, original)`` in ``handlers/create.go``)
        if not body.get("kind"):
            body["kind"] = rt.kind
        if not body.get("apiVersion"):
            body["apiVersion"] = rt.api_version
        if body.get("kind") == rt.kind:
            decoding.check_decodes(body, rt.kind, rt.version)
        if body.get("kind") != rt.kind:
            raise bad_request(f"the kind in the data ({body.get('kind')!r}) does not match the "
                              f"expected kind ({rt.kind!r})")
        if body.get("apiVersion") != rt.api_version:
            raise bad_request(f"the API version in the data ({body.get('apiVersion')}) does not "
                              f"match the expected API version ({rt.api_version})")
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != req.namespace:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            meta["namespace"] = req.namespace
        else:
            meta.pop("namespace", None)
        return body

    def _validate(self, rt: ResourceType, obj: dict[str, Any],
                  old: dict[str, Any] | None = None) -> None:
        causes = validation.validate(rt.kind, obj, rt.namespaced)
        if old is not None and rt.kind == "Pod":
            causes += validation.validate_pod_update(obj, old)
        if rt.kind == "CertificateSigningRequest":
            causes += certificates.validate(obj)
        if causes:
            raise invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), causes)

    def create_resource(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        obj = self._check_body(rt, req)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self.ids.generate_name(meta["generateName"])
        if req.content_type == fieldmanager.APPLY:  # an apply that creates the object
            obj = fieldmanager.apply(rt, None, obj, req.params.get("fieldManager", ""),
                                     bool(req.params.get("force")), "", self.clock.timestamp())
            meta = obj["metadata"]
            registry.apply_defaults(rt.kind, obj)
        else:
            registry.apply_defaults(rt.kind, obj)
            fieldmanager.update(rt, None, obj, req.params.get("fieldManager", ""), "",
                                self.clock.timestamp())
        self.admit("CREATE", rt, req, user, obj, None)
        registry.prepare_for_create(rt, obj, user)
        self._validate(rt, obj)
        meta.pop("resourceVersion", None)
        meta["uid"] = self.ids.uid()
        meta["creationTimestamp"] = self.clock.timestamp()
        registry.generate_job_selector(rt, obj)
        key = rt.key(req.namespace, meta["name"])
        allocated: list[str] = []
        if rt.kind == "Service":
            allocated = registry.allocate_service(self.ips, obj)
        store = self.writes(req)
        created = store.create(key, obj, EVENT_TTL if rt.kind == "Event" else 0)
        if isinstance(store, DryRunStorage):
            for ip in allocated:
                self.ips.release(ip)
            for p in obj["spec"].get("ports", []) if rt.kind == "Service" else []:
                self.ips.ports.discard(p.get("nodePort"))
        if created is None:
            for ip in allocated:
                self.ips.release(ip)
            raise StatusError(_already_exists(rt, meta["name"]))
        return Response(201, created)

    def _current(self, rt: ResourceType, req: Request) -> dict[str, Any]:
        old = self.storage.get(rt.key(req.namespace, req.name))
        if old is None:
            raise not_found(rt.plural, rt.group, req.name)
        return old

    def update_resource(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        obj = self._check_body(rt, req)
        if obj["metadata"].get("name") != req.name:
            raise bad_request(f"the name of the object ({obj['metadata'].get('name')}) does not "
                              f"match the name on the URL ({req.name})")
        registry.apply_defaults(rt.kind, obj)
        return self._write_update(rt, req, user, obj)

    def patch_resource(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        if req.content_type == fieldmanager.APPLY:
            return self._apply(rt, req, user)
        old = self._current(rt, req)
        patched = patching.apply_patch(old, req.body, req.content_type)
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise bad_request("the patch produced an object without metadata")
        decoding.check_patched(patched, rt.api_version, rt.kind)
        registry.check_patched_identity(rt, req, patched, old)
        precondition = (req.body or {}).get("metadata", {}).get("resourceVersion") \
            if isinstance(req.body, dict) else None
        if not precondition:
            patched["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        registry.apply_defaults(rt.kind, patched)
        return self._write_update(rt, req, user, patched, old)

    def _apply(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        """Server-side apply (:mod:`k8sbook.apiserver.fieldmanager`)."""
        config = self._check_body(rt, Request(
            req.verb, rt.plural, rt.group, req.namespace, body=fieldmanager.check_apply_body(
                rt, req.body)))
        old = self.storage.get(rt.key(req.namespace, req.name))
        if old is None:
            return self.create_resource(rt, Request(
                "create", rt.plural, rt.group, req.namespace, body=config, params=req.params,
                content_type=req.content_type, user=user), user)
        registry.check_patched_identity(rt, req, copy.deepcopy(config), old)
        obj = fieldmanager.apply(rt, old, config, req.params.get("fieldManager", ""),
                                 bool(req.params.get("force")), req.subresource,
                                 self.clock.timestamp())
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        registry.apply_defaults(rt.kind, obj)
        return self._write_update(rt, req, user, obj, old, managed=True)

    def _write_update(self, rt: ResourceType, req: Request, user: UserInfo,
                      obj: dict[str, Any], old: dict[str, Any] | None = None, *,
                      managed: bool = False) -> Response:
        old = old or self._current(rt, req)
        rv = obj["metadata"].get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, req.name, OPTIMISTIC_LOCK_MESSAGE)
        if not managed:  # the field manager's Update (apply has recorded its own)
            fieldmanager.update(rt, old, obj, req.params.get("fieldManager", ""),
                                req.subresource, self.clock.timestamp())
        registry.prepare_for_update(rt, obj, old, req.subresource, self.clock.timestamp())
        self.admit("UPDATE", rt, req, user, obj, old)
        self._validate(rt, obj, old)
        if rt.kind == "Service":
            registry.keep_allocations(obj, old)
        obj["metadata"].pop("resourceVersion", None)
        unchanged = {**old, "metadata": {k: v for k, v in old["metadata"].items()
                                         if k != "resourceVersion"}}
        if obj == unchanged:
            return Response(200, old)  # GuaranteedUpdate skips writes that change nothing
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and \
                not meta.get("deletionGracePeriodSeconds") and \
                not (rt.kind == "Namespace" and obj.get("spec", {}).get("finalizers")):
            return self._finish_delete(rt, req, obj, old)
        written = self.writes(req).update(rt.key(req.namespace, req.name), obj,
                                          int(old["metadata"]["resourceVersion"]))
        if written is None:
            raise conflict(rt.plural, rt.group, req.name, OPTIMISTIC_LOCK_MESSAGE)
        return Response(200, written)

    # -- deletion --------------------------------------------------------------------------
    def delete_resource(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        old = self._current(rt, req)
        opts = req.params
        pre = opts.get("preconditions") or {}
        meta = old["metadata"]
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise conflict(rt.plural, rt.group, req.name,
                           f"Precondition failed: UID in precondition: {pre['uid']}, "
                           f"UID in object meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise conflict(rt.plural, rt.group, req.name,
                           f"Precondition failed: ResourceVersion in precondition: "
                           f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                           f"{meta['resourceVersion']}")
        gc_finalizers = registry.deletion_finalizers(meta, opts)
        self.admit("DELETE", rt, req, user, None, old)
        grace = self._grace_period(rt, old, opts.get("gracePeriodSeconds"))
        if grace or meta.get("finalizers") or gc_finalizers or rt.kind == "Namespace":
            if meta.get("deletionTimestamp"):
                current = meta.get("deletionGracePeriodSeconds", 0)
                if grace >= current and (grace or meta.get("finalizers")):
                    return Response(200, old)  # already deleting, no shorter grace asked
            obj = copy.deepcopy(old)
            if gc_finalizers is not None:
                obj["metadata"]["finalizers"] = gc_finalizers
            obj["metadata"]["deletionTimestamp"] = self.clock.timestamp(self.clock.now() + grace)
            obj["metadata"]["deletionGracePeriodSeconds"] = grace
            if rt.kind == "Namespace":
                obj["status"] = {"phase": "Terminating"}
            if grace or obj["metadata"].get("finalizers") or rt.kind == "Namespace":
                obj["metadata"].pop("resourceVersion", None)
                written = self.writes(req).update(rt.key(req.namespace, req.name), obj,
                                                  int(meta["resourceVersion"]))
                if written is None:
                    raise conflict(rt.plural, rt.group, req.name, OPTIMISTIC_LOCK_MESSAGE)
                return Response(200, written)
        return self._finish_delete(rt, req, old, old)

    def _grace_period(self, rt: ResourceType, obj: dict[str, Any], asked: Any) -> int:
        """``rest.BeforeDelete`` + the pod strategy's ``CheckGracefulDelete``."""
        if rt.kind != "Pod":
            return 0
        spec, phase = obj.get("spec", {}), obj.get("status", {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0  # never scheduled or already finished: nothing to stop, delete now
        grace = spec.get("terminationGracePeriodSeconds", 30) if asked is None else int(asked)
        return max(grace, 0)

    def _finish_delete(self, rt: ResourceType, req: Request, obj: dict[str, Any],
                       old: dict[str, Any]) -> Response:
        store = self.writes(req)
        rev = store.delete(rt.key(req.namespace, req.name),
                           int(old["metadata"]["resourceVersion"]))
        if rev is None:
            raise conflict(rt.plural, rt.group, req.name, OPTIMISTIC_LOCK_MESSAGE)
        if rt.kind not in RETURN_DELETED_OBJECT:
            return Response(200, success_status(obj["metadata"]["name"], rt.group, rt.plural,
                                                obj["metadata"].get("uid", "")))
        if rt.kind == "Service" and isinstance(store, Storage):
            for ip in obj.get("spec", {}).get("clusterIPs", []):
                self.ips.release(ip)
            for p in obj.get("spec", {}).get("ports", []):
                self.ips.ports.discard(p.get("nodePort"))
        out = copy.deepcopy(obj)
        out["metadata"]["resourceVersion"] = str(rev)
        return Response(200, out)


def _already_exists(rt: ResourceType, name: str) -> dict[str, Any]:
    return status_object(409, "AlreadyExists",
                         f'{rt.group_resource} "{name}" already exists',
                         name=name, group=rt.group, kind=rt.plural)


def _too_large(rv: str, current: int) -> StatusError:
    err = timeout(f"Too large resource version: {rv}, current: {current}", retry_after=1)
    err.status["details"]["causes"] = [{"reason": "ResourceVersionTooLarge",
                                        "message": "Too large resource version"}]
    return err
