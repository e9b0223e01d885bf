"""kube-apiserver: the only component that talks to etcd, and the hub every other one uses.

Mirrors ``k8s.io/apiserver`` (the handler chain ``DefaultBuildHandlerChain``: authentication,
then authorization, then the REST handlers in ``endpoints/handlers`` that run admission and
call the registry) with the storage of ``k8s.io/apiserver/pkg/registry/generic/registry``
(``Store``: create, get, list, update, patch, delete, watch; graceful deletion; finalizers,
in :mod:`k8sbook.apiserver.store`) and the Pod subresources of
``pkg/registry/core/pod/storage`` (``binding``, ``eviction``, in
:mod:`k8sbook.apiserver.pod_subresources`); the start-up hooks of
``pkg/controlplane`` (system namespaces, the bootstrap RBAC policy, the ``kubernetes``
Service) are here.

The entry point is :meth:`APIServer.handle`: a :class:`Request` in, a :class:`Response` out,
with errors as ``Status`` bodies, which is what an HTTP front end needs to serve it unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from k8sbook.api import eventsv1
from k8sbook.api.request import Request, Response, UserInfo
from k8sbook.api.resources import CONVERTED, RESOURCES, ResourceType, by_plural
from k8sbook.apiserver import rbac, registry, triggers, webhook
from k8sbook.apiserver.admission import (
    AdmissionAttributes,
    AdmissionChain,
    DefaultTolerationSeconds,
    NamespaceLifecycle,
    Priority,
)
from k8sbook.apiserver.authentication import LOOPBACK_USER, Authenticator, PeerConnections
from k8sbook.apiserver.authorization import Attributes, Authorizer, RBACAuthorizer, UnionAuthorizer
from k8sbook.apiserver.bootstrap import BootstrapTokenAuthenticator
from k8sbook.apiserver.certificates import (
    CertificateApproval,
    CertificateSigning,
    CertificateSubjectRestriction,
)
from k8sbook.apiserver.collection import delete_collection
from k8sbook.apiserver.egress_selector import EgressSelector
from k8sbook.apiserver.flowcontrol import Classification, FlowControl
from k8sbook.apiserver.impersonation import impersonate
from k8sbook.apiserver.node_authorizer import NodeAuthorizer, NodeRestriction
from k8sbook.apiserver.options import OPTIONS_KIND, check_write_options, dry_run
from k8sbook.apiserver.pod_subresources import PodSubresources
from k8sbook.apiserver.rbac_escalation import EscalationCheck
from k8sbook.apiserver.serviceaccount_admission import ServiceAccount
from k8sbook.apiserver.store import Store
from k8sbook.client.network import Address, Network
from k8sbook.core.clock import Clock
from k8sbook.core.ids import IdGenerator
from k8sbook.core.status import (
    StatusError,
    bad_request,
    forbidden,
    invalid,
    method_not_supported,
    status_object,
)
from k8sbook.storage.cacher import WatchCache
from k8sbook.storage.etcd3 import ETCD_ADDRESS, Storage

__all__ = ["ADVERTISE_ADDRESS", "LOOPBACK_USER", "SECURE_PORT", "SYSTEM_NAMESPACES", "APIServer"]

SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
#: the control-plane node's address, where kubeadm's kube-apiserver advertises itself
ADVERTISE_ADDRESS = "192.168.0.2"
#: ``--secure-port`` as kubeadm sets it
SECURE_PORT = 6443


class APIServer(Store, PodSubresources):
    """The model's kube-apiserver."""

    def __init__(self, clock: Clock, ids: IdGenerator, network: Network, *,
                 advertise_address: str = ADVERTISE_ADDRESS, secure_port: int = SECURE_PORT,
                 etcd_servers: Address | Sequence[Address] = ETCD_ADDRESS,
                 authorizers: list[Authorizer] | None = None, seed: int = 0,
                 instance: str = "kube-apiserver", hostname: str = "control-plane",
                 endpoint_reconciler_type: str = "none", identity_lease: bool = False) -> None:
        self.clock = clock
        self.ids = ids
        self.network = network
        self.trace = network.trace
        #: where it serves (``--advertise-address``, ``--secure-port``)
        self.address = Address.tcp(advertise_address, secure_port)
        #: the instance name it listens and dials etcd as (``kube-apiserver/cp-2`` with several)
        self.instance = instance
        self.storage = Storage(network, clock, etcd_servers, client=instance)
        #: post-start controllers of a highly available control plane (off for one
        #: apiserver: see :mod:`k8sbook.apiserver.reconcilers`, :mod:`~.identity`)
        from k8sbook.apiserver.identity import IdentityLease
        from k8sbook.apiserver.reconcilers import LeaseEndpointReconciler
        self.identity = IdentityLease(self.handle, clock, hostname, ids.uid()) \
            if identity_lease else None
        self.endpoint_reconciler = LeaseEndpointReconciler(
            self.storage, self.handle, clock, advertise_address, secure_port) \
            if endpoint_reconciler_type == "lease" else None
        self.authn = Authenticator(clock=clock)
        self.caches: dict[str, WatchCache] = {}
        self.ips = registry.IPAllocator(seed)
        rbac_authz = RBACAuthorizer(self.cached_objects)
        # kubeadm: --authorization-mode=Node,RBAC
        self.authz = UnionAuthorizer(authorizers if authorizers is not None else
                                     [NodeAuthorizer(self.cached_objects,
                                                     pods_on=self.cached_pods_on_node),
                                      rbac_authz])
        self.rbac = rbac_authz
        #: RBAC escalation prevention of the roles' and bindings' storage
        self.escalation = EscalationCheck(rbac_authz, self.authz)
        #: ``ServiceAccount`` admission: off unless the cluster runs the ServiceAccount
        #: controller that creates the ``default`` accounts it requires
        #: (``Cluster(service_account_admission=True)``)
        self.service_account_admission = ServiceAccount(
            lambda ns, name: self.cached("serviceaccounts", ns, name)
            or self.storage.get(f"/registry/serviceaccounts/{ns}/{name}"), ids.suffix,
            enabled=False)
        self.admission = AdmissionChain(
            mutating=[self.service_account_admission, DefaultTolerationSeconds(),
                      Priority(lambda: self.cached_objects("priorityclasses"))],
            validating=[NamespaceLifecycle(lambda ns: self.cached("namespaces", "", ns)),
                        NodeRestriction(lambda ns, name: self.cached("pods", ns, name),
                                        lambda name: self.cached("nodes", "", name)),
                        CertificateApproval(self.authz.authorize),
                        CertificateSigning(self.authz.authorize),
                        CertificateSubjectRestriction()],
        )
        # MutatingAdmissionWebhook / ValidatingAdmissionWebhook, enabled by default and run
        # after the built-in plugins of their kind
        self.webhooks = webhook.install(self)
        #: (plural, subresource) -> handler for requests served without storage: the pod
        #: connect subresources (log, exec, portforward) and SubjectAccessReview
        self.handlers: dict[tuple[str, str], Callable[[ResourceType, Request, UserInfo],
                                                      Response]] = {}
        #: ``--egress-selector-config-file`` (none: the apiserver dials nodes directly)
        self.egress = EgressSelector(network, rand=random.Random(f"{seed}/{instance}/egress"))
        #: the TLS state of the connections it serves watches on (``r.TLS``)
        self.peers = PeerConnections()
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
        from k8sbook.apiserver.scale import install as install_scale
        #: {deployments,replicasets,statefulsets}/scale (``scale.py``)
        self.scale = install_scale(self)
        from k8sbook.apiserver.access_review import install as install_access_reviews
        #: SelfSubjectAccessReview, SelfSubjectRulesReview, LocalSubjectAccessReview,
        #: SelfSubjectReview (``access_review.py``)
        self.access_reviews = install_access_reviews(self)
        #: ``--enable-bootstrap-token-auth`` (kubeadm sets it)
        self.bootstrap_tokens = BootstrapTokenAuthenticator(self.cached, clock)
        self.authn.token_authenticators.append(self.bootstrap_tokens)
        #: API Priority and Fairness (``flowcontrol.py``)
        self.flowcontrol = FlowControl(clock)
        self.started = False

    # -- start-up --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the watch caches and run the post-start hooks (system namespaces,
        default RBAC policy, the ``kubernetes`` Service), then the etcd compactor, and listen
        on the secure port."""
        for rt in RESOURCES:
            if rt.verbs == ("create",) or (rt.group, rt.plural) in CONVERTED:
                continue  # reviews are evaluated, never stored: no cacher, no etcd watch;
                # a converted group version reads the cacher of the resource it is stored as
            cache = WatchCache(rt, self.storage, self.clock,
                               trigger=triggers.TRIGGERS.get(rt.plural) if not rt.group else None)
            cache.start()
            self.caches[rt.plural if not rt.group else f"{rt.plural}.{rt.group}"] = cache
        self.started = True
        for ns in SYSTEM_NAMESPACES:
            self._bootstrap({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        objs = rbac.bootstrap_objects()
        later = [o for o in objs if o["metadata"]["name"] in rbac.LATER_ADDITIONS]
        extra = [o for o in objs if o["metadata"]["name"] in rbac.ADMISSION_ADDITIONS]
        for obj in objs:
            if obj not in later and obj not in extra:
                self._bootstrap(obj)
        with self.ids.side_stream():
            for obj in later + (extra if self.service_account_admission.enabled else []):
                self._bootstrap(obj)
        ip = str(self.ips.net.network_address + 1)  # the first address of the service range
        self._bootstrap({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "kubernetes", "namespace": "default",
                                      "labels": {"component": "apiserver",
                                                 "provider": "kubernetes"}},
                         "spec": {"clusterIP": ip, "ports": [{"name": "https", "port": 443,
                                                              "targetPort": 6443}]}})
        self.storage.start_compactor(on_compact=self._on_compact)
        self.network.listen(self.address, self.instance, self.serve, protocol="HTTPS")
        for controller in (self.identity, self.endpoint_reconciler):
            if controller is not None:
                controller.start()

    def stop(self) -> None:
        """The process dies: the port closes, open connections (watches) break, its
        controllers and etcd watches end. What it wrote to etcd stays (its leases expire)."""
        self.network.close(self.address)
        for conn in self.network.connections(self.instance):
            conn.cut()
        for controller in (self.identity, self.endpoint_reconciler):
            if controller is not None:
                controller.stop()
        self.storage.close()

    def serve(self, request: Any) -> Response:
        """The secure port's handler: a request, or a watch's ``((request, on_event),
        connection)`` from :meth:`k8sbook.client.network.Network.open`."""
        if isinstance(request, Request):
            return self.handle(request)
        (req, on_event), conn = request
        resp = self.handle(req, on_event)
        if resp.watch is not None:
            self.peers.add(conn, req)
        return resp

    def _bootstrap(self, obj: dict[str, Any]) -> None:
        rt = _rt_for_kind(obj["kind"])
        resp = self.handle(Request("create", rt.plural, rt.group,
                                   obj["metadata"].get("namespace", ""), body=obj,
                                   params={"fieldManager": "kube-apiserver"},
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
    def cached_objects(self, plural: str, group: str | None = None) -> list[dict[str, Any]]:
        """Every object of a resource in the watch cache, in key order."""
        for rt in RESOURCES:
            if rt.plural == plural and (group is None or rt.group == group):
                if not self.started:
                    return []
                return self.watch_cache(rt).sorted_objects()
        return []

    def cached_pods_on_node(self, node: str) -> list[dict[str, Any]]:
        """The pods bound to ``node`` in the watch cache, in key order, read from the cache's
        ``spec.nodeName`` index."""
        if not self.started:
            return []
        return self.caches["pods"].by_trigger(node)

    def cached(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object from the watch cache (``None`` if absent or before start-up)."""
        rt = by_plural("", plural) or next(r for r in RESOURCES if r.plural == plural)
        if not self.started:
            return None
        return self.watch_cache(rt).get(rt.key(namespace, name))

    # -- the handler chain -----------------------------------------------------------------
    def handle(self, req: Request,
               on_event: Callable[[dict[str, Any] | None], None] | None = None) -> Response:
        """Serve one request. Never raises for a client error: it answers a Status."""
        flow: Classification | None = None
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
            if req.impersonate is not None:  # WithImpersonation, before APF and authz
                req.original_user = user
                user = impersonate(self.authz, user, req.impersonate)
            # API Priority and Fairness: after authentication, before authorization
            flow = self.flowcontrol.admit(user, req)
            self._authorize(user, req, rt)
            resp = self._dispatch(rt, req, user, on_event)
        except StatusError as err:
            resp = Response(err.code, err.status)
        if flow is not None and resp.code != 429:
            self.flowcontrol.note(flow, resp.code)
        return resp

    def authorize_path(self, req: Request, path: str, verb: str = "get") -> UserInfo:
        """A non-resource request (``/healthz``, ``/version``, ``/api``, ``/openapi/v3``):
        authenticate (a bad token is 401 here too), impersonate, and authorize ``verb`` on
        ``path``; 403 ``forbidden: User "system:anonymous" cannot get path "/api"`` when no
        rule's ``nonResourceURLs`` allows it (anonymous callers get only what
        ``system:public-info-viewer`` grants). Returns who is served."""
        user = req.user or self.authn.authenticate(req.credentials)
        if req.impersonate is not None:
            req.original_user = user
            user = impersonate(self.authz, user, req.impersonate)
        attrs = Attributes(user, verb, "", "", path=path)
        decision, reason = self.authz.authorize(attrs)
        if decision != "allow":
            status = status_object(403, "Forbidden", "forbidden: " + attrs.describe()
                                   + (f": {reason}" if reason else ""))
            raise StatusError(status)
        return user

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
        if (rt.group, rt.plural) == ("events.k8s.io", "events"):  # one storage, two shapes
            stored = by_plural(CONVERTED[(rt.group, rt.plural)], rt.plural)
            assert stored is not None
            core = eventsv1.core_request(req)
            if req.verb == "create" and isinstance(core.body, dict):
                causes = eventsv1.validate_create(core.body)
                if causes:
                    raise invalid(rt.kind, rt.group, (core.body.get("metadata") or {}).get(
                        "name", ""), causes)
            try:
                resp = self._dispatch(stored, core, user, eventsv1.watch_events(on_event))
            except StatusError as err:
                raise StatusError(eventsv1.convert_response(Response(err.code, err.status)).body)\
                    from None
            return eventsv1.convert_response(resp)
        custom = self.handlers.get((rt.plural, sub))
        if custom is not None:
            return custom(rt, req, user)
        if sub == "binding":
            if req.verb != "create":
                raise method_not_supported("pods/binding", "", req.verb)
            return self.create_binding(rt, req, user)
        if sub == "eviction":
            if req.verb != "create":
                raise method_not_supported("pods/eviction", "", req.verb)
            return self.create_eviction(rt, req, user)
        handler = {
            "get": self.get_resource, "list": self.list_resource, "create": self.create_resource,
            "update": self.update_resource, "patch": self.patch_resource, "delete": self.delete_resource,
            "deletecollection": lambda rt_, req_, user_: delete_collection(self, rt_, req_, user_),
        }.get(req.verb)
        if req.verb == "watch":
            return self.watch_resource(rt, req, on_event)
        if req.verb in OPTIONS_KIND:  # the handlers validate a write's options first
            check_write_options(req.verb, req.params, req.content_type)
        if handler is None:
            raise method_not_supported(rt.plural, rt.group, req.verb)
        resp = handler(rt, req, user)
        if req.verb == "delete" and req.params.get("orphanDependents") is False and \
                ((resp.body or {}).get("metadata") or {}).get("deletionTimestamp"):
            resp.code = 202  # delete.go: not deleted yet, and a cascade asked the old way
        return resp

    def admit(self, op: str, rt: ResourceType, req: Request, user: UserInfo,
              obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        """Run the admission chain (mutating, then validating plugins) on one request;
        raises the first plugin's :class:`StatusError`."""
        name = (obj or old or {}).get("metadata", {}).get("name", req.name)
        self.escalation.check(op, rt.plural, rt.group, req.namespace, user, obj, old)
        self.admission.run(AdmissionAttributes(op, rt.kind, rt.group, rt.plural,  # type: ignore[arg-type]
                                               req.subresource, req.namespace, name, obj, old,
                                               user, dry_run(req.verb, req.params)))



def _rt_for_kind(kind: str) -> ResourceType:
    return next(r for r in RESOURCES if r.kind == kind)


