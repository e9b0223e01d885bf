"""The ServiceAccount controller: a ``default`` ServiceAccount in every active namespace.

Mirrors ``pkg/controller/serviceaccount/serviceaccounts_controller.go``: handlers on the
shared Namespace and ServiceAccount informers queue a namespace's name when it is added or
changes, and when one of its ServiceAccounts is deleted; ``syncNamespace`` skips namespaces
that are not ``Active`` (a Terminating one is being emptied) and creates each ServiceAccount of
``ServiceAccountsControllerOptions.ServiceAccounts`` (by default just ``default``) that its
informer does not hold. An ``AlreadyExists`` answer means it was there after all.

The legacy token Secrets of these accounts are another controller's
(``serviceaccount-token``); pods get their tokens from the TokenRequest API through the
kubelet.
"""

from __future__ import annotations

from typing import Any

from k8sbook.client.informer import SharedIndexInformer, final_state
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj, QueueController
from k8sbook.core.status import StatusError

NAME = "service-account-controller"
#: ``DefaultServiceAccountsControllerOptions``
SERVICE_ACCOUNTS = ("default",)


class ServiceAccountsController(QueueController):
    def __init__(self, client: Client, sa_informer: SharedIndexInformer,
                 ns_informer: SharedIndexInformer,
                 service_accounts: tuple[str, ...] = SERVICE_ACCOUNTS) -> None:
        super().__init__(client, "serviceaccount")
        self.sa_informer, self.ns_informer = sa_informer, ns_informer
        self.service_accounts = service_accounts
        sa_informer.add_event_handler(
            on_delete=lambda sa: self.queue.add(final_state(sa)["metadata"]["namespace"]))
        ns_informer.add_event_handler(lambda ns: self.queue.add(ns["metadata"]["name"]),
                                      lambda old, new: self.queue.add(new["metadata"]["name"]))

    def sync(self, key: Any) -> None:
        """``syncNamespace``."""
        ns = self.ns_informer.get(key)
        if ns is None or (ns.get("status") or {}).get("phase") != "Active":
            return
        for name in self.service_accounts:
            if self.sa_informer.get(f"{key}/{name}") is not None:
                continue
            sa: Obj = {"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": name, "namespace": key}}
            try:
                self.client.create(sa)
            except StatusError as err:
                if err.code not in (409, 403):  # exists, or the namespace is terminating
                    raise
