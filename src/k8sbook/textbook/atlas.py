"""The map of the book (chapter 1): the catalog's paths and the seed's claims as graphs and tables.

The book's own code, with no Kubernetes counterpart. It reads :mod:`k8sbook.textbook.catalog` and turns
it into what chapter ``01-the-map`` shows:

* :func:`real_edges`: every catalog path as an edge ``(initiator, target, attrs)`` for
  :func:`k8sbook.textbook.figures.communication_graph`, coloured by plane and labelled with its port;
* :func:`seed_edges`: the graph the seed page describes, one edge per connection its claims
  assert, the ones a current cluster does not have drawn red and dashed;
* :func:`wrong_edges`, :func:`undrawn_paths`, :func:`verdict_counts`, :func:`claims_by_verdict`:
  the numbers the chapter states;
* :func:`claims_table`, :func:`paths_table`, :func:`wrong_edges_table`: Markdown tables, with
  links to the chapter notebooks that show each claim (relative ``NN-name.ipynb`` links, which
  Jupyter follows and MyST-NB resolves when the cell's ``mystnb.markdown_format`` is ``myst``).

Everything is computed from the catalog at call time, so a chapter that sets ``chapter`` in the
TOML files shows up in the tables on the next refresh. Output is sorted and deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from k8sbook.textbook.catalog import VERDICTS, Claim, CommPath, SeedEdge, claims, paths
from k8sbook.textbook.figures import PLANE_COLOURS, WRONG, communication_graph
from k8sbook.textbook.seed import anchor, chapter_link

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn (see figures.py)
    from matplotlib.figure import Figure

__all__ = [
    "API_PORT",
    "MAP_LAYOUT",
    "SEED_ALIASES",
    "Edge",
    "chapter_cell",
    "claims_by_verdict",
    "claims_table",
    "edge_label",
    "path_anchor",
    "paths_into",
    "paths_out_of",
    "paths_table",
    "real_edges",
    "real_map",
    "seed_edges",
    "seed_map",
    "shorten",
    "undrawn_paths",
    "verdict_counts",
    "wrong_edges",
    "wrong_edges_table",
]

Edge = tuple[str, str, dict[str, Any]]
"""An edge for :func:`k8sbook.textbook.figures.communication_graph`: initiator, target, attributes."""

API_PORT = 6443
"""kube-apiserver's default secure port; edges into the apiserver on it carry no label."""

SEED_ALIASES: dict[str, str] = {"kube-dns": "coredns"}
"""Seed-only names that stand for a current component: CoreDNS replaced kube-dns and still
serves behind the Service named kube-dns. (The seed's ``rescheduler`` has no successor that
does the same job, so it is not aliased.)"""


MAP_LAYOUT: dict[str, tuple[float, float]] = {
    # clients of the API along the top, the control plane's own row in the middle
    "kubectl": (-5.0, 3.3), "descheduler": (-3.2, 3.9), "kube-controller-manager": (-1.6, 4.3),
    "kube-scheduler": (1.6, 4.3), "cloud-controller-manager": (3.3, 3.9),
    "cloud-api": (6.0, 3.6),
    "etcd": (-3.4, 2.0), "kube-apiserver": (0.0, 2.0), "webhook": (3.0, 3.0),
    "metrics-server": (5.2, 2.2), "konnectivity-server": (2.7, 0.3),
    "coredns": (-5.0, 1.0), "kube-proxy": (-2.8, 0.5),
    # a node: the kubelet under the apiserver, the programs it drives under it
    "kubelet": (0.0, 0.0), "konnectivity-agent": (4.4, -0.7), "csi-node-plugin": (2.0, -1.2),
    "container-runtime": (0.0, -1.5), "oci-runtime": (-1.0, -3.0), "cni-plugin": (1.0, -3.0),
    "pod": (-2.6, -2.0), "ingress-controller": (-4.8, -2.9),
    # names only the seed uses
    "rescheduler": (-3.6, 5.0), "kube-dns": (-5.0, -0.8),
}
"""Where the map puts each component (data coordinates for ``communication_graph``)."""

SEED_LAYOUT: dict[str, tuple[float, float]] = {
    **MAP_LAYOUT, "rescheduler": (3.0, 1.0), "kube-proxy": (-1.5, -0.9),
}
"""The seed's graph moves two names so that its extra edges stay readable."""

MAP_SIZE = (7.0, 6.6)

SEED_EDGE_COLOUR = "#555555"
UNDRAWN_COLOUR = "#bbbbbb"


def _claims(given: Iterable[Claim] | None) -> list[Claim]:
    return list(claims() if given is None else given)


def _paths(given: Iterable[CommPath] | None) -> list[CommPath]:
    return list(paths() if given is None else given)


