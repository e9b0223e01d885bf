"""Every chapter of the browser edition, run under Pyodide in Node.js, prints what the book stores.

One Node process (tests/site/pyodide_run.mjs) loads the Pyodide runtime and lock file that the
built site ships (`_build/html/lite/static/pyodide/`), starts the site's own kernel
(jupyterlite-pyodide-kernel) the way its web worker does, installs `k8sbook` from the wheel
the site offers with the notebook's own install cell, and runs every code cell of every chapter
notebook the site ships, offline: any request that would leave the machine is refused. Each
cell's text outputs (streams, and the text/* data of results and displays, errors) must equal,
byte for byte, those stored in `notebooks/` (which nbval proves a CPython kernel prints).

Cells it cannot run are counted, listed and printed at the end of the test session (never
skipped silently):

* cells tagged ``not-in-browser`` (sockets and processes: `k8sbook serve`, a real etcd) are not
  run;
* cells that draw a figure need matplotlib, which Pyodide's CDN serves and this offline run
  cannot fetch: they run, must fail with ``ModuleNotFoundError: No module named
  'matplotlib'``, and whatever they printed before the figure must equal the stored text;
* cells that make or check an x509 certificate need cryptography, and
  those that print YAML need PyYAML, both fetched from Pyodide's package index online as
  matplotlib is (see :data:`FETCHED`): they run, must fail with ``ModuleNotFoundError`` for that
  package, and what they printed before must be the start of the stored text;
* a later cell of a notebook in which such a cell failed may lack what that cell would have
  made (its variables, the state of its cluster), or need the package in a way that shows only
  as another error (a controller that could not sign, hence an object without its data): if it
  differs from the stored text it must end in an error, and it is listed with the package.

Any other difference fails the test.

Needs Node.js (skipped without it, except in CI, where CI=true makes it a failure) and the
built site (`bash scripts/build-book.sh`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LITE = ROOT / "_build" / "html" / "lite"
RUNNER = Path(__file__).with_name("pyodide_run.mjs")
TAG = "not-in-browser"
INSTALL_TAG = "browser-install"
#: what the site fetches online (browser_edition.FETCHED), by import name: why a cell needs it
FETCHED = {
    "matplotlib": "draws a figure (matplotlib is fetched from Pyodide's CDN, not available "
                  "offline)",
    "cryptography": "needs cryptography, fetched from Pyodide's package index online",
    "yaml": "needs PyYAML, fetched from Pyodide's package index online",
}
TIMEOUT_S = 600

pytestmark = pytest.mark.slow


def _source(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else value


def _ename(name: str) -> str:
    """`ModuleNotFoundError` from ipykernel's and from Pyodide's kernel (`<class '...'>`)."""
    match = re.fullmatch(r"<class '(?:[\w.]*\.)?(\w+)'>", name)
    return match.group(1) if match else name


def text_outputs(outputs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The text a reader sees: streams (consecutive chunks of one stream joined), the text/*
    representations of results and displays, and errors as (name, message)."""
    found: list[tuple[Any, ...]] = []
    for out in outputs:
        kind = out["output_type"]
        if kind == "stream":
            if found and found[-1][:2] == ("stream", out["name"]):
                found[-1] = ("stream", out["name"], found[-1][2] + _text(out["text"]))
            else:
                found.append(("stream", out["name"], _text(out["text"])))
        elif kind in ("execute_result", "display_data"):
            data = {k: _text(v) for k, v in sorted(out["data"].items()) if k.startswith("text/")}
            found.append((kind, data))
        elif kind == "error":
            found.append(("error", _ename(out["ename"]), out["evalue"]))
    return found


def _draws_figure(outputs: list[dict[str, Any]]) -> int | None:
    """The index of the first output that holds a figure, or None."""
    for i, out in enumerate(outputs):
        if any(k.startswith("image/") for k in out.get("data", {})):
            return i
    return None


def _missing(found: list[tuple[Any, ...]]) -> str | None:
    """The package of :data:`FETCHED` whose absence stopped the cell, if that is what did.
    (Pyodide may add to the message how to install a package of its distribution.)"""
    if found and found[-1][:2] == ("error", "ModuleNotFoundError"):
        match = re.match(r"No module named '([\w]+)", found[-1][2])
        if match and match.group(1) in FETCHED:
            return match.group(1)
    return None


