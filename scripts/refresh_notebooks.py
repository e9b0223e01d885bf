"""Re-execute the book's notebooks in place so their stored outputs match the current model.

Usage (from the repository root, inside .venv; `bash scripts/refresh-notebooks.sh` does both):

    python scripts/refresh_notebooks.py                 # every notebooks/*.ipynb
    python scripts/refresh_notebooks.py notebooks/02-the-hub.ipynb
    python scripts/refresh_notebooks.py --digests-only  # only the scenarios' stored digests

Each notebook runs top to bottom in a fresh `python3` kernel (jupyter_client starts it with
this very interpreter, so it sees the same packages as nbval's --nbval-current-env), with
notebooks/ as the working directory, exactly as nbval runs it in the tests. The result is made
deterministic before it is written back:

* no per-cell timing metadata (`metadata.execution`) is recorded or kept;
* code cells are numbered 1, 2, 3, ... in order (skipped cells included), and every
  `execute_result` carries its cell's number;
* cells marked to be skipped by nbval (`# NBVAL_SKIP` or the `nbval-skip` tag) are not run
  and keep their stored outputs;
* cells marked `# NBVAL_RAISES_EXCEPTION` (or tagged `raises-exception`) may raise: the error
  is stored as their output. Any other error stops the refresh and leaves the file untouched.

Then it rewrites the stored digests of the scenarios those chapters run (every scenario's when
every notebook was refreshed), `tests/textbook/scenario_digests.json`, which the determinism
test compares one run of each scenario with (`tests/textbook/scenario_digests.py`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import NATIVE_KERNEL_NAME
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TIMEOUT_SECONDS = 600


def _markers(cell: nbformat.NotebookNode) -> tuple[bool, bool]:
    """(skip, may_raise) for a code cell, from nbval's comment markers and cell tags."""
    tags = set(cell.get("metadata", {}).get("tags", []))
    first_lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
    comments = {line.lstrip("#").strip() for line in first_lines if line.startswith("#")}
    skip = "NBVAL_SKIP" in comments or "nbval-skip" in tags
    may_raise = "NBVAL_RAISES_EXCEPTION" in comments or "raises-exception" in tags
    return skip, may_raise


def _merged_streams(outputs: list) -> list:
    """Consecutive outputs of one stream (stdout, stderr) joined into one, as nbval compares
    them: how a busy kernel happened to flush a cell's prints must not change the file."""
    merged: list = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (output.output_type == "stream" and last is not None
                and last.output_type == "stream" and last.name == output.name):
            last.text = "".join(last.text) + "".join(output.text)
        else:
            merged.append(output)
    return merged


def refresh(path: Path) -> int:
    """Execute one notebook in place; return the number of code cells run."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=NATIVE_KERNEL_NAME,  # "python3"
        timeout=TIMEOUT_SECONDS,
        record_timing=False,
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    ran = 0
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            skip, may_raise = _markers(cell)
            if skip:
                continue
            # nbclient lets a cell fail when it carries the "raises-exception" tag; add it for
            # the duration of the run only, so comment markers work the same way.
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            added_tag = may_raise and "raises-exception" not in tags
            if added_tag:
                tags.append("raises-exception")
            try:
                client.execute_cell(cell, index)
            finally:
                if added_tag:
                    tags.remove("raises-exception")
                if not tags:
                    del cell.metadata["tags"]
            ran += 1

    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        cell.metadata.pop("execution", None)
        cell.outputs = _merged_streams(cell.outputs)
        for output in cell.outputs:
            if output.output_type == "execute_result":
                output.execution_count = count
    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return ran


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def refresh_digests(chapters: list[str] | None) -> None:
    """Store the seed-3 digests of the scenarios of ``chapters`` (notebook names without
    ``.ipynb``; None: every scenario)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from k8sbook.textbook.scenarios import all_scenarios
    from tests.textbook import scenario_digests

    names = None if chapters is None else [
        s.name for s in all_scenarios() if s.chapter in chapters]
    start = time.perf_counter()
    done = scenario_digests.refresh(names)
    took = time.perf_counter() - start
    print(f"refresh: {_shown(scenario_digests.DIGESTS)}: {len(done)} scenario digests "
          f"in {took:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--digests-only", action="store_true",
                        help="only rewrite every scenario's stored digest")
    args = parser.parse_args(argv)
    if args.digests_only:
        refresh_digests(None)
        return 0
    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("*.ipynb"))
    if not paths:
        print("refresh: no notebooks found", file=sys.stderr)
        return 1
    failed = []
    for path in paths:
        start = time.perf_counter()
        try:
            ran = refresh(path)
        except CellExecutionError as error:
            failed.append(path)
            print(f"refresh: FAILED {_shown(path)} (left unchanged)\n{error}",
                  file=sys.stderr)
            continue
        took = time.perf_counter() - start
        print(f"refresh: {_shown(path)}: ran {ran} code cells in {took:.1f} s")
    refresh_digests(None if not args.notebooks else [p.stem for p in paths])
    if failed:
        print(f"refresh: {len(failed)} notebook(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
