"""Figures drawn from the model: sequence diagrams, communication graphs, timelines.

The book's own code (no Kubernetes counterpart). Every figure is a matplotlib ``Figure``;
:func:`svg` renders it to SVG text that is the same, byte for byte, on every run (fixed hash
salt, no date, text kept as text), so the notebooks store SVG outputs that nbval compares.

Legibility is a rule of this module: every figure is :data:`FIG_WIDTH` inches wide, no text is
under :data:`TEXT_PT`, and labels are wrapped (:func:`wrap`), never cut short, so that in the
book's column (:data:`COLUMN_PX`) the smallest text is at least :data:`MIN_TEXT_PX` CSS px.
:func:`legibility` measures a rendered SVG the way the book shows it.
The module is over 400 lines because the three kinds of drawing share those layout rules and
helpers, which would be scattered (and drift apart) if split.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from k8sbook.core.trace import Message, component_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A new matplotlib ``Figure``, drawn with the book's settings (:func:`_apply_rc_params`).

    Figures are built with the object-oriented API (``Figure``, no pyplot): nothing is shown or
    kept behind the reader's back. matplotlib is imported here, when the first figure is drawn,
    not when this module is imported: importing it stays cheap for every notebook, and in the
    browser edition (Pyodide, where matplotlib is fetched from Pyodide's package index) every
    cell that draws no figure runs even when matplotlib could not be fetched.
    """
    from matplotlib.figure import Figure

    _apply_rc_params()
    return Figure(figsize=figsize)


def _apply_rc_params() -> None:
    """The settings every figure is drawn with: a fixed SVG hash salt (deterministic ids),
    text kept as text, one font and size."""
    import matplotlib

    matplotlib.rcParams.update({
        "svg.hashsalt": "k8sbook",
        "svg.fonttype": "none",
        "font.family": "DejaVu Sans",
        "font.size": 8,
        "figure.dpi": 100,
    })


PLANE_COLOURS = {"control": "#326ce5", "node": "#2e8b57", "data": "#d2691e"}
WRONG = "#c0392b"


#: The book's column at a 1280 px window (sphinx-book-theme, measured on the built site): a
#: figure no wider than this is shown at its natural size (1 pt of the SVG = 4/3 CSS px), a
#: wider one is scaled down to it. Every figure is drawn :data:`FIG_WIDTH` inches wide.
COLUMN_PX = 688
FIG_WIDTH = 7.0
#: The smallest text any figure uses (points of the SVG): 8 pt is 10.7 CSS px at natural size.
TEXT_PT = 8.0
TITLE_PT = 10.0
MIN_TEXT_PX = 10.0
#: How many characters of :data:`TEXT_PT` DejaVu Sans fit in an inch (a safe, wide estimate).
_CHARS_PER_INCH = 72 / (0.58 * TEXT_PT)


def svg(fig: Figure) -> str:
    """Render ``fig`` as deterministic SVG text and close it."""
    _apply_rc_params()  # the hash salt and text-as-text apply when saving
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.06,
                metadata={"Date": None, "Creator": None})
    return buf.getvalue()


class Legibility(NamedTuple):
    """How an SVG figure reads in the book's column (see :func:`legibility`)."""

    width_px: float      # rendered width in the column, CSS px
    min_text_px: float   # the smallest text, CSS px
    texts: int           # how many text elements
    cut: list[str]       # texts cut short with an ellipsis