def shorten(text: str, width: int = 100) -> str:
    """``text`` on one line, cut at a word boundary to at most ``width`` characters (``…``)."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def _md(text: str) -> str:
    """Make ``text`` safe inside a Markdown table cell (no pipes, no raw HTML, no emphasis)."""
    for char, escaped in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"),
                          ("*", "\\*"), ("_", "\\_")):
        text = text.replace(char, escaped)
    return text


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def edge_label(p: CommPath) -> str:
    """What the map writes on a path's arrow: its port, or how it travels when it has none.

    Arrows into kube-apiserver on :data:`API_PORT` stay unlabelled (they are the rule)."""
    if p.port is not None:
        return "" if (p.target == "kube-apiserver" and p.port == API_PORT) else str(p.port)
    if "unix socket" in p.protocol.lower():
        return "unix socket"
    if p.protocol.lower().startswith("exec"):
        return "exec"
    return ""


def path_anchor(path_id: str) -> str:
    """The label of a path's entry on the paths page: ``kubelet->kube-apiserver`` ->
    ``path-kubelet-kube-apiserver``."""
    return "path-" + path_id.replace("->", "-")


def real_edges(given: Iterable[CommPath] | None = None, *, labels: bool = True,
               link: str | None = None) -> list[Edge]:
    """Every catalog path as an edge, coloured by plane (:data:`figures.PLANE_COLOURS`);
    with ``link`` (the URL of the paths page), each arrow links to its path's entry."""
    edges: list[Edge] = []
    for p in sorted(_paths(given), key=lambda q: q.id):
        attrs: dict[str, Any] = {"colour": PLANE_COLOURS[p.plane], "style": "-", "width": 1.4}
        if labels and edge_label(p):
            attrs["label"] = edge_label(p)
        if link is not None:
            attrs["url"] = f"{link}#{path_anchor(p.id)}"
        edges.append((p.initiator, p.target, attrs))
    return edges


def _seed_index(given: Iterable[Claim] | None) -> dict[str, tuple[SeedEdge, list[str]]]:
    """Seed edge id -> (the edge, ids of the claims asserting it), in seed order.

    An edge is recorded as wrong (``real=False``) if any claim asserting it is marked so."""
    index: dict[str, tuple[SeedEdge, list[str]]] = {}
    for c in _claims(given):
        for e in c.seed_edges:
            if e.id not in index:
                index[e.id] = (e, [c.id])
                continue
            first, ids = index[e.id]
            if c.id not in ids:
                ids.append(c.id)
            if first.real and not e.real:
                index[e.id] = (e, ids)
    return index


def seed_edges(given: Iterable[Claim] | None = None, *, undrawn: Iterable[CommPath] = (),
               link: str | None = None) -> list[Edge]:
    """The graph the seed describes: one edge per asserted connection, labelled with the ids
    of the claims that assert it. Connections a current cluster has are grey and solid; the
    ones it does not have are red (:data:`figures.WRONG`) and dashed. Paths passed in
    ``undrawn`` (see :func:`undrawn_paths`) are added thin and light grey, unlabelled. With
    ``link`` (the URL of the seed page), each edge links to the first claim asserting it."""
    edges: list[Edge] = []
    for eid, (e, ids) in sorted(_seed_index(given).items()):
        attrs: dict[str, Any] = {"label": " ".join(ids)}
        if link is not None:
            attrs["url"] = f"{link}#{anchor(ids[0])}"
        if e.real:
            attrs.update(colour=SEED_EDGE_COLOUR, style="-", width=1.3)
        else:
            attrs.update(colour=WRONG, style="--", width=1.8)
        edges.append((e.from_, e.to, attrs))
    for p in sorted(undrawn, key=lambda q: q.id):
        edges.append((p.initiator, p.target,
                      {"colour": UNDRAWN_COLOUR, "style": ":", "width": 0.9}))
    return edges


def wrong_edges(given: Iterable[Claim] | None = None) -> dict[str, tuple[str, ...]]:
    """Edge id -> the claims asserting it, for every seed edge marked ``real = false``."""
    return {eid: tuple(ids) for eid, (e, ids) in sorted(_seed_index(given).items())
            if not e.real}


def _aliased(name: str) -> str:
    return SEED_ALIASES.get(name, name)


def undrawn_paths(given_claims: Iterable[Claim] | None = None,
                  given_paths: Iterable[CommPath] | None = None) -> list[CommPath]:
    """Catalog paths that no seed edge draws, right or wrong (with :data:`SEED_ALIASES`
    applied, so the seed's ``kube-dns->kube-apiserver`` counts as ``coredns->kube-apiserver``)."""
    drawn = {f"{_aliased(e.from_)}->{_aliased(e.to)}"
             for c in _claims(given_claims) for e in c.seed_edges}
    return [p for p in sorted(_paths(given_paths), key=lambda q: q.id) if p.id not in drawn]


def paths_into(component: str, given: Iterable[CommPath] | None = None) -> list[str]:
    """Ids of the paths whose target is ``component``, sorted."""
    return sorted(p.id for p in _paths(given) if p.target == component)


def paths_out_of(component: str, given: Iterable[CommPath] | None = None) -> list[str]:
    """Ids of the paths that ``component`` opens, sorted."""
    return sorted(p.id for p in _paths(given) if p.initiator == component)


