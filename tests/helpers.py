"""Shared test helpers."""

import json

from k8sbook.cluster import Cluster


def snapshot(cluster: Cluster) -> str:
    """Everything in etcd, with revisions: equal snapshots mean nothing was written."""
    resp = cluster.etcd.range("\0", "\0")
    return json.dumps([(kv.key, kv.value, kv.mod_revision) for kv in resp.kvs]) + \
        f"@{cluster.etcd.revision}"
