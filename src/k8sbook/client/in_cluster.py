"""``rest.InClusterConfig``: a workload's client of kube-apiserver (``pod->kube-apiserver``).

Mirrors ``k8s.io/client-go/rest.InClusterConfig``: in a pod's container, the client reads the
token the kubelet mounted at :data:`~k8sbook.node.token_manager.TOKEN_PATH` and uses it as a
bearer token against the Service ``kubernetes`` (``KUBERNETES_SERVICE_HOST``:``_PORT``).
"""

from __future__ import annotations

from typing import Any

from k8sbook.api.request import BearerToken
from k8sbook.client.rest import Client

#: ``rest.InClusterConfig``'s ``tokenFile``, where the kubelet mounts the pod's token
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def in_cluster_client(cluster: Any, kubelet: Any, namespace: str, pod_name: str) -> Client:
    """``rest.InClusterConfig()`` in the pod's container: the mounted token as a bearer
    token, for the Service ``kubernetes`` (``KUBERNETES_SERVICE_HOST``:``_PORT``)."""
    rec = kubelet.record(namespace, pod_name)
    token = rec.files.get(TOKEN_PATH) if rec is not None else None
    if not token:
        raise FileNotFoundError(f"open {TOKEN_PATH}: no such file or directory")
    return cluster.client(f"pod/{namespace}/{pod_name}", BearerToken(token))
