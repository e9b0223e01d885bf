"""Browser tests of the built book (_build/html), as a reader would load it.

The site is served by http.server on 127.0.0.1 (a free port, in a thread) and driven with
Playwright's sync API in the system's Chromium (/usr/bin/chromium): Playwright downloads no
browser here. Every page of _toc.yml must load without console errors, page errors, failed
requests or requests leaving 127.0.0.1; its images must have loaded and its inline SVG figures
must have a size. Search must find a glossary term.

Build the site first (`bash scripts/build-book.sh`; `bash scripts/test.sh` does it). Without
Chromium or Playwright the browser tests are skipped with the reason; without a build they fail.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.notebooks.test_stored_outputs import toc_files

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BUILD_HINT = "the book is not built: run `bash scripts/build-book.sh` first"
PAGES = toc_files()
SEARCH_TERM = "Reflector"  # defined in book/glossary.md
TIMEOUT_MS = 15_000

pytestmark = pytest.mark.browser


def browser_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"Chromium not found at {CHROMIUM} (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.txt)"
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def end_headers(self):
        # Let the browser cache the theme's scripts between pages, as a web server would: the
        # pages of one test module then load in about two thirds of the time.
        self.send_header("Cache-Control", "max-age=600")
        super().end_headers()


@pytest.fixture(scope="module")
def browser():
    reason = browser_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def site_url():
    if not (SITE / "index.html").exists():
        pytest.fail(BUILD_HINT, pytrace=False)
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class PageProblems:
    """Collects everything that went wrong while a page loaded."""

    def __init__(self, page, origin: str):
        self.items: list[str] = []
        self.origin = origin
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.items.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("request", self._request)

    def _console(self, message):
        # No console error is ignored: the site must load cleanly.
        if message.type == "error":
            self.items.append(f"console error: {message.text} ({message.location})")

    def _failed(self, request):
        # Chromium fetches the favicon after the load event, so going on to the next page in
        # the same tab can abort that fetch: that is the test moving on, not a broken site.
        if request.failure == "net::ERR_ABORTED" and urlsplit(request.url).path.endswith(
                "/favicon.svg"):
            return
        self.items.append(f"request failed: {request.url} ({request.failure})")

    def _request(self, request):
        scheme, netloc = urlsplit(request.url)[:2]
        if scheme in ("http", "https", "ws", "wss") and f"{scheme}://{netloc}" != self.origin:
            self.items.append(f"remote request (the site must be self-contained): {request.url}")


@pytest.fixture(scope="module")
def context(browser):
    """One browser context for the module: a new one per page costs a quarter of a second."""
    context = browser.new_context()
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def shared_page(context, site_url):
    """One tab for the module's tests; each test starts with an empty list of problems."""
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.problems = PageProblems(page, site_url)
    try:
        yield page
    finally:
        page.close()


@pytest.fixture
def page(shared_page):
    shared_page.problems.items.clear()
    return shared_page


# Opens every <details> (toggled cells), loads lazy images eagerly, waits for all images, then
# reports broken images and inline SVG figures without a size.
_INSPECT_JS = """
async () => {
  document.querySelectorAll('details').forEach((d) => { d.open = true; });
  const images = Array.from(document.images);
  images.forEach((img) => { img.loading = 'eager'; });
  const settle = (img) => img.complete ? Promise.resolve() : new Promise((resolve) => {
    img.addEventListener('load', resolve, { once: true });
    img.addEventListener('error', resolve, { once: true });
  });
  const timeout = new Promise((resolve) => setTimeout(resolve, 10000));
  await Promise.race([Promise.all(images.map(settle)), timeout]);
  const brokenImages = images
    .filter((img) => !(img.complete && img.naturalWidth > 0))
    .map((img) => img.currentSrc || img.src || img.outerHTML.slice(0, 120));
  const article = document.querySelector('article') || document.body;
  const figures = Array.from(article.querySelectorAll('svg'))
    .filter((svg) => !svg.parentElement.closest('svg'))      // outermost <svg> only
    .filter((svg) => !svg.closest('button, a.headerlink, .copybtn, nav, header'));
  const emptyFigures = figures
    .map((svg) => [svg, svg.getBoundingClientRect()])
    .filter(([, r]) => !(r.width > 0 && r.height > 0))
    .map(([svg]) => svg.outerHTML.slice(0, 120));
  return {
    images: images.length, brokenImages, figures: figures.length, emptyFigures,
    title: document.title, hasArticle: !!document.querySelector('article'),
  };
}
"""


def test_every_toc_page_was_built():
    assert (SITE / "index.html").exists(), BUILD_HINT
    missing = [doc for doc in PAGES if not (SITE / f"{doc}.html").exists()]
    assert not missing, f"pages listed in _toc.yml but not built: {missing}; {BUILD_HINT}"
    assert (SITE / "search.html").exists() and (SITE / "searchindex.js").exists()


def check_page(page, site_url: str, doc: str) -> None:
    """Load one built page and assert it rendered cleanly (shared by both page-test files)."""
    response = page.goto(f"{site_url}/{doc}.html", wait_until="load")
    assert response is not None and response.ok, f"{doc}.html: HTTP {response and response.status}"
    # "load" has fired: every script, stylesheet and <img> of the page has been fetched (and
    # any request that left 127.0.0.1 was recorded); _INSPECT_JS waits for images to settle.
    report = page.evaluate(_INSPECT_JS)
    assert report["hasArticle"], f"{doc}: no <article> element: the page did not render"
    assert "k8sbook" in report["title"], f"{doc}: unexpected title {report['title']!r}"
    assert not report["brokenImages"], f"{doc}: images that did not load: {report['brokenImages']}"
    assert not report["emptyFigures"], f"{doc}: SVG figures with no size: {report['emptyFigures']}"
    assert not page.problems.items, f"{doc}: " + "\n".join(page.problems.items)


#: The pages are split over two test files so that pytest-xdist (``--dist loadfile``) can give
#: them to both workers: loading a page takes about a second in headless Chromium.
PAGES_HERE = [doc for doc in PAGES if not doc.startswith("notebooks/")]
PAGES_THERE = [doc for doc in PAGES if doc.startswith("notebooks/")]


@pytest.mark.parametrize("doc", PAGES_HERE)
def test_page_loads_cleanly(page, site_url, doc):
    check_page(page, site_url, doc)


def test_search_finds_a_glossary_term(page, site_url):
    page.goto(f"{site_url}/search.html?q={SEARCH_TERM}", wait_until="load")
    summary = page.locator("#search-results .search-summary")
    summary.filter(has_text="Search finished").wait_for()
    links = page.locator("#search-results ul.search li a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs, f"searching for {SEARCH_TERM!r} found nothing"
    assert any("glossary" in (href or "") for href in hrefs), hrefs
    assert not page.problems.items, "search page: " + "\n".join(page.problems.items)


def test_root_redirects_to_the_introduction(page, site_url):
    page.goto(f"{site_url}/index.html", wait_until="load")
    page.wait_for_url("**/book/intro.html")
    assert page.locator("article h1").first.inner_text().startswith("k8sbook")
