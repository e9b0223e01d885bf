"""Static checks of the notebooks as stored: the book publishes these outputs as they are.

nbval (run with --nbval in scripts/test.sh) proves the stored outputs equal a fresh run; these
checks make sure there is something stored to compare, and that every chapter is in the book.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REFRESH = "run `bash scripts/refresh-notebooks.sh` and commit the outputs"


def _toc_files(node) -> list[str]:
    """Every `file:` entry of a jb-book _toc.yml, in order."""
    found = []
    if isinstance(node, dict):
        if "file" in node:
            entry = str(node["file"])
            for suffix in (".ipynb", ".md"):
                entry = entry.removesuffix(suffix)
            found.append(entry)
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []) or []:
                found.extend(_toc_files(child))
    return found


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return _toc_files({"file": toc["root"]}) + _toc_files(toc)


def _ids(paths):
    return [p.name for p in paths]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_code_cell_was_executed(path: Path):
    nb = nbformat.read(path, as_version=4)
    unexecuted = [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and cell.get("execution_count") is None
    ]
    assert not unexecuted, (
        f"{path.name}: code cells {unexecuted} (0-based cell index) have no execution_count; "
        f"{REFRESH}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_some_code_cell_stores_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    assert any(cell.get("outputs") for cell in code), (
        f"{path.name} stores no outputs at all, so nbval would compare nothing; {REFRESH}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_in_the_toc(path: Path):
    listed = set(toc_files())
    entry = path.relative_to(ROOT).with_suffix("").as_posix()
    assert entry in listed, (
        f"{entry} is not listed in _toc.yml; only_build_toc_files is on, so it would be "
        "left out of the book"
    )


def test_toc_lists_only_existing_files():
    missing = [
        entry
        for entry in toc_files()
        if not any((ROOT / f"{entry}{suffix}").exists() for suffix in (".md", ".ipynb"))
    ]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_check_cells_are_folded_away(path: Path):
    """The code cells of a chapter's "Checks" section run under nbval but are folded on the
    page (tag ``hide-input``), so the reader sees prose and results, not walls of asserts."""
    nb = nbformat.read(path, as_version=4)
    in_checks, unfolded = False, []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and "\n## Checks" in "\n" + cell.source:
            in_checks = True
        elif in_checks and cell.cell_type == "code" and \
                "hide-input" not in cell.get("metadata", {}).get("tags", []):
            unfolded.append(index)
    assert unfolded == [], f"{path.name}: check cells {unfolded} lack the hide-input tag"