def svg_texts(svg_text: str) -> tuple[float, list[tuple[float, str]]]:
    """The SVG's width in user units and every ``<text>`` as (font size in user units, text)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(svg_text)
    width = float(root.get("viewBox", "0 0 0 0").split()[2])
    out = []
    for el in root.iter("{http://www.w3.org/2000/svg}text"):
        m = re.search(r"font-size:\s*([\d.]+)px", el.get("style", ""))
        size = float(m.group(1)) if m else 16.0
        out.append((size, "".join(el.itertext())))
    return width, out


def legibility(svg_text: str, column_px: float = COLUMN_PX) -> Legibility:
    """Measure ``svg_text`` as the book shows it: the SVG is ``width`` pt wide (1 pt = 4/3 CSS
    px) and scaled down to fit ``column_px``, so text of ``s`` user units renders at
    ``s * rendered_width / viewBox_width`` CSS px. Also lists texts cut with ``…``."""
    width, texts = svg_texts(svg_text)
    rendered = min(column_px, width * 4 / 3)
    scale = rendered / width if width else 0.0
    sizes = [size * scale for size, text in texts if text.strip()]
    return Legibility(rendered, min(sizes, default=0.0), len(sizes),
                      [text for _, text in texts if "…" in text])


def _subplots(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    fig = _new_figure(figsize)
    return fig, fig.subplots()


def show(fig: Figure) -> Any:
    """Display ``fig`` in a notebook as SVG (what nbval compares and the book publishes)."""
    from IPython.display import SVG

    return SVG(svg(fig))


def wrap(text: str, width: float, breaks: str = "/") -> str:
    """Break ``text`` into lines of at most ``width`` characters, at spaces or after any of
    ``breaks`` (a path or a name stays whole where it can); nothing is dropped or cut short."""
    width = max(int(width), 4)
    after = r"|(?<=[" + re.escape(breaks) + r"])" if breaks else ""
    tokens = [t for t in re.split(r"(\s+" + after + ")", text) if t]
    lines: list[str] = []
    line = ""
    for token in tokens:
        if token.isspace():
            if line:
                line += " "
            continue
        while len(token) > width:  # a single word longer than a line: split it (no ellipsis)
            if line.strip():
                lines.append(line.rstrip())
                line = ""
            lines.append(token[:width])
            token = token[width:]
        if len(line) + len(token) > width and line.strip():
            lines.append(line.rstrip())
            line = ""
        line += token
    if line.strip():
        lines.append(line.rstrip())
    return "\n".join(lines) or text


def _wrap_name(name: str, width: int = 14) -> str:
    """A component name on lines of about ``width`` characters, broken after ``-`` or ``/``."""
    return name if len(name) <= width else wrap(name, width, breaks="-/")


def _chars(inches: float, size: float = TEXT_PT) -> float:
    """How many characters of ``size`` pt fit in ``inches``."""
    return inches * _CHARS_PER_INCH * TEXT_PT / size


def _lines(text: str) -> int:
    return text.count("\n") + 1


_LINE_IN = TEXT_PT * 1.25 / 72  # the height of one line of label text, inches


def _failed(m: Message) -> bool:
    return any(s in m.result for s in ("refused", "compacted", "tls: ",
                                       "No agent available")) or (
        m.result[:1] in ("4", "5") and len(m.result) >= 3 and m.result[:3].isdigit())


def sequence_diagram(messages: Sequence[Message], participants: Sequence[str] | None = None,
                     title: str = "", by: str = "instance", width: float = FIG_WIDTH,
                     fold: Callable[[Message], str | None] | None = None) -> Figure:
    """A sequence diagram: one lifeline per participant, one arrow per message, top to
    bottom in trace order. Requests are solid, watch events dashed, failures red.
    ``by="component"`` merges instances (``kubelet/node-a`` → ``kubelet``).

    Labels are wrapped to the room between their lifelines, never cut short; the figure grows
    taller instead. ``fold`` summarises noise: consecutive messages for which it returns the
    same text become one dotted row, "text: N calls, t0-t1 s". ``width`` is capped at
    :data:`FIG_WIDTH` so that the text stays legible in the book's column."""
    def who(name: str) -> str:
        return component_of(name) if by == "component" else name

    order: list[str] = list(participants or [])
    for m in messages:
        for p in (who(m.src), who(m.dst)):
            if p not in order:
                order.append(p)
    # rows: (t, t_end, src, dst, label, colour, linestyle)
    rows: list[tuple[float, float, str, str, str, str, str]] = []
    folded: dict[tuple[str, str, str], int] = {}  # the current run of folded messages
    for m in messages:
        key = fold(m) if fold else None
        if key is None:
            folded = {}
            colour = WRONG if _failed(m) or m.verb == "ERROR" else "#222222"
            style = "--" if ("watch" in m.protocol or m.verb == "CLOSED") else "-"
            rows.append((m.t, m.t, who(m.src), who(m.dst), m.label(), colour, style))
            continue
        # one row per (text, sender, receiver) within a run of consecutive folded messages
        k = (key, who(m.src), who(m.dst))
        if k in folded:
            i = folded[k]
            t0, _, src, dst, label, colour, style = rows[i]
            count = int(label.rsplit(": ", 1)[1].split()[0]) + 1
            rows[i] = (t0, m.t, src, dst, f"{key}: {count} calls", colour, style)
        else:
            folded[k] = len(rows)
            rows.append((m.t, m.t, k[1], k[2], f"{key}: 1 calls", "#777777", ":"))

    width = min(width, FIG_WIDTH)
    left = 0.6                       # the time column
    spacing = (width - left) / max(len(order), 1)
    x = {p: left + spacing * (i + 0.5) for i, p in enumerate(order)}
    fig = _new_figure((width, 1.0))  # the height is set once the rows are laid out
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    y = 0.05
    if title:
        wrapped = wrap(title, _chars(width, TITLE_PT), breaks="")
        ax.text(0.05, y, wrapped, ha="left", va="top", fontsize=TITLE_PT, fontweight="bold")
        y += _lines(wrapped) * TITLE_PT * 1.3 / 72 + 0.12
    # crowded lifelines: the name boxes alternate between two rows, each twice as wide
    stagger = spacing < 1.0 and len(order) > 2
    room_in = (2 * spacing if stagger else spacing) - 0.2
    if stagger:  # the first and last boxes are wider than their lanes: inset the lifelines
        pad = room_in / 2 + 0.05
        step = (width - left - 2 * pad) / (len(order) - 1)
        x = {p: left + pad + step * i for i, p in enumerate(order)}
        spacing = step
    names = {p: _wrap_name(p, max(int(_chars(room_in, TEXT_PT + 0.5)), 6)) for p in order}
    box_lines = max((_lines(n) for n in names.values()), default=1)
    box_in = box_lines * (TEXT_PT + 0.5) * 1.2 / 72 + 0.12
    for i, p in enumerate(order):
        ax.text(x[p], y + 0.04 + (box_in if stagger and i % 2 else 0.0), names[p], ha="center",
                va="top", fontsize=TEXT_PT + 0.5, fontweight="bold", linespacing=1.15,
                bbox={"boxstyle": "round", "fc": "#eef3fc", "ec": "#326ce5"})
    top = y + box_in * (2 if stagger else 1) + 0.08
    y = top
    for t0, t1, src, dst, label, colour, style in rows:
        x0, x1 = x[src], x[dst]
        if x0 == x1:
            room = spacing - 0.35
            lx, ha = (x0 + 0.3, "left") if x0 + spacing < width else (x0 - 0.3, "right")
        else:  # a label may reach over neighbouring lifelines, but stays in the drawing
            room = max(abs(x1 - x0) - 0.15, min(2.6, width - left - 0.1))
            text = wrap(label, _chars(room), breaks="/.=,")
            half = max(len(line) for line in text.splitlines()) / _CHARS_PER_INCH / 2 + 0.12
            lx, ha = min(max((x0 + x1) / 2, left + half), width - half), "center"
        text = wrap(label, _chars(room), breaks="/.=,")
        y += _lines(text) * _LINE_IN + 0.06
        if x0 == x1:
            ax.annotate("", xy=(x0 + 0.22 * (1 if ha == "left" else -1), y + 0.08),
                        xytext=(x0, y - 0.02),
                        arrowprops={"arrowstyle": "->", "color": colour, "linestyle": style})
        else:
            ax.annotate("", xy=(x1, y), xytext=(x0, y),
                        arrowprops={"arrowstyle": "->", "color": colour, "linestyle": style,
                                    "lw": 1.0})
        ax.text(lx, y - 0.04, text, ha=ha, va="bottom", fontsize=TEXT_PT, color=colour,
                linespacing=1.1, bbox={"boxstyle": "square,pad=0.05", "fc": "white",
                                       "ec": "none", "alpha": 0.85})
        when = f"{t0:.2f}s" if t1 == t0 else f"{t0:.1f}-\n{t1:.1f}s"
        ax.text(left - 0.08, y, when, ha="right", va="center", fontsize=TEXT_PT,
                color="#666666", linespacing=1.0)
        y += 0.1 + (0.08 if x0 == x1 else 0.0)
    bottom = y + 0.1
    for p in order:
        ax.plot([x[p], x[p]], [top - 0.1, bottom], color="#999999", lw=0.8, zorder=0)
    fig.set_size_inches(width, bottom + 0.1)
    ax.set_xlim(0, width)
    ax.set_ylim(bottom + 0.1, 0)
    ax.axis("off")
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
                        size: tuple[float, float] = (FIG_WIDTH, 5.2),
                        positions: Mapping[str, tuple[float, float]] | None = None,
                        label_on_curve: bool = False) -> Figure:
    """Draw initiator→target edges. Edge attributes: ``colour``, ``style`` ('-' or '--'),
    ``label`` (short, drawn at the middle), ``width``, ``url`` (the arrow and its label link
    there in the SVG). ``positions`` overrides :data:`LAYOUT`
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
        arrow = ax.annotate("", xy=pos[b], xytext=pos[a],
                            arrowprops={"arrowstyle": "-|>",
                                        "color": attrs.get("colour", "#333333"),
                                        "lw": attrs.get("width", 1.3), "linestyle": style,
                                        "shrinkA": 16, "shrinkB": 16,
                                        "connectionstyle": f"arc3,rad={rad}"})
        if attrs.get("url") and arrow.arrow_patch is not None:  # a link in the SVG
            arrow.arrow_patch.set_url(attrs["url"])
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
            ax.text(mx, my, attrs["label"], fontsize=TEXT_PT, ha=ha, va=va,
                    color=attrs.get("colour", "#333333"), url=attrs.get("url"),
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                          "alpha": 0.85})
    for n in sorted(g.nodes):
        px, py = pos[n]
        ax.text(px, py, _wrap_name(n), ha="center", va="center", fontsize=TEXT_PT + 0.5,
                linespacing=1.1,
                bbox={"boxstyle": "round,pad=0.35", "fc": "#eef3fc", "ec": "#326ce5"})
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.axis("off")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99 if not title else 0.93)
    _title(fig, title)
    return fig


def _title(fig: Figure, title: str) -> None:
    """The title above the axes, wrapped to the figure's width (never over the drawing)."""
    if title:
        fig.text(0.01, 0.995, wrap(title, _chars(fig.get_figwidth(), TITLE_PT), breaks=""),
                 ha="left", va="top", fontsize=TITLE_PT, fontweight="bold")


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
        ax.text(x, y + 0.5, attrs["label"], fontsize=TEXT_PT, ha="center", va="center",
                color=colour, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                    "alpha": 0.85})


