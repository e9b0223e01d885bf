"""``rest.InClusterConfig``: a workload's client of kube-apiserver (``pod->kube-apiserver``).

Mirrors ``k8s.io/client-go/rest.InClusterConfig`` (v1.35.0): code running in a container
reads ``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT`` from its environment (the
kubelet set them) and the token the kubelet mounted at :data:`TOKEN_PATH`, and sends the
token as a bearer token to ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``,
the ClusterIP of Service ``default/kubernetes`` (10.96.0.1:443). Nothing listens on that
address: the packet leaves the pod's node through its netfilter rules, where kube-proxy's
DNAT sends it to an apiserver endpoint (6443); on a node without those rules the dial is
refused.

Simplified: client-go re-reads the token file every minute (``NewCachedFileTokenSource``);
the model reads it once, when the client is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from k8sbook.api.request import BearerToken
from k8sbook.client.network import Address, Network
from k8sbook.client.rest import Client
from k8sbook.core.clock import Clock

#: ``rest.InClusterConfig``'s ``tokenFile``, where the kubelet mounts the pod's token
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class ErrNotInCluster(Exception):
    """``rest.ErrNotInCluster``."""

    def __init__(self) -> None:
        super().__init__("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST "
                         "and KUBERNETES_SERVICE_PORT must be defined")


class ContainerEnvironment(Protocol):
    """What code running in a container sees: its files, its environment, where it is."""

    @property
    def instance(self) -> str: ...   # pod/<namespace>/<name>
    @property
    def node(self) -> str: ...
    @property
    def pod_ip(self) -> str: ...
    @property
    def env(self) -> dict[str, str]: ...

    def read_file(self, path: str) -> str | None: ...


def in_cluster_client(process: ContainerEnvironment, *, network: Network, clock: Clock,
                      jitter: Callable[[], float] | None = None) -> Client:
    """``rest.InClusterConfig()`` + a client, in ``process``'s container.

    Raises :class:`ErrNotInCluster` without the environment variables and
    :class:`FileNotFoundError` (Go's ``open ...: no such file or directory``) without the
    token."""
    host = process.env.get("KUBERNETES_SERVICE_HOST", "")
    port = process.env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ErrNotInCluster()
    token = process.read_file(TOKEN_PATH)
    if not token:
        raise FileNotFoundError(f"open {TOKEN_PATH}: no such file or directory")
    return Client(process.instance, BearerToken(token), network=network,
                  server=Address.tcp(host, int(port)), clock=clock, jitter=jitter,
                  via=process.node, source_ip=process.pod_ip)
