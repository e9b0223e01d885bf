"""Build the browser edition of the book: a JupyterLite site that runs every chapter in Pyodide.

Usage (inside .venv, from the repository root; `bash scripts/build-book.sh` runs it as part of
the book build, through the Sphinx extension in `scripts/sphinx_lite.py`):

    python scripts/browser_edition.py _build/html/lite

What it assembles, all from local files (nothing is fetched at build time):

* a wheel of `k8sbook`, built from the working tree (a clean copy of `src/`, so no stale
  `build/` folder can leak into it), offered for download at `lite/pypi/`;
* the Pyodide runtime from the npm `pyodide` package (`lite/node_modules/pyodide`, installed by
  `scripts/setup.sh` from `lite/package-lock.json`) and the pure-Python wheels that the kernel
  and `k8sbook` need (`lite/wheels/`, downloaded by `scripts/setup.sh` from
  `lite/pyodide-wheels.txt`, pinned with hashes), under `static/pyodide/`;
* a `pyodide-lock.json` in which those bundled wheels are local files and every other package
  of Pyodide's distribution (matplotlib, numpy, ...) keeps its address on Pyodide's CDN, with
  each entry's sha256. Pyodide resolves a lock entry's `file_name` against its `indexURL`, so
  an absolute URL stays as it is, and checks the download against `sha256`; a package that
  fails to load is reported, not raised (pyodide/pyodide, `src/js/package-manager.ts`,
  `downloadPackage`, `downloadAndInstall`), hence the install cell checks for each package it
  fetches (:data:`FETCHED`: matplotlib, cryptography, PyYAML);
* every chapter notebook of `_toc.yml`, with a banner cell and an install cell added after its
  title (see :func:`browser_notebook`), and `jupyter lite build` (jupyterlite-core, with the
  jupyterlite-pyodide-kernel addons) run over them. The Pyodide addon serves a runtime put in
  `<lite dir>/static/pyodide` instead of the CDN's, the piplite addon indexes the `k8sbook`
  wheel into `pypi/all.json`, and `disablePyPIFallback` keeps piplite from asking PyPI for
  anything else (https://jupyterlite.readthedocs.io/en/stable/howto/configure/advanced/offline.html,
  https://jupyterlite.readthedocs.io/en/stable/howto/pyodide/wheels.html).

`jupyter lite build` also ships the JupyterLab extensions installed in `.venv`: among them
jupyterlab-myst (pinned in requirements.txt), which renders the chapters' MyST markup
(admonitions, dropdowns, roles) as the book does, where plain JupyterLab shows it as text.

Why bundle the runtime rather than load it from the CDN (the kernel's default): the issue asks
for a book that runs offline once loaded, and the runtime is 14 MB (the npm package minus its
type declarations and consoles), copied in well under a second.

A notebook says what cannot run in a browser: its metadata ``k8sbook.not_in_browser`` gives
the reason (shown in the banner), and each cell that needs it carries the tag
``not-in-browser`` (marked with a comment line in the browser edition, left runnable so that
it fails loudly, never silently).
"""

from __future__ import annotations

import argparse
import copy
import email.parser
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import nbformat
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LITE = ROOT / "lite"
PYODIDE_NPM = LITE / "node_modules" / "pyodide"
WHEELS = LITE / "wheels"
#: The files of the npm package that a browser needs (the rest are types, docs, consoles).
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
                 "package.json")
