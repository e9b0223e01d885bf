"""Every figure the notebooks store is legible in the book's column and has a caption.

The static half of the figure checks (tests/site/test_figures.py measures the built site in a
browser): each stored SVG output, scaled as the book scales it (see
:func:`k8sbook.textbook.figures.legibility`), has no text under 10 CSS px at a 1280 px window
and no label cut short with an ellipsis; each figure cell carries the MyST-NB metadata that
gives it a numbered caption, a name and alt text (written by scripts/figure_metadata.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from k8sbook.textbook.figures import COLUMN_PX, MIN_TEXT_PX, legibility

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FIX = "run `python scripts/figure_metadata.py`, then refresh the notebook"


def _figures():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            svgs = [o["data"]["image/svg+xml"] for o in cell.get("outputs", [])
                    if "image/svg+xml" in o.get("data", {})]
            if svgs or "figures.show(" in cell.source:
                yield pytest.param(path.stem, cell, svgs, id=f"{path.stem}[{i}]")


FIGURES = list(_figures())


def test_there_are_figures():
    assert len(FIGURES) >= 30


@pytest.mark.parametrize(("stem", "cell", "svgs"), FIGURES)
def test_figure_is_legible_in_the_column(stem, cell, svgs):
    assert len(svgs) == 1, "a figure cell stores exactly one SVG output"
    measured = legibility("".join(svgs[0]))
    assert measured.width_px <= COLUMN_PX + 0.5, measured
    assert measured.min_text_px >= MIN_TEXT_PX, measured
    assert measured.cut == [], f"labels cut short: {measured.cut}"


@pytest.mark.parametrize(("stem", "cell", "svgs"), FIGURES)
def test_figure_has_caption_name_and_alt_text(stem, cell, svgs):
    meta = cell.metadata.get("mystnb", {})
    caption = meta.get("figure", {}).get("caption", "")
    chapter = stem.split("-", 1)[0].lstrip("0").upper()
    assert re.match(rf"\*\*Figure {chapter}\.\d+:\*\* \S", caption), (caption, FIX)
    assert meta["figure"].get("name", "").startswith("fig-"), FIX
    alt = meta.get("image", {}).get("alt", "")
    assert len(alt.split()) >= 6 and ".svg" not in alt, (alt, FIX)
    assert meta["image"].get("width") == "100%", "the width makes the image link to its SVG"


def test_figure_names_are_unique():
    names = [c.metadata["mystnb"]["figure"]["name"] for _, c, _ in
             (p.values for p in FIGURES)]
    assert len(names) == len(set(names))
