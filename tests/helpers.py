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
