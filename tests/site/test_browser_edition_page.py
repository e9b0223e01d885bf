"""The browser edition in headless Chromium: a reader opens chapter 2 from its page's button,
the notebook loads with all its cells, and a changed cell gets the model's new answer.

Drives the built site (`_build/html`, served on 127.0.0.1 by the fixtures of test_site.py) with
Playwright in /usr/bin/chromium. Requests that would leave 127.0.0.1 (Pyodide's CDN, where the
install cell fetches matplotlib, cryptography and PyYAML from) are refused by the page's router
at once: the chapter must load, start its kernel and run the model offline (chapter 2 needs
none of the three). Skipped without Chromium or Playwright.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest

from tests.site.test_site import SITE, browser, context, site_url  # noqa: F401

CHAPTER = "02-the-hub"
KERNEL_TIMEOUT_MS = 180_000
#: What the changed cell asks the model, and the answer it must print.
CHANGED_CELL = 'print("etcd clients:", run("hub-write-and-watch").facts["etcd_clients"])'
ANSWER = "etcd clients: ['kube-apiserver']"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def lite_page(context, site_url):  # noqa: F811
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    refused: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))

    def offline(route):
        url = route.request.url
        scheme, netloc = urlsplit(url)[:2]
        if scheme in ("http", "https", "ws", "wss") and netloc != urlsplit(site_url).netloc:
            refused.append(url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", offline)
    page.errors, page.refused = errors, refused
    try:
        yield page
    finally:
        page.close()


def test_chapter_button_opens_the_chapter_in_the_browser_edition(lite_page, site_url):  # noqa: F811
    page = lite_page
    page.goto(f"{site_url}/notebooks/{CHAPTER}.html", wait_until="load")
    href = page.locator("a.btn-run-in-browser").first.get_attribute("href")
    assert href == f"../lite/notebooks/index.html?path={CHAPTER}.ipynb", href
    page.goto(f"{site_url}/notebooks/{href}", wait_until="load")

    shipped = json.loads((SITE / "lite" / "files" / f"{CHAPTER}.ipynb").read_text("utf-8"))
    cells = page.locator(".jp-Notebook .jp-Cell")
    cells.nth(len(shipped["cells"]) - 1).wait_for(state="attached")
    assert cells.count() == len(shipped["cells"])
    assert "The hub" in cells.nth(0).inner_text()
    assert "Browser edition" in cells.nth(1).inner_text()
    # stored text is shown as stored (JupyterLite shows a list of lines joined by commas)
    index, text = _first_stream(shipped)
    shown = cells.nth(index).locator(".jp-OutputArea-output pre").first
    shown.scroll_into_view_if_needed()
    assert shown.inner_text().rstrip("\n") == text.rstrip("\n")
    # the stored figures are shown as figures (the cells are trusted), not as their text repr
    figure = cells.nth(_figure_index(shipped))
    figure.scroll_into_view_if_needed()
    figure.locator(".jp-RenderedSVG").first.wait_for()

    # Run the install cell and the chapter's first code cell, then change the next one.
    install = cells.nth(2)
    install.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    prompt = install.locator(".jp-InputPrompt")
    page.wait_for_function(
        "(el) => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(),
        timeout=KERNEL_TIMEOUT_MS)
    first_code = cells.nth(_code_index(shipped, 1))
    first_code.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        "(el) => /\\[\\d+\\]/.test(el.textContent)",
        arg=first_code.locator(".jp-InputPrompt").element_handle(), timeout=KERNEL_TIMEOUT_MS)

    changed = cells.nth(_code_index(shipped, 2))
    editor = changed.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.type(CHANGED_CELL)
    page.keyboard.press("Shift+Enter")
    changed.locator(".jp-OutputArea-output").filter(has_text=ANSWER).wait_for(
        timeout=KERNEL_TIMEOUT_MS)

    assert not page.errors, "\n".join(page.errors)
    assert all(re.search(r"//cdn\.jsdelivr\.net/pyodide/", u) for u in page.refused), \
        f"requests other than Pyodide's CDN: {page.refused}"


def _code_index(nb: dict, n: int) -> int:
    """The index among all cells of the notebook's n-th code cell (0: the install cell)."""
    code = [i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"]
    return code[n]


def _first_stream(nb: dict) -> tuple[int, str]:
    """The index and text of the notebook's first cell that stores printed text."""
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream":
                text = out["text"]
                return i, "".join(text) if isinstance(text, list) else text
    raise AssertionError("no stored stream output")


def _figure_index(nb: dict) -> int:
    """The index of the notebook's first cell that stores a figure."""
    return next(i for i, cell in enumerate(nb["cells"])
                if any("image/svg+xml" in out.get("data", {}) for out in cell.get("outputs", [])))
