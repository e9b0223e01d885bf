"""kube-controller-manager: many controllers in one process, running only while it leads.

Mirrors ``cmd/kube-controller-manager/app``: the process first runs leader election on the
Lease ``kube-system/kube-controller-manager`` (15 s lease, 10 s renew deadline, 2 s retry);
only the replica holding it starts its controllers. They share one informer factory
(``informers.NewSharedInformerFactory``), whose lists and watches use the controller manager's
own identity (``system:kube-controller-manager``, allowed to list and watch everything "for
all shared informers"), while each controller writes with its own service account, as
kubeadm's ``--use-service-account-credentials=true`` arranges:
``system:serviceaccount:kube-system:<controller>-controller``, bound to
``system:controller:<controller>-controller``. A replica that loses the Lease exits
(``leaderelection lost``); the model stops it.

Each controller's client comes from the ``client_for_service_account(name)`` function the
composition root gives it (:meth:`k8sbook.cluster.Cluster.add_controller_manager`), standing
in for ``clientbuilder.SAControllerClientBuilder.ClientOrDie(name)``. Simplified: the
ServiceAccounts are created through the API, but their tokens are signed in-process (the real
controller manager asks the TokenRequest API, ``serviceaccounts/<name>/token``). Only the
controllers the book needs are here (:data:`CONTROLLERS`); ``replicaset`` and ``disruption``
run by default, so that the chapters written before the others existed keep their traces;
:data:`ALL_CONTROLLERS` is them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.leaderelection import LeaderElector
from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers.cronjob import CronJobController
from k8sbook.controlplane.controllers.csr_approver import CSRApprovingController
from k8sbook.controlplane.controllers.csr_cleaner import CSRCleanerController
from k8sbook.controlplane.controllers.csr_signer import CSRSigningController
from k8sbook.controlplane.controllers.daemonset import DaemonSetsController
from k8sbook.controlplane.controllers.deployment import DeploymentController
from k8sbook.controlplane.controllers.disruption import DisruptionController
from k8sbook.controlplane.controllers.endpoint import EndpointsController
from k8sbook.controlplane.controllers.garbagecollector import (
    GarbageCollector,
    deletable_resources,
)
from k8sbook.controlplane.controllers.job import JobController
from k8sbook.controlplane.controllers.namespace import NamespaceController
from k8sbook.controlplane.controllers.node_lifecycle import NodeLifecycleController
from k8sbook.controlplane.controllers.replicaset import ReplicaSetController
from k8sbook.controlplane.controllers.rootcacertpublisher import Publisher
from k8sbook.controlplane.controllers.serviceaccount import ServiceAccountsController
from k8sbook.controlplane.controllers.serviceaccount_tokens import TokensController
from k8sbook.controlplane.controllers.statefulset import StatefulSetController
from k8sbook.controlplane.controllers.tainteviction import TaintEvictionController
from k8sbook.core import pki
from k8sbook.core.clock import Clock
from k8sbook.core.keys import signing_key
from k8sbook.core.status import StatusError

LEASE_NAMESPACE, LEASE_NAME = "kube-system", "kube-controller-manager"
DEFAULT_CONTROLLERS = ("replicaset", "disruption")


class SharedInformerFactory:
    """``informers.SharedInformerFactory``: one informer per resource, shared."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.informers: dict[str, SharedIndexInformer] = {}

    def informer(self, resource: str, **kwargs: Any) -> SharedIndexInformer:
        if resource not in self.informers:
            self.informers[resource] = SharedIndexInformer(self.client, resource, **kwargs)
        return self.informers[resource]

    def start(self) -> None:
        for name in sorted(self.informers):
            self.informers[name].run()

    def stop(self) -> None:
        for inf in self.informers.values():
            inf.stop()


ControllerFactory = Callable[[Client, SharedInformerFactory], Any]
#: ``ControllerClientBuilder.ClientOrDie``: a client that authenticates as the ServiceAccount
#: ``kube-system/<name>`` (created if missing)
ClientForServiceAccount = Callable[[str], Client]

