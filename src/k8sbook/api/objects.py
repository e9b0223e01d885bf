"""Builders for API objects shaped exactly as the Kubernetes API shapes them.

Kubernetes has no such module (objects come from YAML or from typed Go structs in
``k8s.io/api``); these functions only save typing in chapters and tests. Every object they
return validates against the official OpenAPI schema of the Kubernetes release the model
follows (the tests check it with ``kubernetes-validate``).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def meta(name: str, namespace: str | None = None, labels: dict[str, str] | None = None,
         **extra: Any) -> Obj:
    out: Obj = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    if labels:
        out["labels"] = dict(labels)
    out.update(extra)
    return out


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta(name)}


def container(name: str, image: str, *, ports: list[int] | None = None,
              requests: dict[str, str] | None = None,
              limits: dict[str, str] | None = None) -> Obj:
    c: Obj = {"name": name, "image": image}
    if ports:
        c["ports"] = [{"containerPort": p} for p in ports]
    if requests or limits:
        c["resources"] = {}
        if requests:
            c["resources"]["requests"] = dict(requests)
        if limits:
            c["resources"]["limits"] = dict(limits)
    return c


def pod(name: str, namespace: str = "default", *, image: str = "registry.k8s.io/pause:3.10",
        labels: dict[str, str] | None = None, containers: list[Obj] | None = None,
        node_name: str | None = None, **spec: Any) -> Obj:
    body: Obj = {"containers": containers or [container("app", image)]}
    if node_name:
        body["nodeName"] = node_name
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, namespace, labels),
            "spec": body}


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
         labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
         pod_cidr: str | None = None) -> Obj:
    """A Node as the kubelet registers it (``status`` is written by the kubelet)."""
    all_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64"}
    all_labels.update(labels or {})
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if pod_cidr:
        spec["podCIDR"], spec["podCIDRs"] = pod_cidr, [pod_cidr]
    capacity = {"cpu": cpu, "memory": memory, "pods": pods}
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta(name, labels=all_labels),
            "spec": spec,
            "status": {"capacity": dict(capacity), "allocatable": dict(capacity)}}


def service(name: str, namespace: str = "default", *, selector: dict[str, str] | None = None,
            ports: list[Obj] | None = None, type: str = "ClusterIP",
            cluster_ip: str | None = None) -> Obj:
    spec: Obj = {"type": type, "ports": ports or [{"name": "http", "port": 80,
                                                   "targetPort": 8080}]}
    if selector is not None:
        spec["selector"] = dict(selector)
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, namespace),
            "spec": spec}


def replicaset(name: str, namespace: str = "default", *, replicas: int = 3,
               labels: dict[str, str] | None = None,
               image: str = "registry.k8s.io/pause:3.10") -> Obj:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": meta(name, namespace, labels),
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [container("app", image)]}}}}


def configmap(name: str, namespace: str = "default", data: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, namespace),
            "data": dict(data or {})}


def lease(name: str, namespace: str, holder: str, duration: int, at: str) -> Obj:
    """A ``coordination.k8s.io/v1`` Lease; ``at`` is a MicroTime string."""
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": meta(name, namespace),
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                     "acquireTime": at, "renewTime": at, "leaseTransitions": 0}}


def pdb(name: str, namespace: str = "default", *, selector: dict[str, str],
        min_available: int | str | None = None, max_unavailable: int | str | None = None) -> Obj:
    spec: Obj = {"selector": {"matchLabels": dict(selector)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": meta(name, namespace), "spec": spec}
