"""Views of a run for the control-plane chapters: which messages to draw, which paths were
used. The book's own code (no Kubernetes counterpart)."""

from __future__ import annotations

from typing import Any

from k8sbook.core.trace import Message
from k8sbook.textbook.scenarios import ScenarioResult


def api_messages(result: ScenarioResult, *, leases: bool = False, events: bool = False,
                 node_local: bool = False, only: tuple[str, ...] = ()) -> list[Message]:
    """The messages worth drawing: no etcd traffic, and (unless asked) no Lease renewals,
    no Event writes, no node-local CRI/CNI calls. ``only`` keeps messages whose source or
    destination component is one of those named."""
    out = []
    for m in result.messages:
        comps = {m.src.split("/")[0], m.dst.split("/")[0]}
        if "etcd" in comps:
            continue
        if not leases and m.resource == "leases":
            continue
        if not events and m.resource == "events":
            continue
        if not node_local and not m.path.endswith("->kube-apiserver") and \
                m.path != "cloud-controller-manager->cloud-api":
            continue
        if not node_local and m.resource == "nodes/status" and m.src.startswith("kubelet"):
            continue
        if only and not comps & set(only):
            continue
        out.append(m)
    return out


def path_edges(result: ScenarioResult) -> list[tuple[str, str, dict[str, Any]]]:
    """One edge per path the scenario used, labelled with its message count."""
    counts = result.cluster.trace.path_counts(result.messages)
    return [(p.split("->")[0], p.split("->")[1], {"label": str(n)})
            for p, n in sorted(counts.items())]
