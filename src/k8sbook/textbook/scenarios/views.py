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


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively, so that YAML prints them as sequences."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def yaml(value: Any) -> str:
    """``value`` as ``kubectl get -o yaml`` prints an object: block style, keys sorted (kubectl
    goes through a map, so its keys come out sorted), a list of scalars on one line."""
    # Imported here, not at the top: in the browser edition PyYAML comes from Pyodide's
    # package index (online only), and no other cell of a chapter should need it.
    import yaml as pyyaml  # type: ignore[import-untyped]

    class Dumper(pyyaml.SafeDumper):
        """Block style, as kubectl prints, except a list of plain scalars: one line."""

        def represent_sequence(self, tag: str, sequence: Any, flow_style: Any = None) -> Any:
            scalars = all(not isinstance(item, dict | list | tuple) for item in sequence)
            return super().represent_sequence(tag, sequence,
                                              flow_style=scalars and bool(sequence))

    text = pyyaml.dump(_plain(value), Dumper=Dumper, sort_keys=True, default_flow_style=False,
                       allow_unicode=True, width=88)
    return text.removesuffix("...\n").rstrip("\n")
