"""Every exercise of every chapter has a worked solution, and sends the reader only to public API.

A chapter's ``## Exercises`` cell holds a numbered list; right after it come the solutions, one
``:::{dropdown} Solution to exercise N`` per exercise (in one or more markdown cells), each
possibly followed by a code cell tagged ``hide-cell`` that runs the solution (so nbval checks
it). Exercises and solutions name no private model names (``_evict``) and no test files: a
reader works with what the package offers.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTION = re.compile(r"^:{3,}\{dropdown\} Solution to exercise (\d+)\s*$", re.M)


def exercises_and_solutions(path: Path) -> tuple[list[int], list[int], str]:
    """The exercise numbers, the solution numbers, and the text of both, for one notebook."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "markdown"]
    start = next((i for i, c in enumerate(cells) if re.search(r"^## Exercises", c.source, re.M)),
                 None)
    if start is None:
        return [], [], ""
    section = cells[start].source.split("## Exercises", 1)[1]
    exercises_text = re.split(r"^#{1,2} ", section, flags=re.M)[0]
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", exercises_text, re.M)]
    text = section
    solutions: list[int] = [int(n) for n in SOLUTION.findall(section)]
    for cell in cells[start + 1:]:
        if cell.source.startswith("#") and not cell.source.startswith("###"):
            break
        text += cell.source
        solutions += [int(n) for n in SOLUTION.findall(cell.source)]
    return numbers, solutions, text


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_every_exercise_has_a_solution(path: Path):
    numbers, solutions, _ = exercises_and_solutions(path)
    assert numbers, f"{path.name} has no exercises"
    assert solutions == numbers, (
        f"{path.name}: exercises {numbers}, solutions {solutions} (one "
        "':::{dropdown} Solution to exercise N' per exercise, in order)")


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_exercises_use_only_the_public_api(path: Path):
    _, _, text = exercises_and_solutions(path)
    assert not re.search(r"\b\w+\._[a-z]\w*", text), "a private name in the exercises"
    assert "tests/" not in text, "an exercise sends the reader to the test suite"