def verdict_counts(given: Iterable[Claim] | None = None) -> dict[str, int]:
    """How many claims carry each verdict, in :data:`catalog.VERDICTS` order (zeros kept)."""
    found = [c.verdict for c in _claims(given)]
    return {v: found.count(v) for v in VERDICTS}


def claims_by_verdict(given: Iterable[Claim] | None = None) -> dict[str, list[str]]:
    """Claim ids per verdict, in :data:`catalog.VERDICTS` order, each list in seed order."""
    out: dict[str, list[str]] = {v: [] for v in VERDICTS}
    for c in _claims(given):
        out[c.verdict].append(c.id)
    return out


def chapter_cell(chapter: str | None, planned: str | None) -> str:
    """A Markdown link to the chapter notebook (``[chapter 2](02-the-hub.ipynb)``), or the
    chapter's number with "(being written)" if it is not written yet."""
    return chapter_link(chapter, planned, prefix="")


def claims_table(given: Iterable[Claim] | None = None, width: int | None = None) -> str:
    """All claims as a Markdown table: id (linked to the claim on the seed page, where it is
    quoted in full, in Chinese and in English), the claim (shortened), verdict, the chapter that
    shows it (linked when it exists)."""
    rows = [(f"[{c.id}](#{anchor(c.id)})",
             _md(shorten(c.claim, width) if width else " ".join(c.claim.split())),
             c.verdict, chapter_cell(c.chapter, c.planned_chapter)) for c in _claims(given)]
    return _table(("claim", "what the seed says", "verdict", "shown in"), rows)


def wrong_edges_table(given: Iterable[Claim] | None = None,
                      given_paths: Iterable[CommPath] | None = None, width: int = 120) -> str:
    """The wrong seed edges: the edge, the claims asserting it, and what really happens."""
    ids = {p.id for p in _paths(given_paths)}
    index = _seed_index(given)
    rows = []
    for eid, claim_ids in wrong_edges(given).items():
        edge = index[eid][0]
        if edge.note:
            truth = edge.note
        elif eid in ids:
            truth = "The path exists, but not as the seed describes it."
        else:
            truth = "No such connection: the catalog has no path " + eid + "."
        rows.append((f"`{eid}`", " ".join(claim_ids), _md(shorten(truth, width))))
    return _table(("asserted edge", "claims", "what really happens"), rows)


def paths_table(given: Iterable[CommPath] | None = None, width: int = 64) -> str:
    """Every path as a Markdown table: initiator → target, port, protocol and identity
    (shortened), and the chapter that teaches it (linked when it exists)."""
    rows = []
    for p in sorted(_paths(given), key=lambda q: q.id):
        port = str(p.port) if p.port is not None else "–"
        rows.append((f"{p.initiator} → {p.target}", port, _md(shorten(p.protocol, 44)),
                     _md(shorten(p.identity, width)), chapter_cell(p.chapter, p.planned_chapter)))
    return _table(("initiator → target", "port", "protocol", "identity", "taught in"), rows)


def _legend(fig: Figure, entries: Sequence[tuple[str, str, str]]) -> Figure:
    from matplotlib.lines import Line2D

    handles = [Line2D([0], [0], color=colour, linestyle=style,  # type: ignore[arg-type]
                      lw=1.6, label=label)
               for label, colour, style in entries]
    fig.axes[0].legend(handles=handles, loc="lower right", fontsize=8, frameon=False, borderaxespad=0.1)
    return fig


def real_map(title: str = "", given: Iterable[CommPath] | None = None,
             link: str | None = None) -> Figure:
    """The map: every catalog path drawn from initiator to target, coloured by plane (each
    arrow a link to its path's entry when ``link`` is the paths page's URL)."""
    fig = communication_graph(real_edges(given, link=link), title=title, size=MAP_SIZE,
                              positions=MAP_LAYOUT, label_on_curve=True)
    return _legend(fig, [(f"{plane} plane", PLANE_COLOURS[plane], "-")
                         for plane in ("control", "node", "data")])


def seed_map(title: str = "", given: Iterable[Claim] | None = None,
             undrawn: Iterable[CommPath] = (), link: str | None = None) -> Figure:
    """The seed's graph: its asserted edges, the wrong ones red and dashed (optionally with
    the catalog paths it never draws, in light grey; each edge a link to its claim on the
    seed page when ``link`` is that page's URL)."""
    undrawn = list(undrawn)
    fig = communication_graph(seed_edges(given, undrawn=undrawn, link=link), title=title,
                              size=MAP_SIZE,
                              positions=SEED_LAYOUT, label_on_curve=True)
    entries = [("real (for kube-dns and rescheduler: in their day)", SEED_EDGE_COLOUR, "-"),
               ("wrong: no such connection, or not as described", WRONG, "--")]
    if undrawn:
        entries.append(("real, but never drawn by the seed", UNDRAWN_COLOUR, ":"))
    return _legend(fig, entries)