def _starts(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> bool:
    """``got`` is what the start of ``want`` prints: equal outputs, the last one possibly cut
    short (a stream stopped mid-way)."""
    if len(got) > len(want) or got[:-1] != want[:len(got) - 1]:
        return False
    if not got:
        return True
    last, full = got[-1], want[len(got) - 1]
    return last == full or (last[:2] == full[:2] == ("stream", last[1])
                            and full[2].startswith(last[2]))


def _node_unavailable() -> str | None:
    if shutil.which("node") is None:
        return "node not found (Debian: apt-get install nodejs)"
    return None


@pytest.fixture(scope="module")
def shipped() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, browser-edition notebook as shipped, stored notebook) for every chapter."""
    if not (LITE / "jupyter-lite.json").exists():
        pytest.fail("the browser edition is not built: run `bash scripts/build-book.sh`",
                    pytrace=False)
    files = sorted((LITE / "files").glob("*.ipynb"))
    assert files, "the browser edition ships no notebooks"
    found = []
    for path in files:
        stored = ROOT / "notebooks" / path.name
        assert stored.exists(), f"{path.name} is shipped but not in notebooks/"
        found.append((path.stem, json.loads(path.read_text(encoding="utf-8")),
                      json.loads(stored.read_text(encoding="utf-8"))))
    return found


def test_every_chapter_runs_under_pyodide(shipped, tmp_path, record_property):
    reason = _node_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)

    job: dict[str, Any] = {"site": str(LITE), "notebooks": []}
    plan: list[tuple[str, list[tuple[str, dict[str, Any] | None, str]]]] = []
    for name, lite_nb, stored_nb in shipped:
        lite_code = [c for c in lite_nb["cells"] if c["cell_type"] == "code"]
        stored_code = [c for c in stored_nb["cells"] if c["cell_type"] == "code"]
        install = [c for c in lite_code if INSTALL_TAG in c["metadata"].get("tags", [])]
        assert len(install) == 1 and lite_code[0] is install[0], \
            f"{name}: the browser edition must start with one install cell"
        cells = [{"source": _source(install[0]), "run": True}]
        rows: list[tuple[str, dict[str, Any] | None, str]] = [("install", None, "")]
        assert len(lite_code) - 1 == len(stored_code), f"{name}: the code cells differ"
        for number, (lite, stored) in enumerate(zip(lite_code[1:], stored_code), start=1):
            assert _source(lite).endswith(_source(stored)), f"{name}: cell {number} differs"
            skip = TAG in stored["metadata"].get("tags", [])
            cells.append({"source": _source(lite), "run": not skip})
            rows.append((f"{name} code cell {number}", stored, "skip" if skip else "run"))
        job["notebooks"].append({"name": name, "cells": cells})
        plan.append((name, rows))

    job_file, result_file = tmp_path / "job.json", tmp_path / "result.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    proc = subprocess.run(["node", str(RUNNER), str(job_file), str(result_file)],
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert proc.returncode == 0, f"the Pyodide run failed:\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(result_file.read_text(encoding="utf-8"))

    identical, mismatches = 0, []
    unrun: list[tuple[str, str]] = []  # (why: the tag, a package of FETCHED, "after ..."), line
    for (name, rows), ran in zip(plan, result["notebooks"], strict=True):
        lost: list[str] = []  # the fetched packages whose cells failed earlier in this notebook
        for (label, stored, action), produced in zip(rows, ran["cells"], strict=True):
            if stored is None:  # the install cell: not in notebooks/, nothing stored to compare
                continue
            if action == "skip":
                unrun.append((TAG, f"{label}: tagged {TAG} (needs sockets or processes)"))
                continue
            got = text_outputs(produced)
            want = text_outputs(stored["outputs"])
            if got == want:
                identical += 1
                continue
            missing = _missing(got)
            figure_at = _draws_figure(stored["outputs"])
            if missing == "matplotlib":  # only a cell that draws may need it
                if figure_at is not None:
                    before = text_outputs(stored["outputs"][:figure_at])
                    if got[:-1] == before:
                        unrun.append((missing, f"{label}: {FETCHED[missing]}"))
                        continue
                    want = before + [got[-1]]
            elif missing is not None and _starts(got[:-1], want):
                unrun.append((missing, f"{label}: {FETCHED[missing]}"))
                lost.append(missing)
                continue
            if missing != "matplotlib" and lost and got and got[-1][0] == "error":
                why = (f"{label}: {got[-1][1]}, after an earlier cell that {FETCHED[lost[0]]} "
                       "(it needs what that cell would have made, or the package itself)")
                unrun.append(("after", why))
                continue
            mismatches.append(f"{label}:\n  stored:  {want!r}\n  pyodide: {got!r}")

    def counted(why: str) -> int:
        return sum(w == why for w, _ in unrun)

    summary = (f"browser edition under Pyodide {result['pyodide']} in Node: "
               f"{len(result['notebooks'])} notebooks, {identical} code cells printed exactly "
               f"the stored text, {len(unrun)} not run ({counted('matplotlib')} draw a figure, "
               f"{counted('cryptography')} need cryptography, {counted('yaml')} need PyYAML, "
               f"{counted('after')} use what one of those would have made, "
               f"{counted(TAG)} tagged {TAG}; {result['total_seconds']:.0f} s, "
               f"kernel ready in {result['kernel_ready_seconds']:.0f} s)")
    record_property("k8sbook_summary",
                    "\n".join([summary, *("  unrun: " + line for _, line in unrun)]))
    assert not mismatches, f"{len(mismatches)} cells differ:\n" + "\n".join(mismatches)
    assert identical > 0
    remote = sorted(set(result["refused"]))
    assert all("cdn.jsdelivr.net/pyodide/" in url for url in remote), \
        f"requests other than Pyodide's CDN were attempted: {remote}"
