"""Benchmark: wall time of a clean book build and of the whole test suite.

Usage (after set-up: `bash scripts/setup.sh`):

    .venv/bin/python scripts/benchmark.py          # human-readable lines
    .venv/bin/python scripts/benchmark.py --json   # one JSON object
    .venv/bin/python scripts/benchmark.py --only quick_test_suite   # one measurement

It runs, in this order, each once:

1. a clean book build: `jupyter-book clean --all .` then
   `jupyter-book build . -W -n --keep-going` (the clean step is not timed);
2. the test suite, exactly the pytest command of scripts/test.sh
   (`python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --nbval --nbval-current-env
   tests notebooks`),
   which then finds the site built by step 1;
3. the quick suite, the pytest command of `scripts/test.sh --quick` (the same, without the
   tests marked `browser`, `real_etcd`, `https_server` or `slow`; budget: 30 s on two cores).

Each command runs as `scripts/test.sh` runs it, with bytecode caching on (PYTHONDONTWRITEBYTECODE
unset). Beside each wall time it prints the CPU seconds the command and its children used
(user + system: the workers, the notebook kernels, the subprocesses) and the load average
before it started: on a machine shared with other work the wall time grows with the load,
the CPU time much less, so compare CPU times between runs on a busy machine.

The model's own scale benchmark is a separate command: `k8sbook bench` (see DEVELOPING.md).

This is a measurement, not a test: it never fails on a slow run, but it exits non-zero when a
measured command itself failed, and reports each command's exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

BUILD = [str(BIN / "jupyter-book"), "build", ".", "-W", "-n", "--keep-going"]
CLEAN = [str(BIN / "jupyter-book"), "clean", "--all", "."]
TESTS = [
    sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadfile", "--no-loadscope-reorder",
    "--nbval", "--nbval-current-env", "tests", "notebooks", "-q",
]
QUICK = TESTS + ["-m", "not browser and not real_etcd and not https_server and not slow"]
NAMES = ("clean_book_build", "test_suite", "quick_test_suite")
#: as scripts/test.sh runs the commands: with bytecode caches written
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], quiet: bool) -> dict[str, float | int]:
    """Run a command from the repository root; return its wall seconds, the CPU seconds it
    and its children used, the 1-minute load average before it and its exit status."""
    output = subprocess.DEVNULL if quiet else None
    load = os.getloadavg()[0]
    cpu = _children_cpu()
    start = time.perf_counter()
    status = subprocess.run(
        command, cwd=ROOT, stdout=output, stderr=output, check=False, env=ENV
    ).returncode
    return {"seconds": round(time.perf_counter() - start, 2),
            "cpu_seconds": round(_children_cpu() - cpu, 2),
            "load_average_before": round(load, 2), "exit_status": status}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--verbose", action="store_true", help="show the commands' output")
    parser.add_argument("--only", action="append", choices=NAMES,
                        help="run only this measurement (repeatable)")
    args = parser.parse_args(argv)
    quiet = not args.verbose
    wanted = args.only or list(NAMES)

    env_note = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    commands = {
        "clean_book_build": ("jupyter-book clean --all . && "
                             + " ".join(["jupyter-book"] + BUILD[1:]), BUILD),
        "test_suite": (" ".join(["python"] + TESTS[1:]), TESTS),
        "quick_test_suite": (" ".join(["python"] + QUICK[1:]), QUICK),
    }
    result: dict[str, Any] = {}
    for name in NAMES:  # in this order: the test suite finds the site the build made
        if name not in wanted:
            continue
        if name == "clean_book_build":
            subprocess.run(CLEAN, cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        shown, command = commands[name]
        result[name] = {"command": shown, **timed(command, quiet)}
    result["environment"] = env_note
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name in ("test_suite", "quick_test_suite", "clean_book_build"):
            if name not in result:
                continue
            entry = result[name]
            print(f"{name}: {entry['seconds']:.1f} s wall, {entry['cpu_seconds']:.1f} s CPU "
                  f"(load average {entry['load_average_before']:.1f} before; "
                  f"exit status {entry['exit_status']})")
    return 0 if all(result[n]["exit_status"] == 0 for n in NAMES if n in result) else 1


if __name__ == "__main__":
    sys.exit(main())
