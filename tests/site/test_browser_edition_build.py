"""The browser edition as built (scripts/browser_edition.py), checked without running it.

The unit tests of the notebook transformation need nothing built; the others read the built
site (`_build/html/lite`, made by `bash scripts/build-book.sh`): every chapter is shipped, the
site's settings keep it offline (local Pyodide, no PyPI fallback), the lock file's bundled
wheels are there with the right hashes and need nothing from elsewhere to start the kernel, and
the wheel the site offers is the working tree's `src/k8sbook`, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import browser_edition  # scripts/ is not a package: imported from its folder

SITE = ROOT / "_build" / "html"
LITE = SITE / "lite"
PYODIDE = LITE / "static" / "pyodide"


@pytest.fixture(scope="module")
def built() -> Path:
    if not (LITE / "jupyter-lite.json").exists():
        pytest.fail("the browser edition is not built: run `bash scripts/build-book.sh`",
                    pytrace=False)
    return LITE


@pytest.fixture(scope="module")
def wheel(built) -> Path:
    wheels = sorted((built / "pypi").glob("k8sbook-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _chapter(reason: str | None = None) -> dict:
    cell = {"cell_type": "code", "execution_count": 1, "metadata": {}, "id": "c1",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "hi\n"}],
            "source": "print('hi')"}
    tagged = dict(cell, id="c2", metadata={"tags": [browser_edition.TAG]},
                  source="srv = start()")
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    if reason:
        meta["k8sbook"] = {"not_in_browser": reason}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": meta, "cells": [
        {"cell_type": "markdown", "id": "t", "metadata": {}, "source": "# Title"},
        cell, tagged]}


def test_browser_notebook_adds_a_banner_and_the_install_cell(wheel):
    wheels = browser_edition.bundled_wheels()
    nb = _chapter()
    out = browser_edition.browser_notebook(nb, wheel, wheels)
    assert nb == _chapter(), "the stored notebook must not be changed"
    kinds = [(c["cell_type"], c["id"]) for c in out["cells"]]
    assert kinds == [("markdown", "t"), ("markdown", "browser-edition"),
                     ("code", "browser-install"), ("code", "c1"), ("code", "c2")]
    assert out["metadata"]["kernelspec"]["name"] == "python"  # jupyterlite-pyodide-kernel's
    assert out["cells"][3]["outputs"] == nb["cells"][1]["outputs"]  # stored outputs kept
    assert out["cells"][3]["metadata"]["trusted"] is True  # so JupyterLab shows the SVG figures
    banner = out["cells"][1]["source"]
    assert "Browser edition" in banner and f"pip install {wheel.name} jupyterlab" in banner
    assert "⚠" not in banner


def test_browser_notebook_marks_what_cannot_run(wheel):
    reason = "It starts a server."
    out = browser_edition.browser_notebook(_chapter(reason), wheel,
                                           browser_edition.bundled_wheels())
    assert reason in out["cells"][1]["source"] and "⚠" in out["cells"][1]["source"]
    assert out["cells"][3]["source"] == "print('hi')"  # untagged: unchanged
    assert out["cells"][4]["source"] == (
        f"# ⚠ Cannot run in the browser edition: {reason}\nsrv = start()")


def test_install_cell_takes_k8sbook_from_the_site_and_the_rest_from_pyodide(wheel):
    source = browser_edition.install_source(wheel, browser_edition.bundled_wheels())
    assert ("await piplite.install(['k8sbook', 'croniter', 'dnspython', 'networkx', "
            "'protobuf', 'pyjwt'], deps=False)") in source
    for name, (module, cells) in browser_edition.FETCHED.items():
        assert f"await piplite.install({name!r})" in source
        assert f"find_spec({module!r})" in source  # a failed fetch is said, not silent
        assert f"'{cells} will fail, all the others run.'" in source
    compile(source, "install", "exec", flags=0x2000)  # PyCF_ALLOW_TOP_LEVEL_AWAIT


def test_requirements_are_evaluated_for_pyodide():
    ipython = next(w for n, w in browser_edition.bundled_wheels().items() if n == "ipython")
    needs = browser_edition.requires(ipython, "3.14")
    assert "jedi" in needs and "traitlets" in needs
    assert "pexpect" not in needs  # sys_platform != "emscripten"
    assert "colorama" not in needs  # sys_platform == "win32"


def test_every_chapter_of_the_toc_is_shipped(built):
    shipped = sorted(p.name for p in (built / "files").glob("*.ipynb"))
    assert shipped == sorted(p.name for p in browser_edition.toc_notebooks())
    for name in shipped:
        nb = json.loads((built / "files" / name).read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code[0]["id"] == "browser-install", name
        assert nb["cells"][nb["cells"].index(code[0]) - 1]["id"] == "browser-edition", name


def test_the_site_runs_offline(built):
    config = json.loads((built / "jupyter-lite.json").read_text(encoding="utf-8"))
    kernel = config["jupyter-config-data"]["litePluginSettings"][
        "@jupyterlite/pyodide-kernel-extension:kernel"]
    assert kernel["pyodideUrl"] == "./static/pyodide/pyodide.mjs"
    assert kernel["disablePyPIFallback"] is True
    for name in browser_edition.PYODIDE_FILES:
        assert (PYODIDE / name).exists(), name


def test_the_lock_bundles_what_the_kernel_and_k8sbook_need(built, wheel):
    lock = json.loads((PYODIDE / "pyodide-lock.json").read_text(encoding="utf-8"))["packages"]
    local = {name: e for name, e in lock.items() if "://" not in e["file_name"]}
    cdn = browser_edition.cdn_url()
    assert all(e["file_name"].startswith(cdn) for name, e in lock.items() if name not in local)
    for name, entry in local.items():
        data = (PYODIDE / entry["file_name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert set(entry["depends"]) <= set(local), (name, entry["depends"])
    # what the kernel installs when it starts, all local (jupyterlite/pyodide-kernel,
    # packages/pyodide-kernel/src/worker.ts: micropip, then piplite installs the others)
    assert {"micropip", "comm", "jedi", "ipython"} <= set(local)
    needs = browser_edition.requires(wheel, "3.14")
    # what the site fetches from Pyodide's CDN: k8sbook's requirements with compiled code and
    # no Pyodide wheel on PyPI (browser_edition.FETCHED says which cells need each):
    # matplotlib draws the figures, cryptography makes and checks the x509 certificates (the
    # RS256 of service-account tokens has a pure-Python stand-in, core.rs256), PyYAML prints
    # objects as YAML
    assert set(needs) - set(local) == {"matplotlib", "cryptography", "pyyaml"}, needs
    assert set(browser_edition.FETCHED) == {"matplotlib", "cryptography", "pyyaml"}
    for name in browser_edition.FETCHED:
        assert lock[name]["file_name"].startswith(cdn), name  # Pyodide's build of it


def test_the_offered_wheel_is_the_working_tree(wheel):
    tree = {p.relative_to(ROOT / "src").as_posix(): p.read_bytes()
            for p in (ROOT / "src" / "k8sbook").rglob("*")
            if p.suffix in (".py", ".toml") and "__pycache__" not in p.parts}
    with zipfile.ZipFile(wheel) as archive:
        packed = {n: archive.read(n) for n in archive.namelist()
                  if n.startswith("k8sbook/") and n.endswith((".py", ".toml"))}
        meta = archive.read(next(n for n in archive.namelist() if n.endswith("/METADATA")))
    assert packed == tree, "the site's wheel is stale: rebuild the book"
    assert b"Requires-Dist: dnspython" in meta


def test_every_chapter_page_links_its_browser_edition_and_the_wheel(built):
    pages = sorted((SITE / "notebooks").glob("*.html"))
    assert pages
    wheels = sorted((SITE / "lite" / "pypi").glob("k8sbook-*.whl"))
    assert len(wheels) == 1, wheels
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert f'href="../lite/pypi/{wheels[0].name}"' in text, page.name
        assert f"pip install {wheels[0].name} jupyterlab" in text, page.name
        target = re.search(r'href="\.\./(lite/notebooks/index\.html\?path=([^"]+))"', text)
        assert target and (SITE / "lite" / "files" / target.group(2)).exists(), page.name
    assert Path(SITE / "lite" / "notebooks" / "index.html").exists()
