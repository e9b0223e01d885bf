"""What a reader sees on the built site, in headless Chromium (see test_site.py).

On every chapter page: no visible code cell consists of asserts only (check cells are folded
away), every Exercises section has a solution dropdown per exercise, and cross-references to
other chapters are links. On the seed page: a row per claim, each holding the Chinese original.
"""

from __future__ import annotations

import re

import pytest

from tests.site.test_site import (  # noqa: F401
    PAGES,
    browser,
    site_url,
)

CHAPTERS = [doc for doc in PAGES if doc.startswith("notebooks/")]

_CELLS_JS = """
() => Array.from(document.querySelectorAll('article div.cell')).map((cell) => {
  const input = cell.querySelector('div.cell_input');
  const folded = !input || input.closest('details') !== null
      || getComputedStyle(input).display === 'none';
  return {folded, code: input ? input.innerText : ''};
})
"""

_EXERCISES_JS = """
() => {
  const heading = Array.from(document.querySelectorAll('article h2'))
      .find((h) => /^Exercises/.test(h.textContent.trim()));
  if (!heading) return null;
  const section = heading.closest('section');
  const list = section.querySelector('ol');
  const solutions = Array.from(section.querySelectorAll('details.sd-dropdown summary'))
      .map((s) => s.textContent.trim()).filter((t) => /^Solution to exercise \\d+/.test(t));
  return {exercises: list ? list.children.length : 0, solutions: solutions.length};
}
"""


@pytest.fixture(scope="module")
def page(browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def _only_asserts(code: str) -> bool:
    lines = [line.strip() for line in code.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    return bool(lines) and all(line.startswith(("assert", ")", "]", "}", "f\"", "\"")) or
                               line.endswith((",", "(")) for line in lines) and any(
        line.startswith("assert") for line in lines)


@pytest.mark.parametrize("doc", CHAPTERS)
def test_no_visible_cell_is_only_asserts(page, site_url, doc):  # noqa: F811
    page.goto(f"{site_url}/{doc}.html", wait_until="load")
    visible = [c["code"] for c in page.evaluate(_CELLS_JS) if not c["folded"]]
    assert visible, f"{doc} shows no code at all"
    walls = [code[:80] for code in visible if _only_asserts(code)]
    assert not walls, f"{doc} shows cells of asserts only: {walls}"


@pytest.mark.parametrize("doc", CHAPTERS)
def test_every_exercise_has_its_solution_on_the_page(page, site_url, doc):  # noqa: F811
    page.goto(f"{site_url}/{doc}.html", wait_until="load")
    found = page.evaluate(_EXERCISES_JS)
    assert found, f"{doc} has no Exercises section"
    assert found["exercises"] and found["solutions"] == found["exercises"], found


@pytest.mark.parametrize("doc", CHAPTERS)
def test_chapter_references_are_links(page, site_url, doc):  # noqa: F811
    page.goto(f"{site_url}/{doc}.html", wait_until="load")
    bare = page.evaluate("""() => {
      const out = [];
      const walker = document.createTreeWalker(document.querySelector('article'),
                                               NodeFilter.SHOW_TEXT);
      while (walker.nextNode()) {
        const node = walker.currentNode;
        if (node.parentElement.closest('a, pre, code, .cell_output, details.hide')) continue;
        const m = node.textContent.match(/\\b[Cc]hapter \\d+\\b/);
        if (m) out.push(node.textContent.trim().slice(0, 80));
      }
      return out;
    }""")
    assert not bare, f"{doc}: 'chapter N' not linked: {bare[:3]}"


def test_the_seed_page_quotes_every_claim_in_chinese(page, site_url):  # noqa: F811
    page.goto(f"{site_url}/book/the-seed.html", wait_until="load")
    rows = page.evaluate("""() => Array.from(document.querySelectorAll('article table tbody tr'))
        .map((tr) => Array.from(tr.cells).map((td) => td.innerText))""")
    assert len(rows) == 29
    assert all(re.search(r"[\\u4e00-\\u9fff]", row[1]) for row in rows)
    anchors = page.evaluate("""() => Array.from(document.querySelectorAll('[id^="claim-"]'))
        .map((e) => e.id)""")
    assert len(set(anchors)) == 29 and "claim-b5" in anchors


def test_the_introduction_shows_both_maps_and_an_arrow_opens_its_path(page, site_url):  # noqa: F811
    page.goto(f"{site_url}/book/intro.html", wait_until="load")
    widths = page.evaluate("""() => Array.from(document.querySelectorAll('.k8sbook-maps object'))
        .map((o) => o.getBoundingClientRect().width)""")
    column = page.evaluate("document.querySelector('article section p').getBoundingClientRect().width")
    assert len(widths) == 2 and all(w >= 0.95 * column for w in widths), (widths, column)
    real = next(f for f in page.frames if f.url.endswith("/_static/map-real.svg"))
    label = real.locator("a:has(text)").first
    target = label.get_attribute("xlink:href").split("#", 1)[1]
    label.click(timeout=5_000)
    page.wait_for_url(f"**/book/paths.html#{target}", timeout=5_000)
    assert page.locator(f"[id='{target}']").count() == 1


def test_the_index_lists_glossary_terms_and_the_models_names(page, site_url):  # noqa: F811
    page.goto(f"{site_url}/book/index-of-terms.html", wait_until="load")
    page.locator("article a[href$='genindex.html']").first.click()
    page.wait_for_url("**/genindex.html")
    text = page.locator("article").inner_text()
    assert "Lease" in text and "PLEG" in text and "KubeScheduler" in text
