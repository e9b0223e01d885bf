"""Shared test helpers."""

import json

from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios import networking as net


def snapshot(cluster: Cluster) -> str:
    """Everything in etcd, with revisions: equal snapshots mean nothing was written."""
    resp = cluster.etcd.range("\0", "\0")
    return json.dumps([(kv.key, kv.value, kv.mod_revision) for kv in resp.kvs]) + \
        f"@{cluster.etcd.revision}"


def ready_pod(admin, name, ip, *, labels, port_name="http", node="node-a", ready=True,
              namespace="default", **spec):
    """Create a pod and write its status as a kubelet would (test set-up as admin)."""
    admin.create(net.app_pod(name, node, labels=labels, port_name=port_name,
                             namespace=namespace, **spec))
    pod = admin.get("pods", name, namespace)
    pod["status"].update({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                          "conditions": [{"type": "Ready",
                                          "status": "True" if ready else "False"}]})
    return admin.update_status(pod)


def slices(cluster, service, namespace="default"):
    return sorted((s for s in cluster.admin().list("endpointslices", namespace)["items"]
                   if s["metadata"]["labels"].get("kubernetes.io/service-name") == service),
                  key=lambda s: s["metadata"]["name"])


def node_with_pod(port: int, *, settle: float = 3.0, **pod: object):
    """A cluster with one started kubelet (``node-a``) running pod ``web`` (container ``app``,
    nginx, listening on ``port``); returns ``(cluster, kubelet, admin)``."""
    from k8sbook.api import objects

    cluster = Cluster(0)
    kubelet = cluster.add_kubelet("node-a").start()
    cluster.run_for(1)
    admin = cluster.admin()
    admin.create(objects.pod("web", node_name="node-a",
                             containers=[objects.container("app", "nginx:1.27", ports=[port])],
                             **pod))
    cluster.run_for(settle)
    return cluster, kubelet, admin


def status_error(fn) -> tuple[int, str]:
    """Call ``fn``, which must raise a StatusError; return its code and message."""
    import pytest

    from k8sbook.core.status import StatusError

    with pytest.raises(StatusError) as err:
        fn()
    return err.value.code, err.value.status["message"]
