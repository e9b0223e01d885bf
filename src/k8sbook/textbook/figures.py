"""Figures drawn from the model: sequence diagrams, communication graphs, timelines.

The book's own code (no Kubernetes counterpart). Every figure is a matplotlib ``Figure``;
:func:`svg` renders it to SVG text that is the same, byte for byte, on every run (fixed hash
salt, no date, text kept as text), so the notebooks store SVG outputs that nbval compares.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from k8sbook.core.trace import Message, component_of

# Figures are built with the object-oriented API (``Figure``, no pyplot): nothing is shown or
# kept behind the reader's back, and importing this module stays cheap for every notebook.
matplotlib.rcParams.update({
    "svg.hashsalt": "k8sbook",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "figure.dpi": 100,
})

PLANE_COLOURS = {"control": "#326ce5", "node": "#2e8b57", "data": "#d2691e"}
WRONG = "#c0392b"


def svg(fig: Figure) -> str:
    """Render ``fig`` as deterministic SVG text and close it."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight",
                metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def _subplots(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def show(fig: Figure) -> Any:
    """Display ``fig`` in a notebook as SVG (what nbval compares and the book publishes)."""
    from IPython.display import SVG

    return SVG(svg(fig))


def _wrap_name(name: str, width: int = 14) -> str:
    """Break a long component name at the hyphen nearest its middle: two short lines."""
    if len(name) <= width or "-" not in name:
        return name
    cuts = [i for i, ch in enumerate(name) if ch in "-/"]
    cut = min(cuts, key=lambda i: abs(i - len(name) / 2))
    return name[: cut + 1] + "\n" + name[cut + 1:]


def _short(text: str, width: int = 46) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def sequence_diagram(messages: Sequence[Message], participants: Sequence[str] | None = None,
                     title: str = "", by: str = "instance", width: float = 10.0) -> Figure:
    """A sequence diagram: one lifeline per participant, one arrow per message, top to
    bottom in trace order. Requests are solid, watch events dashed, failures red.
    ``by="component"`` merges instances (``kubelet/node-a`` → ``kubelet``)."""
    def who(name: str) -> str:
        return component_of(name) if by == "component" else name

    order: list[str] = list(participants or [])
    for m in messages:
        for p in (who(m.src), who(m.dst)):
            if p not in order:
                order.append(p)
    x = {p: i for i, p in enumerate(order)}
    height = 1.2 + 0.32 * max(len(messages), 1)
    fig, ax = _subplots((max(width, 2.2 * len(order)), height))
    n = len(messages)
    for p, i in x.items():
        ax.plot([i, i], [-0.5, n], color="#999999", lw=0.8, zorder=0)
        ax.text(i, -0.7, _wrap_name(p), ha="center", va="bottom", fontsize=9, fontweight="bold",
                bbox={"boxstyle": "round", "fc": "#eef3fc", "ec": "#326ce5"})
    for row, m in enumerate(messages):
        x0, x1 = x[who(m.src)], x[who(m.dst)]
        failed = any(s in m.result for s in ("refused", "compacted")) or (
            m.result[:1] in ("4", "5") and len(m.result) >= 3 and m.result[:3].isdigit())
        event = "watch" in m.protocol or m.verb == "CLOSED"
        colour = WRONG if failed or m.verb == "ERROR" else "#222222"
        if x0 == x1:
            ax.annotate("", xy=(x0 + 0.25, row + 0.2), xytext=(x0, row),
                        arrowprops={"arrowstyle": "->", "color": colour})
        else:
            ax.annotate("", xy=(x1, row), xytext=(x0, row),
                        arrowprops={"arrowstyle": "->", "color": colour,
                                    "linestyle": "--" if event else "-", "lw": 1.0})
        ax.text((x0 + x1) / 2, row - 0.08, _short(m.label()), ha="center", va="bottom",
                fontsize=7.5, color=colour)
        ax.text(-0.55, row, f"{m.t:.2f}s", ha="right", va="center", fontsize=7, color="#666666")
    ax.set_xlim(-0.9, len(order) - 0.4)
    ax.set_ylim(n + 0.2, -1.4)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    return fig


#: Where each component sits in graph drawings: control plane on top, node in the middle,
#: data plane and outside systems at the edges. Unknown names are placed on a row below.
LAYOUT: dict[str, tuple[float, float]] = {
    "kubectl": (-4.0, 3.0), "descheduler": (-2.6, 3.4),
    "kube-controller-manager": (-1.3, 3.4), "kube-scheduler": (0.0, 3.6),
    "cloud-controller-manager": (1.4, 3.4), "cloud-api": (3.0, 3.6),
    "etcd": (-2.2, 1.8), "kube-apiserver": (0.0, 1.8), "webhook": (2.4, 2.4),
    "metrics-server": (2.8, 1.4), "konnectivity-server": (1.6, 0.9),
    "konnectivity-agent": (2.6, 0.1), "ingress-controller": (3.6, -0.6),
    "coredns": (-3.6, 0.2), "kube-proxy": (-1.9, 0.0), "kubelet": (0.0, 0.0),
    "container-runtime": (0.0, -1.4), "csi-node-plugin": (1.5, -1.2),
    "oci-runtime": (-1.0, -2.6), "cni-plugin": (1.0, -2.6), "pod": (-2.0, -1.8),
    # names that only the seed uses
    "rescheduler": (-3.6, 2.6), "kube-dns": (-4.0, -0.8),
}


def _positions(nodes: Iterable[str]) -> dict[str, tuple[float, float]]:
    pos = {}
    extra = sorted(n for n in nodes if n not in LAYOUT)
    for n in nodes:
        if n in LAYOUT:
            pos[n] = LAYOUT[n]
    for i, n in enumerate(extra):
        pos[n] = (-4.0 + 1.6 * i, -3.4)
    return pos


def communication_graph(edges: Sequence[tuple[str, str, dict[str, Any]]], title: str = "",
                        size: tuple[float, float] = (11.0, 7.5),
                        positions: Mapping[str, tuple[float, float]] | None = None,
                        label_on_curve: bool = False) -> Figure:
    """Draw initiator→target edges. Edge attributes: ``colour``, ``style`` ('-' or '--'),
    ``label`` (short, drawn at the middle), ``width``. ``positions`` overrides :data:`LAYOUT`
    for the names it lists; ``label_on_curve`` puts labels on the drawn arc rather than on the
    straight line between the ends (clearer when two edges join the same pair). An edge from
    a component to itself (``etcd->etcd``) is drawn as a small loop above its box."""
    import networkx as nx  # type: ignore[import-untyped]  # only graph drawings need it

    g = nx.MultiDiGraph()
    for a, b, attrs in edges:
        g.add_edge(a, b, **attrs)
    pos = _positions(sorted(g.nodes))
    if positions:
        pos.update({n: positions[n] for n in g.nodes if n in positions})
    fig, ax = _subplots(size)
    for a, b, attrs in sorted(g.edges(data=True), key=lambda e: (e[0], e[1])):
        style = attrs.get("style", "-")
        if a == b:
            _self_loop(ax, pos[a], attrs)
            continue
        rad = 0.18 if g.has_edge(b, a) else 0.06
        ax.annotate("", xy=pos[b], xytext=pos[a],
                    arrowprops={"arrowstyle": "-|>", "color": attrs.get("colour", "#333333"),
                                "lw": attrs.get("width", 1.3), "linestyle": style,
                                "shrinkA": 16, "shrinkB": 16,
                                "connectionstyle": f"arc3,rad={rad}"})
        if attrs.get("label"):
            mx, my = (pos[a][0] + pos[b][0]) / 2, (pos[a][1] + pos[b][1]) / 2
            ha, va = "center", "center"
            if label_on_curve:  # the middle of arc3's quadratic curve
                ox, oy = rad * (pos[b][1] - pos[a][1]) / 2, -rad * (pos[b][0] - pos[a][0]) / 2
                mx, my = mx + ox, my + oy
                if g.has_edge(b, a):  # keep the two labels of a pair apart
                    if abs(ox) > abs(oy):
                        ha = "left" if ox > 0 else "right"
                    else:
                        va = "bottom" if oy > 0 else "top"
            ax.text(mx, my, attrs["label"], fontsize=7, ha=ha, va=va,
                    color=attrs.get("colour", "#333333"),
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                          "alpha": 0.85})
    for n in sorted(g.nodes):
        px, py = pos[n]
        ax.text(px, py, n, ha="center", va="center", fontsize=8.5,
                bbox={"boxstyle": "round,pad=0.35", "fc": "#eef3fc", "ec": "#326ce5"})
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    return fig


