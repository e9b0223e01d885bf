"""Write the API reference pages (book/api/<layer>.md) from the package's module tree.

One page per layer of the package, each listing every module of that layer for Sphinx autodoc.
Run it after adding or removing a module; tests/textbook/test_api_pages.py fails while a page
is stale (so a new module cannot be left out of the reference).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "book" / "api"
LAYERS = ("core", "api", "client", "storage", "apiserver", "controlplane", "node", "addons",
          "cluster", "textbook", "serve", "cli")


def modules(layer: str) -> list[str]:
    """The layer's module and every module below it, sorted."""
    name = f"k8sbook.{layer}"
    found = [name]
    package = importlib.import_module(name)
    if hasattr(package, "__path__"):
        found += [m.name for m in pkgutil.walk_packages(package.__path__, name + ".")]
    return sorted(found)


def page(layer: str) -> str:
    """The Markdown of one layer's reference page."""
    lines = [f"# `k8sbook.{layer}`", "", "```{eval-rst}"]
    for name in modules(layer):
        lines += [f".. automodule:: {name}", ""]
    lines[-1:] = ["```", ""]
    return "\n".join(lines)


def main() -> None:
    for layer in LAYERS:
        (PAGES / f"{layer}.md").write_text(page(layer), encoding="utf-8")
    print(f"wrote {len(LAYERS)} pages in {PAGES}")


if __name__ == "__main__":
    main()
