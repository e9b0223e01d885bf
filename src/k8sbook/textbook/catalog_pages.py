"""The book's reference pages made from the catalog: every path's entry, and the two maps.

The book's own code, with no Kubernetes counterpart. :func:`paths_page` is the Markdown of
``book/paths.md``: one entry per communication path (who opens it, to what, over which
protocol and port, with what identity, what flows, what happens when it fails, the seed's
claims about it, the chapter that shows it), each under an anchor (``path-kubelet-kube-apiserver``).
:func:`map_svg` draws the introduction's maps, the cluster's and the seed's, as SVG whose
arrows link to those entries. Both are generated, never edited by hand:
``python scripts/catalog_pages.py`` writes them, and a test fails while a committed file
differs from what the catalog says.
"""

from __future__ import annotations

from k8sbook.textbook import atlas, figures
from k8sbook.textbook.catalog import CommPath, paths
from k8sbook.textbook.seed import anchor, chapter_link

__all__ = ["MAPS", "map_svg", "paths_page"]

#: the SVG files the introduction shows, by name, under ``book/_static/``
MAPS = {"real": "map-real.svg", "seed": "map-seed.svg"}


def _row(name: str, value: str) -> str:
    return f"{name}\n: {' '.join(value.split())}\n"


def _entry(p: CommPath) -> list[str]:
    port = str(p.port) if p.port is not None else "none"
    if p.port_note:
        port += f" ({' '.join(p.port_note.split())})"
    claims = ", ".join(f"[{c}](#{anchor(c)})" for c in p.claims) or "none"
    sources = " · ".join(f"<{url}>" for url in p.sources) or "none"
    out = [
        "", f"({atlas.path_anchor(p.id)})=", f"## `{p.id}`", "",
        _row("Opened by", f"`{p.initiator}`, to `{p.target}` ({p.plane} plane)"),
        _row("Protocol", p.protocol),
        _row("Port", port),
        _row("Identity", p.identity),
        _row("What flows", p.flows),
        _row("When it fails", p.on_failure),
        _row("The seed's claims", claims),
        _row("Shown in", chapter_link(p.chapter, p.planned_chapter)),
        _row("Sources", sources),
    ]
    if p.notes:
        out.append(_row("Notes", p.notes))
    return out


def paths_page() -> str:
    """The whole of ``book/paths.md``."""
    all_paths = sorted(paths(), key=lambda p: p.id)
    out = [
        "# Every path, one by one",
        "",
        f"The {len(all_paths)} communication paths of a cluster, as the catalog of this book",
        "records them. A path is named `initiator->target`: whoever opens the connection comes",
        "first, whatever flows back on it. Each arrow of the maps on the {doc}`introduction <intro>`",
        "links here.",
        "",
        "| path | plane | port | shown in |",
        "|---|---|---|---|",
    ]
    for p in all_paths:
        out.append(f"| [`{p.id}`](#{atlas.path_anchor(p.id)}) | {p.plane} | "
                   f"{p.port if p.port is not None else '—'} | "
                   f"{chapter_link(p.chapter, p.planned_chapter)} |")
    for p in all_paths:
        out += _entry(p)
    return "\n".join(out) + "\n"


def map_svg(which: str) -> str:
    """The introduction's map ``which`` ("real": the cluster's paths; "seed": what the seed
    page claims) as SVG; on the real map every arrow and label links to its entry on the
    paths page, on the seed's map to the claim that asserts it; links open in the whole window
    (the SVG is shown in an ``<object>``)."""
    if which == "real":
        fig = atlas.real_map(title="Who opens which connection (click an arrow)",
                             link="../book/paths.html")
    elif which == "seed":
        fig = atlas.seed_map(title="What the seed page claims (click an arrow)",
                             link="../book/the-seed.html")
    else:
        raise ValueError(f"no map {which!r}: choose one of {sorted(MAPS)}")
    text = figures.svg(fig).replace('target="_blank"', 'target="_top"')
    # only the links take the pointer (the figure's and the legend's backgrounds lie above
    # some arrows in the drawing order)
    start = text.index(">", text.index("<svg")) + 1
    style = ("<style>svg * { pointer-events: none } "
             "a, a * { pointer-events: visiblePainted; cursor: pointer }</style>")
    return text[:start] + style + text[start:]
