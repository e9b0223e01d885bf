"""The pages made from the catalog (book/paths.md, the introduction's maps) are current."""

from __future__ import annotations

import functools
import re
import xml.dom.minidom
from pathlib import Path

from k8sbook.textbook import atlas, catalog, catalog_pages

#: each page and map made once for the module's tests (they only read the text)
map_svg = functools.cache(catalog_pages.map_svg)
paths_page = functools.cache(catalog_pages.paths_page)
MAPS = catalog_pages.MAPS

BOOK = Path(__file__).resolve().parents[2] / "book"
STALE = "is stale: run `python scripts/catalog_pages.py`"


def test_committed_paths_page_and_maps_are_current():
    assert (BOOK / "paths.md").read_text(encoding="utf-8") == paths_page(), f"paths.md {STALE}"
    for which, name in MAPS.items():
        assert (BOOK / "_static" / name).read_text(encoding="utf-8") == map_svg(which), (
            f"{name} {STALE}")


def test_every_path_has_an_entry_and_a_linked_arrow():
    page = paths_page()
    real = map_svg("real")
    xml.dom.minidom.parseString(real)  # well-formed: a browser would refuse it otherwise
    linked = set(re.findall(r'xlink:href="\.\./book/paths\.html#([^"]+)"', real))
    for p in catalog.paths():
        assert f"({atlas.path_anchor(p.id)})=" in page
        if p.initiator != p.target:  # a loop (etcd->etcd) is drawn without an arrow head
            assert atlas.path_anchor(p.id) in linked, p.id
    assert 'target="_top"' in real and 'target="_blank"' not in real
    seed = map_svg("seed")
    xml.dom.minidom.parseString(seed)
    assert set(re.findall(r'the-seed\.html#(claim-[a-c]\d+)', seed)) >= {"claim-b4", "claim-b15"}