#: The tag and the notebook metadata key by which a chapter marks what a browser cannot run.
TAG = "not-in-browser"
METADATA_KEY = "k8sbook"
REASON_KEY = "not_in_browser"
#: The JupyterLite apps the site ships: `notebooks` (one notebook, what the button opens),
#: `lab` (the full JupyterLab) and `tree` (the file list both link to).
APPS = ("notebooks", "lab", "tree")
#: The kernel of jupyterlite-pyodide-kernel is named "python".
KERNELSPEC = {"name": "python", "display_name": "Python (Pyodide)", "language": "python"}
#: SOURCE_DATE_EPOCH for the wheel: the same tree gives the same bytes (1980-01-01, zip's epoch).
EPOCH = "315532800"
#: k8sbook's requirements that the site cannot bundle (no Pyodide wheel on PyPI: compiled code,
#: built by Pyodide and served from its CDN), so the install cell fetches them online: by
#: project name, (import name, the cells that need it). The model imports each only where it
#: uses it, so that offline every other cell runs.
FETCHED = {
    "matplotlib": ("matplotlib", "the cells that draw a figure"),
    "cryptography": ("cryptography", "the cells that make or check an x509 certificate"),
    "pyyaml": ("yaml", "the cells that print YAML"),
}


def pyodide_version() -> str:
    return json.loads((PYODIDE_NPM / "package.json").read_text(encoding="utf-8"))["version"]


