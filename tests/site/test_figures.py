"""The figures of the built site, measured in headless Chromium (see test_site.py).

At a 1280 px window every figure (an SVG drawn by k8sbook.textbook.figures, shown as an
``<img>`` scaled to the column) must render its smallest text at 10 CSS px or more, show no
label cut short with "…", carry a numbered caption ("Figure 12.2: ...") and alt text, and link
to its full-size SVG; every SVG image of a chapter must be such a figure. At 390 px (a phone)
each figure must still fit the column: none may push the page sideways.

The text size is measured on the page: the browser's rendered width of the ``<img>`` divided
by the width of the SVG's viewBox is the scale, times each ``<text>``'s font size.
"""

from __future__ import annotations

import pytest

from tests.site.test_site import (  # noqa: F401
    PAGES,
    browser,
    site_url,
)

MIN_TEXT_PX = 10.0
CHAPTERS = [doc for doc in PAGES if doc.startswith("notebooks/")]

_MEASURE_JS = """
async () => {
  const article = document.querySelector('article') || document.body;
  const svgImages = Array.from(article.querySelectorAll('img'))
    .filter((img) => /\\.svg$/.test(new URL(img.src).pathname))
    .filter((img) => !img.closest('nav, header'));
  const out = [];
  for (const img of svgImages) {
    img.loading = 'eager';
    if (!img.complete) await new Promise((r) => { img.onload = r; img.onerror = r; });
    const text = await (await fetch(img.src)).text();
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const root = doc.documentElement;
    const viewBox = (root.getAttribute('viewBox') || '').split(/\\s+/).map(Number);
    const rect = img.getBoundingClientRect();
    const scale = rect.width / viewBox[2];
    const texts = Array.from(doc.getElementsByTagName('text'))
      .map((t) => {
        const m = /font-size:\\s*([\\d.]+)px/.exec(t.getAttribute('style') || '');
        return { size: (m ? Number(m[1]) : 16) * scale, text: t.textContent };
      })
      .filter((t) => t.text.trim());
    const figure = img.closest('figure');
    const caption = figure && figure.querySelector('figcaption');
    const link = img.closest('a');
    const column = (figure || img).parentElement.getBoundingClientRect();
    out.push({
      src: new URL(img.src).pathname.split('/').pop(),
      minText: Math.min(...texts.map((t) => t.size)),
      smallest: texts.reduce((a, b) => (b.size < a.size ? b : a), { size: 1e9 }).text,
      cut: texts.filter((t) => t.text.includes('\\u2026')).map((t) => t.text),
      caption: caption ? caption.textContent.trim() : '',
      alt: img.getAttribute('alt') || '',
      link: link ? link.getAttribute('href') : '',
      left: rect.left, right: rect.right, width: rect.width,
      columnRight: column.right,
      viewport: document.documentElement.clientWidth,
    });
  }
  return out;
}
"""


def _measure(browser, site_url, doc, width):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{site_url}/{doc}.html", wait_until="load")
        return page.evaluate(_MEASURE_JS)
    finally:
        context.close()


@pytest.fixture(scope="module")
def wide(browser, site_url):  # noqa: F811
    return {doc: _measure(browser, site_url, doc, 1280) for doc in CHAPTERS}


def test_the_chapters_have_figures(wide):
    assert sum(len(figs) for figs in wide.values()) >= 30


@pytest.mark.parametrize("doc", CHAPTERS)
def test_figures_are_legible_at_1280(wide, doc):
    for fig in wide[doc]:
        assert fig["minText"] >= MIN_TEXT_PX, (
            f"{doc}: {fig['src']}: smallest text {fig['minText']:.1f} px "
            f"({fig['smallest']!r}), under {MIN_TEXT_PX} px")
        assert fig["cut"] == [], f"{doc}: {fig['src']}: labels cut short: {fig['cut']}"


@pytest.mark.parametrize("doc", CHAPTERS)
def test_figures_have_numbered_captions_alt_text_and_a_full_size_link(wide, doc):
    chapter = doc.split("/")[-1].split("-", 1)[0].lstrip("0").upper()
    numbers = []
    for fig in wide[doc]:
        assert fig["caption"].startswith(f"Figure {chapter}."), (doc, fig["src"], fig["caption"])
        numbers.append(fig["caption"].split(":", 1)[0])
        assert len(fig["alt"].split()) >= 6 and not fig["alt"].endswith(".svg"), fig["alt"]
        assert fig["link"].endswith(fig["src"]), f"{doc}: {fig['src']} does not link to its SVG"
    assert numbers == [f"Figure {chapter}.{i}" for i in range(1, len(numbers) + 1)]


@pytest.mark.parametrize("doc", CHAPTERS)
def test_figures_fit_the_column_at_390(browser, site_url, doc):  # noqa: F811
    for fig in _measure(browser, site_url, doc, 390):
        assert fig["left"] >= 0 and fig["right"] <= fig["viewport"] + 0.5, (
            f"{doc}: {fig['src']} overflows the page at 390 px: {fig}")
        assert fig["right"] <= fig["columnRight"] + 0.5, (
            f"{doc}: {fig['src']} is wider than its column at 390 px: {fig}")
