"""``ImageLocality`` (``pkg/scheduler/framework/plugins/imagelocality``): images already on
a node (``status.images``), weighted by how widely they are spread, raise its score.

The model spreads an image over the nodes being scored (upstream divides by the nodes of the
whole snapshot, ``ImageStateSummary.NumNodes`` over ``totalNumNodes``). Each node's images
are read once per Node object (:attr:`NodeInfo.image_sizes`)."""

from __future__ import annotations

from k8sbook.controlplane.scheduler.framework import MAX_NODE_SCORE, NodeInfo, Obj

MB = 1024 * 1024
MIN_THRESHOLD, MAX_CONTAINER_THRESHOLD = 23 * MB, 1000 * MB


def score(pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
    images = [c.get("image", "") for c in pod["spec"].get("containers", [])]
    #: how many of the scored nodes have each of the pod's images
    spread = {image: len([ni for ni in nodes if image in ni.image_sizes]) for image in images}
    max_threshold = MAX_CONTAINER_THRESHOLD * max(len(images), 1)
    if not any(spread.values()):  # no image anywhere: every sum is clamped to the minimum
        return {ni.name: 0 for ni in nodes}
    out = {}
    for ni in nodes:
        total = 0.0
        for image in images:
            if image in ni.image_sizes:
                total += ni.image_sizes[image] * spread[image] / len(nodes)
        total = min(max(total, MIN_THRESHOLD), max_threshold)
        out[ni.name] = int(MAX_NODE_SCORE * (total - MIN_THRESHOLD)
                           // (max_threshold - MIN_THRESHOLD))
    return out