def timeline(lanes: Sequence[str], spans: Sequence[tuple[str, float, float, str, str]],
             points: Sequence[tuple[str, float, str]] = (), title: str = "",
             xlabel: str = "virtual time (s)", width: float = FIG_WIDTH) -> Figure:
    """Horizontal lanes with spans ``(lane, start, end, label, colour)`` and point markers
    ``(lane, t, label)``: leader terms, lease renewals, node conditions, back-offs.

    A point's label goes under its marker, on the first free level of its lane (labels that
    would overlap are stacked), flipped to the left of the marker near the right edge; the
    lanes grow to hold their levels. ``width`` is capped at :data:`FIG_WIDTH`."""
    width = min(width, FIG_WIDTH)
    times = [t for _, t, _ in points] + [e for _, _, e, _, _ in spans] + \
        [s for _, s, _, _, _ in spans] + [0.0]
    lo, hi = min(times), max(times)
    span_t = (hi - lo) or 1.0
    left_in = 1.25
    plot_in = width - left_in - 0.15
    per_char = span_t / plot_in / _CHARS_PER_INCH * 1.02  # time units per character
    xmin, xmax = lo - 0.02 * span_t, hi + 0.03 * span_t
    # levels: for each lane, the labels' (t, level, ha)
    placed: dict[str, list[tuple[float, str, int, str]]] = {lane: [] for lane in lanes}
    for lane, t, label in sorted(points, key=lambda p: (p[0], p[1])):
        length = len(label) * per_char
        ha = "left" if t + length <= xmax else "right"
        a, b = (t, t + length) if ha == "left" else (t - length, t)
        taken = placed[lane]
        level = 0
        while any(lv == level and not (b < s0 - 0.2 * per_char or a > s1 + 0.2 * per_char)
                  for _, _, lv, (s0, s1) in ((p[0], p[1], p[2], _extent(p, per_char))
                                             for p in taken)):
            level += 1
        taken.append((t, label, level, ha))
    level_in = TEXT_PT * 1.3 / 72
    heights = {lane: 0.45 + level_in * (1 + max((p[2] for p in placed[lane]
                                                 if p[1]), default=-1))
               for lane in lanes}
    y: dict[str, float] = {}
    acc = 0.25
    for lane in lanes:
        y[lane] = acc
        acc += heights[lane] + 0.15
    title_in = 0.0
    if title:
        title_in = _lines(wrap(title, _chars(width, TITLE_PT), breaks="")) * TITLE_PT * 1.3 / 72
    axes_h = acc
    fig_h = axes_h + 0.55 + title_in + 0.1
    fig = _new_figure((width, fig_h))
    ax = fig.add_axes((left_in / width, 0.55 / fig_h, plot_in / width, axes_h / fig_h))
    for lane, start, end, label, colour in spans:
        ax.barh(y[lane], end - start, left=start, height=0.3, color=colour, alpha=0.8,
                edgecolor="#333333", lw=0.5)
        if label:
            room = (end - start) / per_char
            text = label if len(label) <= room else wrap(label, max(room, 10), breaks="")
            dark = colour not in ("#ffffff", "white", "#bbbbbb", "#dddddd")
            ax.text(start + (end - start) / 2, y[lane], text, ha="center", va="center",
                    fontsize=TEXT_PT, linespacing=1.0, color="white" if dark else "k")
    for lane in lanes:
        for t, label, level, ha in placed[lane]:
            ax.plot([t], [y[lane]], marker="v", color="#222222", ms=5)
            if label:
                ax.text(t, y[lane] + 0.2 + level_in * level, label, ha=ha, va="top",
                        fontsize=TEXT_PT)
    ax.set_yticks([y[lane] for lane in lanes], [_wrap_name(lane, 16) for lane in lanes],
                  fontsize=TEXT_PT)
    ax.tick_params(axis="x", labelsize=TEXT_PT)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(acc, 0)  # top lane first, room for labels below
    ax.set_xlabel(xlabel, fontsize=TEXT_PT)
    ax.grid(axis="x", color="#dddddd", lw=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    _title(fig, title)
    return fig


def _extent(placed: tuple[float, str, int, str], per_char: float) -> tuple[float, float]:
    t, label, _, ha = placed
    length = len(label) * per_char
    return (t, t + length) if ha == "left" else (t - length, t)
