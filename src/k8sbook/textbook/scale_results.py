"""Chapter 15's stored full-size results: benchmarks too slow for the notebook.

Kubernetes has no counterpart; this is the book's own machinery, in the spirit of
perf-tests' stored baselines. A run that takes longer than a notebook cell should is a
*benchmark* here: :func:`run` performs it, ``k8sbook scale-results --write`` stores what it
reported in ``data/scale_results.toml`` (package data, with the command that made it), the
chapter displays :func:`stored`, and ``tests/textbook/test_scale_results.py`` (marked
``slow``: in ``bash scripts/test.sh``, not in ``--quick``) reruns it and compares. The runs are
on virtual time with seeded ids, so a rerun gives the same numbers, byte for byte; wall-clock
times are printed, never stored.

TOML, not JSON: the package data of :mod:`k8sbook.textbook` is its ``data/*.toml`` files
(they go into the browser edition's wheel), and the results are plain tables of numbers and
strings. :func:`dumps` writes that subset of TOML; ``tomllib`` reads it.

Benchmarks:

* ``kep752_capped``: :func:`~k8sbook.textbook.scenarios.scale.endpoint_update` with 1,200
  endpoints on 240 nodes (5 a node; 240 kube-proxy watchers): the Endpoints object is over
  the 1,000-address cap and truncated, and its size at 1,000 addresses is the second point
  of the line the chapter draws to 20,000 (the model's node IPAM gives 10.244.0.0/16 in /24s,
  so a model cluster has at most 246 nodes).
"""

from __future__ import annotations

import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

COMMAND = "k8sbook scale-results --write"
FILE = "scale_results.toml"
#: name -> the keyword arguments of the run
BENCHMARKS: dict[str, dict[str, int]] = {
    "kep752_capped": {"endpoints": 1200, "nodes": 240, "per_slice": 100},
}


def run_one(name: str) -> dict[str, Any]:
    """One benchmark, as :data:`BENCHMARKS` describes it."""
    from k8sbook.textbook.scenarios import scale

    kwargs = BENCHMARKS[name]
    if name.startswith("kep752"):
        return scale.endpoint_update(**kwargs)
    raise KeyError(name)


def run(names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every benchmark (or ``names``), with the command that stores them."""
    out: dict[str, Any] = {"command": COMMAND}
    for name in names or tuple(BENCHMARKS):
        out[name] = run_one(name)
    return out


def timed(names: tuple[str, ...] | None = None) -> tuple[dict[str, Any], dict[str, float]]:
    """:func:`run` and the CPU seconds each benchmark took (not stored: it is the machine's)."""
    results: dict[str, Any] = {"command": COMMAND}
    seconds: dict[str, float] = {}
    for name in names or tuple(BENCHMARKS):
        start = time.process_time()
        results[name] = run_one(name)
        seconds[name] = round(time.process_time() - start, 2)
    return results, seconds


def stored() -> dict[str, Any]:
    """The stored results (``data/scale_results.toml``)."""
    text = resources.files("k8sbook.textbook").joinpath("data", FILE).read_text()
    return tomllib.loads(text)


def path() -> Path:
    """Where :func:`write` stores the results (the source tree's package data)."""
    return Path(__file__).resolve().parent / "data" / FILE


def write(results: dict[str, Any]) -> Path:
    out = path()
    out.write_text(dumps(results))
    return out


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot store {type(v).__name__} in the results")


def dumps(data: dict[str, Any], prefix: str = "") -> str:
    """The results as TOML: scalars and lists first, then each nested table, keys sorted."""
    lines = []
    if not prefix:
        lines.append(f"# made by `{data.get('command', COMMAND)}`; do not edit by hand")
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    lines += [f"{k} = {_value(scalars[k])}" for k in sorted(scalars)]
    out = "\n".join(lines) + ("\n" if lines else "")
    for k in sorted(tables):
        name = f"{prefix}.{k}" if prefix else k
        out += f"\n[{name}]\n" + dumps(tables[k], name).lstrip("\n")
    return out