CONTROLLERS: dict[str, tuple[str, ControllerFactory]] = {
    "replicaset": ("replicaset-controller", lambda c, f: ReplicaSetController(
        c, f.informer("replicasets"), f.informer("pods"))),
    "cronjob": ("cronjob-controller", lambda c, f: CronJobController(
        c, f.informer("cronjobs"), f.informer("jobs"))),
    "daemonset": ("daemon-set-controller", lambda c, f: DaemonSetsController(
        c, f.informer("daemonsets"), f.informer("pods"), f.informer("nodes"),
        f.informer("controllerrevisions"))),
    "deployment": ("deployment-controller", lambda c, f: DeploymentController(
        c, f.informer("deployments"), f.informer("replicasets"), f.informer("pods"))),
    "disruption": ("disruption-controller", lambda c, f: DisruptionController(
        c, f.informer("poddisruptionbudgets"), f.informer("pods"), f.informer("replicasets"))),
    # ``endpoints-controller`` upstream; ``endpoint`` is the alias --controllers accepts
    "endpoint": ("endpoint-controller", lambda c, f: EndpointsController(
        c, f.informer("services"), f.informer("pods"), f.informer("endpoints"))),
    "garbagecollector": ("generic-garbage-collector", lambda c, f: GarbageCollector(
        c, {r: f.informer(r) for r in deletable_resources()})),
    "job": ("job-controller", lambda c, f: JobController(
        c, f.informer("jobs"), f.informer("pods"))),
    "namespace": ("namespace-controller", lambda c, f: NamespaceController(
        c, f.informer("namespaces"))),
    # --root-ca-file (kubeadm: /etc/kubernetes/pki/ca.crt), as the tokens controller's
    "root-ca-cert-publisher": ("root-ca-cert-publisher", lambda c, f: Publisher(
        c, f.informer("configmaps"), f.informer("namespaces"),
        root_ca=lambda: pki.pem(pki.ca().certificate))),
    "serviceaccount": ("service-account-controller", lambda c, f: ServiceAccountsController(
        c, f.informer("serviceaccounts"), f.informer("namespaces"))),
    "statefulset": ("statefulset-controller", lambda c, f: StatefulSetController(
        c, f.informer("statefulsets"), f.informer("pods"),
        f.informer("controllerrevisions"))),
    # both run with the node-controller service account, as in kube-controller-manager
    "nodelifecycle": ("node-controller", lambda c, f: NodeLifecycleController(
        c, f.informer("nodes"), f.informer("pods"), f.informer("leases"))),
    "tainteviction": ("node-controller", lambda c, f: TaintEvictionController(
        c, f.informer("nodes"), f.informer("pods"))),
    "csrapproving": ("certificate-controller", lambda c, f: CSRApprovingController(
        c, f.informer("certificatesigningrequests"))),
    "csrsigning": ("certificate-controller", lambda c, f: CSRSigningController(
        c, f.informer("certificatesigningrequests"))),
    "csrcleaner": ("certificate-controller", lambda c, f: CSRCleanerController(
        c, f.informer("certificatesigningrequests"))),
    # started with the controller manager's own credentials (the root client builder), and
    # --service-account-private-key-file / --root-ca-file: no service account ("")
    "serviceaccount-token": ("", lambda c, f: TokensController(
        c, f.informer("serviceaccounts"), f.informer("secrets"), key=lambda: signing_key("sa"),
        root_ca=lambda: pki.pem(pki.ca().certificate))),
}


#: every controller the model has, as a real kube-controller-manager runs them all
#: (``--controllers=*``):
#: for ``k8sbook serve`` and the scenarios of a whole cluster. The chapters that predate
#: them pass the few they teach (:data:`DEFAULT_CONTROLLERS` by default).
ALL_CONTROLLERS = tuple(sorted(CONTROLLERS))


class KubeControllerManager:
    """One replica of kube-controller-manager. ``client`` is its own identity
    (``system:kube-controller-manager``: the shared informers and the Lease),
    ``client_for_service_account`` gives each controller its client, ``identity`` is the
    leader-election identity (``<hostname>_<uuid>``)."""

    def __init__(self, client: Client, clock: Clock, *, identity: str,
                 client_for_service_account: ClientForServiceAccount,
                 controllers: tuple[str, ...] = DEFAULT_CONTROLLERS) -> None:
        self.instance = client.instance
        self.identity = identity
        self.client = client
        self.clock = clock
        self.client_for_service_account = client_for_service_account
        self.enabled = controllers
        self.factory: SharedInformerFactory | None = None
        self.controllers: dict[str, Any] = {}
        self.exited = False
        self.elector = LeaderElector(self.client, LEASE_NAMESPACE, LEASE_NAME, self.identity,
                                     clock=clock, on_started_leading=self._start_controllers,
                                     on_stopped_leading=self._leaderelection_lost)

    def start(self) -> None:
        self.elector.run()

    def stop(self) -> None:
        """The process is killed: no more renewals; the Lease is left to expire."""
        self.elector.stop()
        self._stop_controllers()

    @property
    def leading(self) -> bool:
        return self.elector.leading

    def _start_controllers(self) -> None:
        self.factory = SharedInformerFactory(self.client)
        for name in self.enabled:
            sa, build = CONTROLLERS[name]
            try:
                client = self.client_for_service_account(sa) if sa else self.client
            except (StatusError, DialError):
                continue
            self.controllers[name] = build(client, self.factory)
        self.factory.start()
        for name in sorted(self.controllers):
            self.controllers[name].run()

    def _stop_controllers(self) -> None:
        for ctrl in self.controllers.values():
            ctrl.stop()
        if self.factory:
            self.factory.stop()

    def _leaderelection_lost(self) -> None:
        self.exited = True  # klog.Fatalf("leaderelection lost"): the process exits
        self._stop_controllers()
        self.elector.stop()
