"""Sphinx extension: the browser edition of the book, built with the site and linked from it.

Loaded by Jupyter Book 1.x through `_config.yml` (`sphinx.local_extensions`). It does three
things, for every page whose source is a notebook:

* a "Run in your browser" button in the page's header (sphinx-book-theme's `header_buttons`,
  the list its own download and full-screen buttons are in), opening that chapter in the
  JupyterLite site at `lite/notebooks/index.html?path=<notebook>`;
* a line under the page's title with the same link, a link to the `k8sbook` wheel, and how to
  run the downloaded notebook on one's own computer (`pip install <wheel> jupyterlab`);
* when the HTML build has finished, the JupyterLite site itself, built into `<outdir>/lite` by
  `scripts/browser_edition.py` (skipped when none of its inputs changed since the last build).

Why not sphinx-book-theme's own `launch_buttons.jupyterlite_url`: it is shown only when a
repository URL is configured (this book has none), and it takes one absolute URL for every
page, where each page needs a link relative to itself so the site works from any folder.
Why not jupyterlite-sphinx: it adds a remote web-font stylesheet to every page (the site must
load nothing from elsewhere, see tests/site/test_site.py) and directives the book does not use.
"""

from __future__ import annotations

import hashlib
import html
import sys
import tomllib
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser_edition  # scripts/ is not a package: imported from its folder

LOGGER = logging.getLogger(__name__)
LITE = "lite"
STAMP = ".k8sbook-inputs"


def wheel_name(root: Path = browser_edition.ROOT) -> str:
    """The file name of the wheel the site offers (setuptools' name for this pyproject)."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return f"{project['name'].replace('-', '_')}-{project['version']}-py3-none-any.whl"


def lite_url(docname: str, notebook: str) -> str:
    """The browser edition of `notebook`, relative to the page `docname`."""
    up = "../" * docname.count("/")
    return f"{up}{LITE}/notebooks/index.html?path={notebook}"


def _is_notebook(app: Sphinx, docname: str) -> bool:
    return str(app.env.doc2path(docname)).endswith(".ipynb")


def add_header_button(app: Sphinx, pagename: str, templatename: str,
                      context: dict[str, Any], doctree: Any) -> None:
    if doctree is None or not _is_notebook(app, pagename) or "header_buttons" not in context:
        return
    context["header_buttons"].insert(0, {
        "type": "link",
        "url": lite_url(pagename, Path(pagename).name + ".ipynb"),
        "text": "Run in your browser",
        "tooltip": "Run this chapter in your browser (JupyterLite: Python in WebAssembly, "
                   "nothing to install)",
        "icon": "fas fa-play",
        "label": "run-in-browser",
    })


def add_run_line(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if app.builder.format != "html" or not _is_notebook(app, docname):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not section.children:
        return
    wheel = wheel_name()
    up = "../" * docname.count("/")
    line = (
        '<p class="k8sbook-run">'
        f'<a class="k8sbook-run-link" href="{html.escape(lite_url(docname, Path(docname).name + ".ipynb"))}">'
        "▶ Run this chapter in your browser</a> (nothing to install). "
        "Or on your own computer: download this notebook (the download button above, "
        f'<code>.ipynb</code>) and <a href="{up}{LITE}/pypi/{wheel}" download>the k8sbook '
        f"wheel</a>, then <code>pip install {wheel} jupyterlab</code>.</p>"
    )
    section.insert(1, nodes.raw("", line, format="html"))


def _inputs_digest(root: Path) -> str:
    """A hash of everything the browser edition is built from."""
    digest = hashlib.sha256()
    files = [root / "_toc.yml", root / "pyproject.toml", root / "README.md", root / "requirements.txt",
             root / "lite" / "package-lock.json", root / "lite" / "pyodide-wheels.txt",
             Path(browser_edition.__file__)]
    files += sorted((root / "src").rglob("*.py")) + sorted((root / "src").rglob("*.toml"))
    files += browser_edition.toc_notebooks(root)
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_lite(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    output = Path(app.outdir) / LITE
    root = browser_edition.ROOT
    want = _inputs_digest(root)
    stamp = output / STAMP
    if stamp.exists() and stamp.read_text(encoding="utf-8") == want:
        LOGGER.info("browser edition: up to date (%s)", output)
        return
    LOGGER.info("browser edition: building %s", output)
    try:
        wheel = browser_edition.build(output, root)
    except (RuntimeError, SystemExit, OSError) as error:
        raise ExtensionError(f"browser edition: {error}") from error
    if wheel.name != wheel_name(root):
        raise ExtensionError(f"browser edition: built {wheel.name}, pages link {wheel_name()}")
    stamp.write_text(want, encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", add_header_button, priority=510)
    app.connect("doctree-resolved", add_run_line)
    app.connect("build-finished", build_lite)
    app.add_css_file("browser-edition.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
