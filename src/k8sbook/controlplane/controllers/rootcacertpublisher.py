"""The root CA certificate publisher: a ``kube-root-ca.crt`` ConfigMap in every namespace.

Mirrors ``pkg/controller/certificates/rootcacertpublisher/publisher.go`` (v1.35.0), the
``root-ca-cert-publisher`` controller of kube-controller-manager (descriptor
``root-ca-certificate-publisher-controller``), which runs as the ServiceAccount
``kube-system/root-ca-cert-publisher`` (role ``system:controller:root-ca-cert-publisher``:
create and update ConfigMaps). Handlers on the shared Namespace informer (added, and updated
while ``Active``) and ConfigMap informer (a ``kube-root-ca.crt`` updated or deleted) queue the
namespace; ``syncNamespace`` creates the ConfigMap when the informer does not hold it
(``data["ca.crt"]``: the CA bundle of ``--root-ca-file``, kubeadm's
``/etc/kubernetes/pki/ca.crt``; the annotation ``kubernetes.io/description``), gives up
quietly when the namespace is gone or terminating, and puts back the data and the annotation
when someone changed them.

The ServiceAccount admission plugin's ``kube-api-access-*`` volume projects this ConfigMap's
``ca.crt`` next to the token (:mod:`k8sbook.apiserver.serviceaccount_admission`), so that a
pod can verify the apiserver it reaches at ``kubernetes.default.svc``. The CA is read when the
first ConfigMap is written (upstream reads the file at start-up), so that a controller
manager that never writes one needs no ``cryptography``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from k8sbook.client.informer import SharedIndexInformer, final_state
from k8sbook.client.rest import Client
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.controlplane.controllers import Obj
from k8sbook.core.status import StatusError

NAME = "root-ca-cert-publisher"
#: ``RootCACertConfigMapName``
CONFIG_MAP = "kube-root-ca.crt"
#: ``DescriptionAnnotation`` and ``Description``
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using "
               "internal endpoints such as the internal service IP or kubernetes.default.svc. "
               "No other usage is guaranteed across distributions of Kubernetes clusters.")


class Publisher:
    """``Publisher``: ``root_ca()`` gives the PEM bundle (``--root-ca-file``)."""

    def __init__(self, client: Client, cm_informer: SharedIndexInformer,
                 ns_informer: SharedIndexInformer, *, root_ca: Callable[[], bytes]) -> None:
        self.client = client
        self.cm_informer, self.ns_informer = cm_informer, ns_informer
        self._root_ca = root_ca
        self.queue = RateLimitingQueue(client.clock, "root_ca_cert_publisher")
        cm_informer.add_event_handler(
            on_update=lambda old, new: self._config_map_changed(new),
            on_delete=lambda cm: self._config_map_changed(final_state(cm)))
        ns_informer.add_event_handler(
            lambda ns: self.queue.add(ns["metadata"]["name"]),
            lambda old, new: self.queue.add(new["metadata"]["name"])
            if (new.get("status") or {}).get("phase") == "Active" else None)

    @functools.cached_property
    def root_ca(self) -> str:
        return self._root_ca().decode()

    def _config_map_changed(self, cm: Obj) -> None:
        if cm["metadata"]["name"] == CONFIG_MAP:
            self.queue.add(cm["metadata"]["namespace"])

    def run(self) -> None:
        self.queue.run_worker(self.sync)

    def stop(self) -> None:
        self.queue.shut_down()

    def sync(self, key: Any) -> None:
        """``syncNamespace``."""
        data = {"ca.crt": self.root_ca}
        cm = self.cm_informer.get(f"{key}/{CONFIG_MAP}")
        if cm is None:
            try:
                self.client.create({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": CONFIG_MAP, "namespace": key,
                                 "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                    "data": data})
            except StatusError as err:
                # don't retry a create if the namespace doesn't exist or is terminating (any
                # other error, such as 409 when the informer lags, is retried rate-limited)
                if err.code not in (404, 403):
                    raise
            return
        annotations = cm["metadata"].get("annotations") or {}
        if cm.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
            return
        cm = copy.deepcopy(cm)
        cm["data"] = data
        cm["metadata"].setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = DESCRIPTION
        self.client.update(cm)