def cdn_url() -> str:
    """Pyodide's package index for this version (Pyodide's own default for `packageBaseUrl`)."""
    return f"https://cdn.jsdelivr.net/pyodide/v{pyodide_version()}/full/"


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks of the book, in the order of `_toc.yml`."""
    def walk(node: Any) -> list[str]:
        found = []
        if isinstance(node, dict):
            if "file" in node:
                found.append(str(node["file"]).removesuffix(".ipynb"))
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key) or []:
                    found.extend(walk(child))
        return found

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    entries = walk(toc)
    return [root / f"{entry}.ipynb" for entry in entries
            if (root / f"{entry}.ipynb").exists()]


# -- wheels ----------------------------------------------------------------------------------

def wheel_metadata(path: Path) -> email.message.Message:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist()
                    if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def wheel_imports(path: Path) -> list[str]:
    """Top-level import names of a wheel (what Pyodide's lock calls `imports`)."""
    with zipfile.ZipFile(path) as archive:
        tops = {n.split("/")[0] for n in archive.namelist()}
    return sorted(t.removesuffix(".py") for t in tops
                  if not t.endswith((".dist-info", ".data", ".pth")))


#: The environment the browser's Python reports, to evaluate markers such as
#: `sys_platform != "emscripten"` (https://pyodide.org/en/stable/usage/faq.html).
_PYODIDE_ENV = {"sys_platform": "emscripten", "platform_system": "Emscripten",
                "os_name": "posix", "platform_machine": "wasm32", "extra": ""}


def requires(path: Path, python: str) -> list[str]:
    """The wheel's required distributions in the browser (no extras, markers evaluated)."""
    env = dict(_PYODIDE_ENV, python_version=python, python_full_version=f"{python}.0",
               implementation_name="cpython", platform_python_implementation="CPython")
    names = []
    for line in wheel_metadata(path).get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or Marker(str(req.marker)).evaluate(env):
            names.append(canonicalize_name(req.name))
    return sorted(set(names))


def build_wheel(dest: Path) -> Path:
    """Build the `k8sbook` wheel from a clean copy of the tree; return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="k8sbook-wheel-") as tmp:
        work = Path(tmp)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, work / name)
        shutil.copytree(ROOT / "src", work / "src",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH, PIP_DISABLE_PIP_VERSION_CHECK="1")
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "--no-build-isolation", "--wheel-dir", str(work / "dist"), str(work)],
                       check=True, env=env)
        built = sorted((work / "dist").glob("k8sbook-*.whl"))
        for old in dest.glob("k8sbook-*.whl"):
            old.unlink()
        return Path(shutil.copy2(built[-1], dest / built[-1].name))


def bundled_wheels() -> dict[str, Path]:
    """The pure-Python wheels downloaded for the browser, by canonical project name."""
    wheels = sorted(WHEELS.glob("*.whl"))
    if not wheels or not (PYODIDE_NPM / "pyodide-lock.json").exists():
        raise SystemExit("browser edition: lite/node_modules or lite/wheels is missing; run "
                         "`bash scripts/setup.sh` (it needs npm)")
    return {canonicalize_name(str(wheel_metadata(w)["Name"])): w for w in wheels}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pyodide_lock(wheels: dict[str, Path]) -> dict[str, Any]:
    """Pyodide's lock, with the bundled wheels local and everything else on Pyodide's CDN."""
    lock = json.loads((PYODIDE_NPM / "pyodide-lock.json").read_text(encoding="utf-8"))
    python = ".".join(lock["info"]["python"].split(".")[:2])
    cdn = cdn_url()
    for entry in lock["packages"].values():
        entry["file_name"] = cdn + entry["file_name"]
    for name, wheel in sorted(wheels.items()):
        meta = wheel_metadata(wheel)
        old = lock["packages"].get(name, {})
        lock["packages"][name] = {
            "name": str(meta["Name"]), "version": str(meta["Version"]),
            "file_name": wheel.name, "install_dir": "site", "sha256": sha256(wheel),
            "package_type": "package", "imports": old.get("imports") or wheel_imports(wheel),
            "depends": requires(wheel, python), "unvendored_tests": False, "tool": {},
        }
    return lock


# -- notebooks -------------------------------------------------------------------------------

def install_source(k8sbook: Path, wheels: dict[str, Path]) -> str:
    """The install cell: k8sbook and its bundled dependencies, then the rest from Pyodide."""
    needs = requires(k8sbook, "3.14")
    local = [n for n in needs if n in wheels]
    fetched = [n for n in needs if n not in wheels]
    lines = [
        "# Browser edition only: install the book's model from the wheel bundled with this site",
        "# (nothing is downloaded for it), then fetch from Pyodide's package index what it",
        f"# cannot bundle ({', '.join(fetched)}). Offline, every cell runs except those that",
        "# need one of them.",
        "import importlib.util",
        "import piplite",
        f"await piplite.install({['k8sbook', *local]!r}, deps=False)",
    ]
    for name in fetched:
        module, cells = FETCHED.get(name, (name, "the cells that use it"))
        lines += [
            "try:",
            f"    await piplite.install({name!r})",
            "except Exception:",
            "    pass",
            f"if importlib.util.find_spec({module!r}) is None:",
            f"    print('{name} could not be fetched from Pyodide\\'s package index (offline?): '",
            f"          '{cells} will fail, all the others run.')",
        ]
    return "\n".join(lines)


def banner_source(wheel_name: str, reason: str | None) -> str:
    """The banner under the title, as MyST admonitions (jupyterlab-myst renders them)."""
    text = (
        ":::{note} Browser edition\n"
        "This notebook runs in your browser: Python is [Pyodide](https://pyodide.org) (CPython "
        "compiled to WebAssembly) and nothing runs on a server. Run the cells from the top "
        "(Shift+Enter): the next cell installs the book's model from the wheel bundled with "
        "this site, and fetches from Pyodide's package index matplotlib (for the figures), "
        "cryptography (for x509 certificates) and PyYAML (to print YAML). "
        "Change any cell and run it again to see the model's new answer.\n\n"
        "To run it on your own computer instead, download this notebook (File, Download) "
        f"and the wheel `{wheel_name}` (linked at the top of the chapter's page in the book), "
        f"then: `pip install {wheel_name} jupyterlab` and `jupyter lab`.\n"
        ":::"
    )
    if reason:
        text += (
            "\n\n:::{warning} ⚠ Not everything here can run in a browser\n"
            f"{reason} The cells that need it start with a ⚠ comment: in the browser they "
            "fail with an error; their stored outputs show what they print on a computer.\n"
            ":::"
        )
    return text


def browser_notebook(nb: dict[str, Any], k8sbook: Path, wheels: dict[str, Path]
                     ) -> dict[str, Any]:
    """The browser edition of one chapter notebook (the stored outputs are kept)."""
    nb = copy.deepcopy(nb)
    reason = nb.get("metadata", {}).get(METADATA_KEY, {}).get(REASON_KEY)
    nb["metadata"]["kernelspec"] = dict(KERNELSPEC)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            # The outputs are the book's own (those the site publishes): mark them trusted as a
            # Jupyter server marks the cells of a notebook whose signature it trusts, or
            # JupyterLab shows the stored SVG figures as text (it reads the cell metadata
            # `trusted`: jupyterlab/jupyterlab, packages/cells/src/model.ts, CellModel).
            cell.setdefault("metadata", {})["trusted"] = True
        if cell["cell_type"] == "code" and TAG in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) \
                else cell["source"]
            cell["source"] = f"# ⚠ Cannot run in the browser edition: {reason}\n{source}"
    banner = {"cell_type": "markdown", "id": "browser-edition", "metadata": {},
              "source": banner_source(k8sbook.name, reason)}
    install = {"cell_type": "code", "id": "browser-install", "execution_count": None,
               "metadata": {"tags": ["browser-install"]}, "outputs": [],
               "source": install_source(k8sbook, wheels)}
    at = 1 if nb["cells"] and nb["cells"][0]["cell_type"] == "markdown" else 0  # the title
    nb["cells"][at:at] = [banner, install]
    return nb


# -- the site --------------------------------------------------------------------------------

def build(output: Path, root: Path = ROOT, quiet: bool = True) -> Path:
    """Build the browser edition into `output`; return the path of the wheel it offers."""
    build_dir = output.parent.parent if output.parent.name == "html" else output.parent
    stage = build_dir / "lite-stage"
    if stage.exists():
        shutil.rmtree(stage)
    contents = stage / "contents"
    pyodide = stage / "static" / "pyodide"
    for folder in (contents, pyodide):
        folder.mkdir(parents=True)

    wheels = bundled_wheels()
    k8sbook = build_wheel(stage / "piplite")
    for name in PYODIDE_FILES:
        shutil.copy2(PYODIDE_NPM / name, pyodide / name)
    for wheel in wheels.values():
        shutil.copy2(wheel, pyodide / wheel.name)
    (pyodide / "pyodide-lock.json").write_text(
        json.dumps(pyodide_lock(wheels), sort_keys=True), encoding="utf-8")

    for path in toc_notebooks(root):
        # nbformat.reads joins the lines that the stored file splits into lists: JupyterLite
        # reads the file as it is and would show a list of lines with commas between them.
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        (contents / path.name).write_text(
            json.dumps(browser_notebook(nb, k8sbook, wheels), indent=1, ensure_ascii=False)
            + "\n", encoding="utf-8")

    settings = {"jupyter-config-data": {
        "appName": "k8sbook, browser edition",
        "litePluginSettings": {"@jupyterlite/pyodide-kernel-extension:kernel": {
            # Bundled or nothing: a package missing from the site is never taken from PyPI.
            "disablePyPIFallback": True,
        }},
    }}
    (stage / "jupyter-lite.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")

    command = [sys.executable, "-m", "jupyter", "lite", "build", "--lite-dir", str(stage),
               "--output-dir", str(output), "--contents", str(contents),
               "--piplite-wheels", str(k8sbook), "--no-sourcemaps", "--no-unused-shared-packages"]
    for app in APPS:
        command += ["--apps", app]
    result = subprocess.run(command, cwd=stage, capture_output=quiet, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"jupyter lite build failed:\n{result.stdout}\n{result.stderr}")
    return output / "pypi" / k8sbook.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="output folder, e.g. _build/html/lite")
    parser.add_argument("--verbose", action="store_true", help="show jupyter lite's output")
    args = parser.parse_args(argv)
    wheel = build(args.output.resolve(), quiet=not args.verbose)
    print(f"browser edition: {args.output} (wheel {wheel.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
