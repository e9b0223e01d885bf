"""kube-apiserver: the only component that talks to etcd, and the hub every other one uses.

Mirrors ``k8s.io/apiserver`` (the handler chain ``DefaultBuildHandlerChain``: authentication,
then authorization, then the REST handlers in ``endpoints/handlers`` that run admission and
call the registry) with the storage of ``k8s.io/apiserver/pkg/registry/generic/registry``
(``Store``: create, get, list, update, patch, delete, watch; graceful deletion; finalizers) and
the Pod subresources of ``pkg/registry/core/pod/storage`` (``binding``, ``eviction``,
``status``).

The entry point is :meth:`APIServer.handle`: a :class:`Request` in, a :class:`Response` out,
with errors as ``Status`` bodies, which is what an HTTP front end needs to serve it unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from k8sbook.api import patch as patching
from k8sbook.api import selectors, validation
from k8sbook.api.request import Request, Response, UserInfo
from k8sbook.api.resources import RESOURCES, ResourceType, by_plural
from k8sbook.apiserver import rbac, registry, webhook
from k8sbook.apiserver.admission import (
    AdmissionAttributes,
    AdmissionChain,
    DefaultTolerationSeconds,
    NamespaceLifecycle,
    Priority,
)
from k8sbook.apiserver.authentication import Authenticator
from k8sbook.apiserver.authorization import Attributes, Authorizer, RBACAuthorizer, UnionAuthorizer
from k8sbook.apiserver.node_authorizer import NodeAuthorizer, NodeRestriction
from k8sbook.client.network import Address, Network
from k8sbook.core.clock import Clock
from k8sbook.core.ids import IdGenerator
from k8sbook.core.status import (
    OPTIMISTIC_LOCK_MESSAGE,
    StatusError,
    bad_request,
    conflict,
    forbidden,
    internal_error,
    invalid,
    method_not_supported,
    not_found,
    status_object,
    timeout,
    too_many_requests,
)
from k8sbook.storage.cacher import WatchCache
from k8sbook.storage.etcd3 import ETCD_ADDRESS, Storage

#: kube-apiserver's ``--event-ttl`` default: Events are written with a one-hour etcd lease.
EVENT_TTL = 3600
#: The apiserver's own loopback identity (a member of system:masters).
LOOPBACK_USER = UserInfo("system:apiserver", ("system:masters", "system:authenticated"))
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
#: the control-plane node's address, where kubeadm's kube-apiserver advertises itself
ADVERTISE_ADDRESS = "192.168.0.2"
#: ``--secure-port`` as kubeadm sets it
SECURE_PORT = 6443


class APIServer:
    """The model's kube-apiserver."""

    def __init__(self, clock: Clock, ids: IdGenerator, network: Network, *,
                 advertise_address: str = ADVERTISE_ADDRESS, secure_port: int = SECURE_PORT,
                 etcd_servers: Address = ETCD_ADDRESS,
                 authorizers: list[Authorizer] | None = None, seed: int = 0) -> None:
        self.clock = clock
        self.ids = ids
        self.network = network
        self.trace = network.trace
        #: where it serves (``--advertise-address``, ``--secure-port``)
        self.address = Address.tcp(advertise_address, secure_port)
        self.storage = Storage(network, clock, etcd_servers)
        self.authn = Authenticator()
        self.caches: dict[str, WatchCache] = {}
        self.ips = registry.IPAllocator(seed)
        rbac_authz = RBACAuthorizer(self.cached_objects)
        # kubeadm: --authorization-mode=Node,RBAC
        self.authz = UnionAuthorizer(authorizers if authorizers is not None else
                                     [NodeAuthorizer(self.cached_objects), rbac_authz])
        self.rbac = rbac_authz
        self.admission = AdmissionChain(
            mutating=[DefaultTolerationSeconds(),
                      Priority(lambda: self.cached_objects("priorityclasses"))],
            validating=[NamespaceLifecycle(lambda ns: self.cached("namespaces", "", ns)),
                        NodeRestriction(lambda ns, name: self.cached("pods", ns, name))],
        )
        # MutatingAdmissionWebhook / ValidatingAdmissionWebhook, enabled by default and run
        # after the built-in plugins of their kind
        self.webhooks = webhook.install(self)
        #: (plural, subresource) -> handler for requests served without storage: the pod
        #: connect subresources (log, exec, portforward) and SubjectAccessReview
        self.handlers: dict[tuple[str, str], Callable[[ResourceType, Request, UserInfo],
                                                      Response]] = {}
        from k8sbook.apiserver.kubelet_client import install as install_kubelet_client
        self.kubelet_client = install_kubelet_client(self)
        from k8sbook.apiserver.aggregator import install as install_aggregator
        #: kube-aggregator: proxies API groups registered by APIServices (``aggregator.py``)
        self.aggregator = install_aggregator(self)
        from k8sbook.apiserver.pod_proxy import install as install_pod_proxy
        from k8sbook.apiserver.token import install as install_token
        #: pods/proxy (kube-apiserver->pod) and serviceaccounts/token (TokenRequest)
        self.pod_proxy = install_pod_proxy(self)
        self.tokens = install_token(self)
        self.started = False

    # -- start-up --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the watch caches and run the post-start hooks (system namespaces,
        default RBAC policy, the ``kubernetes`` Service), then the etcd compactor, and listen
        on the secure port."""
        for rt in RESOURCES:
            if rt.verbs == ("create",):
                continue  # reviews are evaluated, never stored: no cacher, no etcd watch
            cache = WatchCache(rt, self.storage, self.clock)
            cache.start()
            self.caches[rt.plural if not rt.group else f"{rt.plural}.{rt.group}"] = cache
        self.started = True
        for ns in SYSTEM_NAMESPACES:
            self._bootstrap({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for obj in rbac.bootstrap_objects():
            self._bootstrap(obj)
        ip = str(self.ips.net.network_address + 1)  # the first address of the service range
        self._bootstrap({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "kubernetes", "namespace": "default",
                                      "labels": {"component": "apiserver",
                                                 "provider": "kubernetes"}},
                         "spec": {"clusterIP": ip, "ports": [{"name": "https", "port": 443,
                                                              "targetPort": 6443}]}})
        self.storage.start_compactor(on_compact=self._on_compact)
        self.network.listen(self.address, "kube-apiserver", self.serve, protocol="HTTPS")

    def serve(self, request: Any) -> Response:
        """The secure port's handler: a request, or a watch's ``((request, on_event),
        connection)`` from :meth:`k8sbook.client.network.Network.open`."""
        if isinstance(request, Request):
            return self.handle(request)
        (req, on_event), _conn = request
        return self.handle(req, on_event)

    def _bootstrap(self, obj: dict[str, Any]) -> None:
        rt = _rt_for_kind(obj["kind"])
        resp = self.handle(Request("create", rt.plural, rt.group,
                                   obj["metadata"].get("namespace", ""), body=obj,
                                   user=LOOPBACK_USER))
        if not resp.ok and resp.code != 409:
            raise RuntimeError(f"bootstrap failed: {resp.body}")

    def _on_compact(self, revision: int) -> None:
        for cache in self.caches.values():
            cache.on_compacted(revision)

    def compact(self, revision: int | None = None) -> int:
        """Compact etcd now (to ``revision`` or to the current revision)."""
        rev = revision or self.storage.revision
        self.storage.compact(rev, self._on_compact)
        return rev

    # -- the extension interface --------------------------------------------------------------
    # What the apiserver's own plugins and the handlers installed in ``handlers`` (kubelet
    # client, pods/proxy, TokenRequest, kube-aggregator) use: the watch cache, read in process
    # and untraced, as informers inside kube-apiserver read it, and the admission chain.
    def _cache(self, rt: ResourceType) -> WatchCache:
        return self.caches[rt.plural if not rt.group else f"{rt.plural}.{rt.group}"]

    def cached_objects(self, plural: str, group: str | None = None) -> list[dict[str, Any]]:
        """Every object of a resource in the watch cache, in key order."""
        for rt in RESOURCES:
            if rt.plural == plural and (group is None or rt.group == group):
                if not self.started:
                    return []
                return [o for _, o in sorted(self._cache(rt).objects.items())]
        return []

    def cached(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object from the watch cache (``None`` if absent or before start-up)."""
        rt = by_plural("", plural) or next(r for r in RESOURCES if r.plural == plural)
        if not self.started:
            return None
        return self._cache(rt).objects.get(rt.key(namespace, name))

    # -- the handler chain -----------------------------------------------------------------
    def handle(self, req: Request,
               on_event: Callable[[dict[str, Any] | None], None] | None = None) -> Response:
        """Serve one request. Never raises for a client error: it answers a Status."""
        try:
            rt = by_plural(req.group, req.resource)
            if rt is None and req.group:
                proxied = self.aggregator.proxy(req)
                if proxied is not None:
                    return proxied
            if rt is None:
                raise StatusError(status_object(404, "NotFound",
                                                "the server could not find the requested resource",
                                                ))
            user = req.user or self.authn.authenticate(req.credentials)
            self._authorize(user, req, rt)
            return self._dispatch(rt, req, user, on_event)
        except StatusError as err:
            return Response(err.code, err.status)

    def _authorize(self, user: UserInfo, req: Request, rt: ResourceType) -> None:
        verb = req.verb
        if req.subresource in ("binding", "eviction"):
            verb = "create"
        attrs = Attributes(user, verb, rt.group, rt.plural, req.subresource,
                           req.namespace if rt.namespaced else "", req.name,
                           str(req.params.get("fieldSelector", "")))
        decision, reason = self.authz.authorize(attrs)
        if decision != "allow":
            detail = attrs.describe() + (f": {reason}" if reason else "")
            # ``ForbiddenStatusError``: the Status names the resource without its subresource
            # (``pods "web" is forbidden``); the detail says ``pods/proxy``
            raise forbidden(rt.plural, rt.group, req.name, detail)

    def _dispatch(self, rt: ResourceType, req: Request, user: UserInfo,
                  on_event: Callable[[dict[str, Any] | None], None] | None) -> Response:
        if rt.namespaced and req.verb not in ("list", "watch") and not req.namespace:
            raise bad_request("the namespace of the object is required")
        sub = req.subresource
        if sub and sub not in rt.subresources:
            raise StatusError(status_object(404, "NotFound",
                                            "the server could not find the requested resource"))
        custom = self.handlers.get((rt.plural, sub))
        if custom is not None:
            return custom(rt, req, user)
        if sub == "binding":
            if req.verb != "create":
                raise method_not_supported("pods/binding", "", req.verb)
            return self._bind(rt, req, user)
        if sub == "eviction":
            if req.verb != "create":
                raise method_not_supported("pods/eviction", "", req.verb)
            return self._evict(rt, req, user)
        handler = {
            "get": self._get, "list": self._list, "create": self._create,
            "update": self._update, "patch": self._patch, "delete": self._delete,
        }.get(req.verb)
        if req.verb == "watch":
            return self._watch(rt, req, on_event)
        if handler is None:
            raise method_not_supported(rt.plural, rt.group, req.verb)
        return handler(rt, req, user)

    # -- reads -----------------------------------------------------------------------------
    def _get(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
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

    def _list(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
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
        if rv == "" or match == "Exact":
            # a consistent read (or a read at one exact revision) goes to etcd
            items, rev = self.storage.list(rt.prefix(ns), int(rv) if match == "Exact" else 0)
            items = [o for o in items if matches(o)]
        else:
            cache = self._cache(rt)
            if int(rv) > cache.revision:
                raise _too_large(rv, cache.revision)
            items, rev = cache.list(ns, matches)
        body = {"apiVersion": rt.api_version, "kind": f"{rt.kind}List",
                "metadata": {"resourceVersion": str(rev)}, "items": items}
        return Response(200, body)

    def _watch(self, rt: ResourceType, req: Request,
               on_event: Callable[[dict[str, Any] | None], None] | None) -> Response:
        if on_event is None:
            raise bad_request("a watch needs a consumer for its events")
        rv = str(req.params.get("resourceVersion", ""))
        if rv and not rv.isdigit():
            raise bad_request(f"invalid resource version: {rv!r}")
        cache = self._cache(rt)
        if rv and int(rv) > cache.revision:
            raise _too_large(rv, cache.revision)
        matches = self._filter(rt, req)
        if req.name:
            inner = matches
            matches = lambda o: inner(o) and o["metadata"]["name"] == req.name
        timeout_s = req.params.get("timeoutSeconds")
        watcher = cache.watch(req.namespace if rt.namespaced else "", matches, rv, on_event,
                              bookmarks=bool(req.params.get("allowWatchBookmarks")),
                              timeout=float(timeout_s) if timeout_s else None)
        return Response(200, None, watcher)

    # -- writes ----------------------------------------------------------------------------
    def _check_body(self, rt: ResourceType, req: Request) -> dict[str, Any]:
        body = req.body
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        body = copy.deepcopy(body)
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

    def admit(self, op: str, rt: ResourceType, req: Request, user: UserInfo,
              obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        """Run the admission chain (mutating, then validating plugins) on one request;
        raises the first plugin's :class:`StatusError`."""
        name = (obj or old or {}).get("metadata", {}).get("name", req.name)
        self.admission.run(AdmissionAttributes(op, rt.kind, rt.group, rt.plural,  # type: ignore[arg-type]
                                               req.subresource, req.namespace, name, obj, old,
                                               user))

    def _validate(self, rt: ResourceType, obj: dict[str, Any],
                  old: dict[str, Any] | None = None) -> None:
        causes = validation.validate(rt.kind, obj, rt.namespaced)
        if old is not None and rt.kind == "Pod":
            causes += validation.validate_pod_update(obj, old)
        if causes:
            raise invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), causes)

    def _create(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        obj = self._check_body(rt, req)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self.ids.generate_name(meta["generateName"])
        registry.apply_defaults(rt.kind, obj)
        self.admit("CREATE", rt, req, user, obj, None)
        registry.prepare_for_create(rt, obj)
        self._validate(rt, obj)
        meta.pop("resourceVersion", None)
        meta["uid"] = self.ids.uid()
        meta["creationTimestamp"] = self.clock.timestamp()
        key = rt.key(req.namespace, meta["name"])
        allocated: list[str] = []
        if rt.kind == "Service":
            allocated = self._allocate_service(obj)
        created = self.storage.create(key, obj, EVENT_TTL if rt.kind == "Event" else 0)
        if created is None:
            for ip in allocated:
                self.ips.release(ip)
            raise StatusError(_already_exists(rt, meta["name"]))
        return Response(201, created)

    def _allocate_service(self, obj: dict[str, Any]) -> list[str]:
        spec = obj["spec"]
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            if spec.get("clusterIP") == "None":
                spec["clusterIPs"] = ["None"]
            return []
        ip = self.ips.allocate(spec.get("clusterIP"))
        if ip is None:
            raise invalid("Service", "", obj["metadata"]["name"], [validation.invalid(
                "spec.clusterIPs", [spec.get("clusterIP")], "failed to allocate IP "
                f"{spec.get('clusterIP')}: provided IP is already allocated")])
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            for p in spec.get("ports", []):
                port = self.ips.allocate_port(p.get("nodePort"))
                if port is None:
                    self.ips.release(ip)
                    raise invalid("Service", "", obj["metadata"]["name"], [validation.invalid(
                        "spec.ports[0].nodePort", p.get("nodePort"),
                        "provided port is already allocated")])
                p["nodePort"] = port
        return [ip]

    def _current(self, rt: ResourceType, req: Request) -> dict[str, Any]:
        old = self.storage.get(rt.key(req.namespace, req.name))
        if old is None:
            raise not_found(rt.plural, rt.group, req.name)
        return old

    def _update(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        obj = self._check_body(rt, req)
        if obj["metadata"].get("name") != req.name:
            raise bad_request(f"the name of the object ({obj['metadata'].get('name')}) does not "
                              f"match the name on the URL ({req.name})")
        registry.apply_defaults(rt.kind, obj)
        return self._write_update(rt, req, user, obj)

    def _patch(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        old = self._current(rt, req)
        patched = patching.apply_patch(old, req.body, req.content_type)
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise bad_request("the patch produced an object without metadata")
        precondition = (req.body or {}).get("metadata", {}).get("resourceVersion") \
            if isinstance(req.body, dict) else None
        if not precondition:
            patched["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        registry.apply_defaults(rt.kind, patched)
        return self._write_update(rt, req, user, patched, old)

    def _write_update(self, rt: ResourceType, req: Request, user: UserInfo,
                      obj: dict[str, Any], old: dict[str, Any] | None = None) -> Response:
        old = old or self._current(rt, req)
        rv = obj["metadata"].get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, req.name, OPTIMISTIC_LOCK_MESSAGE)
        registry.prepare_for_update(rt, obj, old, req.subresource)
        self.admit("UPDATE", rt, req, user, obj, old)
        self._validate(rt, obj, old)
        if rt.kind == "Service":
            _keep_allocations(obj, old)
        obj["metadata"].pop("resourceVersion", None)
        unchanged = {**old, "metadata": {k: v for k, v in old["metadata"].items()
                                         if k != "resourceVersion"}}
        if obj == unchanged:
            return Response(200, old)  # GuaranteedUpdate skips writes that change nothing
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and \
                not meta.get("deletionGracePeriodSeconds"):
            return self._finish_delete(rt, req, obj, old)
        written = self.storage.update(rt.key(req.namespace, req.name), obj,
                                      int(old["metadata"]["resourceVersion"]))
        if written is None:
            raise conflict(rt.plural, rt.group, req.name, OPTIMISTIC_LOCK_MESSAGE)
        return Response(200, written)

    # -- deletion --------------------------------------------------------------------------
    def _delete(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
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
        self.admit("DELETE", rt, req, user, None, old)
        grace = self._grace_period(rt, old, opts.get("gracePeriodSeconds"))
        if grace or meta.get("finalizers") or rt.kind == "Namespace":
            if meta.get("deletionTimestamp"):
                current = meta.get("deletionGracePeriodSeconds", 0)
                if grace >= current and (grace or meta.get("finalizers")):
                    return Response(200, old)  # already deleting, no shorter grace asked
            obj = copy.deepcopy(old)
            obj["metadata"]["deletionTimestamp"] = self.clock.timestamp(self.clock.now() + grace)
            obj["metadata"]["deletionGracePeriodSeconds"] = grace
            if rt.kind == "Namespace":
                obj["status"] = {"phase": "Terminating"}
            if grace or obj["metadata"].get("finalizers") or rt.kind == "Namespace":
                obj["metadata"].pop("resourceVersion", None)
                written = self.storage.update(rt.key(req.namespace, req.name), obj,
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
        rev = self.storage.delete(rt.key(req.namespace, req.name),
                                  int(old["metadata"]["resourceVersion"]))
        if rev is None:
            raise conflict(rt.plural, rt.group, req.name, OPTIMISTIC_LOCK_MESSAGE)
        if rt.kind == "Service":
            for ip in obj.get("spec", {}).get("clusterIPs", []):
                self.ips.release(ip)
            for p in obj.get("spec", {}).get("ports", []):
                self.ips.ports.discard(p.get("nodePort"))
        out = copy.deepcopy(obj)
        out["metadata"]["resourceVersion"] = str(rev)
        return Response(200, out)

    # -- pods/binding ----------------------------------------------------------------------
    def _bind(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        """``BindingREST.Create``: set ``spec.nodeName`` once; every refusal is a 409."""
        body = req.body if isinstance(req.body, dict) else None
        if body is None or body.get("kind") != "Binding":
            raise bad_request("the body of a binding must be a v1 Binding")
        if body.get("metadata", {}).get("name", req.name) != req.name:
            raise bad_request("the name of the binding does not match the pod name")
        target = body.get("target") or {}
        if target.get("kind", "Node") not in ("", "Node"):
            raise invalid("Binding", "", req.name, [validation.not_supported(
                "target.kind", target.get("kind"), ["Node", "<empty>"])])
        if not target.get("name"):
            raise invalid("Binding", "", req.name, [validation.required("target.name")])
        self.admit("CREATE", rt, req, user, body, None)
        pod = self.storage.get(rt.key(req.namespace, req.name))
        if pod is None:
            raise not_found("pods", "", req.name)
        if pod["metadata"].get("deletionTimestamp"):
            raise conflict("pods/binding", "", req.name,
                           f"pod {req.name} is being deleted, cannot be assigned to a host")
        if pod["spec"].get("nodeName"):
            raise conflict("pods/binding", "", req.name,
                           f"pod {req.name} is already assigned to node "
                           f"\"{pod['spec']['nodeName']}\"")
        pod["spec"]["nodeName"] = target["name"]
        conds = [c for c in pod["status"].get("conditions", []) if c["type"] != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True",
                      "lastTransitionTime": self.clock.timestamp()})
        pod["status"]["conditions"] = conds
        rv = int(pod["metadata"].pop("resourceVersion"))
        if self.storage.update(rt.key(req.namespace, req.name), pod, rv) is None:
            raise conflict("pods/binding", "", req.name, OPTIMISTIC_LOCK_MESSAGE)
        ok = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
              "code": 201}
        return Response(201, ok)

    # -- pods/eviction ---------------------------------------------------------------------
    def _evict(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        """``EvictionREST.Create``: delete the pod unless a PodDisruptionBudget forbids it."""
        body = req.body if isinstance(req.body, dict) else None
        if body is None or body.get("kind") != "Eviction":
            raise bad_request("the body of an eviction must be a policy/v1 Eviction")
        if body.get("metadata", {}).get("name", req.name) != req.name:
            raise bad_request("name in URL does not match name in Eviction object")
        pod = self.storage.get(rt.key(req.namespace, req.name))
        if pod is None:
            raise not_found("pods", "", req.name)
        self.admit("CREATE", rt, req, user, body, None)
        phase = pod.get("status", {}).get("phase")
        ignore_pdb = (phase in ("Succeeded", "Failed", "Pending")
                      or pod["metadata"].get("deletionTimestamp"))
        if not ignore_pdb:
            pdbs = [p for p in self.cached_objects("poddisruptionbudgets")
                    if p["metadata"]["namespace"] == req.namespace
                    and p.get("spec", {}).get("selector") is not None
                    and selectors.selector_matches(p["spec"]["selector"],
                                                   pod["metadata"].get("labels"))]
            if len(pdbs) > 1:
                raise internal_error("This pod has more than one PodDisruptionBudget, which "
                                     "the eviction subresource does not support.")
            if pdbs:
                self._consume_disruption(pdbs[0], req.name)
        opts = body.get("deleteOptions") or {}
        params = {k: v for k, v in opts.items() if k in ("gracePeriodSeconds", "preconditions")}
        deleted = self._delete(rt, Request("delete", "pods", "", req.namespace, req.name,
                                           params=params, user=user), user)
        if not deleted.ok:
            return deleted
        ok = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
              "code": 201}
        return Response(201, ok)

    def _consume_disruption(self, pdb: dict[str, Any], pod_name: str) -> None:
        """``checkAndDecrement``: refuse with 429 unless a disruption is allowed now."""
        status = pdb.get("status") or {}
        name = pdb["metadata"]["name"]
        if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 0):
            raise too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                [{"reason": "DisruptionBudget",
                  "message": f"The disruption budget {name} is still being processed by the "
                             "server."}], retry_after=10)
        allowed = status.get("disruptionsAllowed", 0)
        if allowed <= 0:
            raise too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                [{"reason": "DisruptionBudget",
                  "message": f"The disruption budget {name} needs "
                             f"{status.get('desiredHealthy', 0)} healthy pods and has "
                             f"{status.get('currentHealthy', 0)} currently"}], retry_after=10)
        updated = copy.deepcopy(pdb)
        updated["status"]["disruptionsAllowed"] = allowed - 1
        disrupted = updated["status"].setdefault("disruptedPods", {})
        disrupted[pod_name] = self.clock.timestamp()
        ns = pdb["metadata"]["namespace"]
        rt = by_plural("policy", "poddisruptionbudgets")
        assert rt is not None
        rv = int(updated["metadata"].pop("resourceVersion"))
        if self.storage.update(rt.key(ns, name), updated, rv) is None:
            raise conflict("poddisruptionbudgets", "policy", name, OPTIMISTIC_LOCK_MESSAGE)


def _rt_for_kind(kind: str) -> ResourceType:
    return next(r for r in RESOURCES if r.kind == kind)


def _already_exists(rt: ResourceType, name: str) -> dict[str, Any]:
    return status_object(409, "AlreadyExists",
                         f'{rt.group_resource} "{name}" already exists',
                         name=name, group=rt.group, kind=rt.plural)


def _too_large(rv: str, current: int) -> StatusError:
    err = timeout(f"Too large resource version: {rv}, current: {current}", retry_after=1)
    err.status["details"]["causes"] = [{"reason": "ResourceVersionTooLarge",
                                        "message": "Too large resource version"}]
    return err


def _keep_allocations(new: dict[str, Any], old: dict[str, Any]) -> None:
    """ClusterIPs are immutable once allocated; an update that omits them keeps them."""
    for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        if k in old.get("spec", {}) and k not in new.get("spec", {}):
            new["spec"][k] = old["spec"][k]

