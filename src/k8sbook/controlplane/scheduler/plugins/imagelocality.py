"""``ImageLocality`` (``pkg/scheduler/framework/plugins/imagelocality``): images already on
a node (``status.images``), weighted by how widely they are spread, raise its score."""

from __future__ import annotations

from k8sbook.controlplane.scheduler.framework import MAX_NODE_SCORE, NodeInfo, Obj

MB = 1024 * 1024
MIN_THRESHOLD, MAX_CONTAINER_THRESHOLD = 23 * MB, 1000 * MB


def score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    containers = pod["spec"].get("containers", [])
    have: dict[str, dict[str, int]] = {}
    for ni in nodes:
        for img in ni.node.get("status", {}).get("images", []) or []:
            for name in img.get("names", []):
                have.setdefault(name, {})[ni.name] = img.get("sizeBytes", 0)
    out = {}
    max_threshold = MAX_CONTAINER_THRESHOLD * max(len(containers), 1)
    for ni in nodes:
        total = 0.0
        for c in containers:
            on = have.get(c.get("image", ""), {})
            if ni.name in on:
                total += on[ni.name] * len(on) / len(nodes)
        total = min(max(total, MIN_THRESHOLD), max_threshold)
        out[ni.name] = int(MAX_NODE_SCORE * (total - MIN_THRESHOLD)
                           // (max_threshold - MIN_THRESHOLD))
    return out
