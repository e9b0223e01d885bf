"""The API reference (book/api/) lists every module of the package, layer by layer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("api_pages", ROOT / "scripts" / "api_pages.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_layer_page_is_current():
    script = _script()
    for layer in script.LAYERS:
        committed = (ROOT / "book" / "api" / f"{layer}.md").read_text(encoding="utf-8")
        assert committed == script.page(layer), (
            f"book/api/{layer}.md is stale: run `python scripts/api_pages.py`")


def test_every_module_is_in_the_reference():
    script = _script()
    listed = {m for layer in script.LAYERS for m in script.modules(layer)}
    src = ROOT / "src"
    on_disk = {
        ".".join(path.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
        for path in (src / "k8sbook").rglob("*.py")
    } - {"k8sbook", "k8sbook.__main__"}
    assert on_disk - listed == set()