def _self_loop(ax: Any, xy: tuple[float, float], attrs: dict[str, Any]) -> None:
    """A loop above a component's box, for connections between its own instances."""
    x, y = xy
    colour = attrs.get("colour", "#333333")
    ax.annotate("", xy=(x + 0.2, y + 0.12), xytext=(x - 0.2, y + 0.12),
                arrowprops={"arrowstyle": "-|>", "color": colour,
                            "lw": attrs.get("width", 1.3), "linestyle": attrs.get("style", "-"),
                            "shrinkA": 0, "shrinkB": 0,
                            "connectionstyle": "arc3,rad=-1.2"})
    if attrs.get("label"):
        ax.text(x, y + 0.5, attrs["label"], fontsize=7, ha="center", va="center",
                color=colour, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                    "alpha": 0.85})


def timeline(lanes: Sequence[str], spans: Sequence[tuple[str, float, float, str, str]],
             points: Sequence[tuple[str, float, str]] = (), title: str = "",
             xlabel: str = "virtual time (s)", width: float = 10.0) -> Figure:
    """Horizontal lanes with spans ``(lane, start, end, label, colour)`` and point markers
    ``(lane, t, label)``: leader terms, lease renewals, node conditions, back-offs."""
    y = {lane: i * 1.6 for i, lane in enumerate(lanes)}
    times = [t for _, t, _ in points] + [e for _, _, e, _, _ in spans] + [0.0]
    near = 0.09 * (max(times) - min(times) or 1.0)
    fig, ax = _subplots((width, 1.0 + 1.0 * len(lanes)))
    for lane, start, end, label, colour in spans:
        ax.barh(y[lane], end - start, left=start, height=0.5, color=colour, alpha=0.8,
                edgecolor="#333333", lw=0.5)
        if label:
            ax.text(start + (end - start) / 2, y[lane], label, ha="center", va="center",
                    fontsize=7.5, color="white" if colour not in ("#ffffff", "white") else "k")
    last: dict[str, tuple[float, int]] = {}
    for lane, t, label in sorted(points, key=lambda p: (p[0], p[1])):
        prev_t, level = last.get(lane, (None, -1))
        level = level + 1 if prev_t is not None and t - prev_t < near else 0
        last[lane] = (t, level)
        ax.plot([t], [y[lane]], marker="v", color="#222222", ms=5)
        if label:
            ax.text(t, y[lane] + 0.3 + 0.24 * level, label, ha="left", va="top", fontsize=7)
    ax.set_yticks([y[lane] for lane in lanes], list(lanes))
    ax.set_ylim(max(y.values()) + 1.2, -0.7)  # top lane first, room for labels below
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#dddddd", lw=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    return fig
