"""Benchmark: wall time of a clean book build and of the whole test suite.

Usage (after set-up: `bash scripts/setup.sh`):

    .venv/bin/python scripts/benchmark.py          # human-readable lines
    .venv/bin/python scripts/benchmark.py --json   # one JSON object

It runs, in this order, each once:

1. a clean book build: `jupyter-book clean --all .` then
   `jupyter-book build . -W -n --keep-going` (the clean step is not timed);
2. the test suite, exactly the pytest command of scripts/test.sh
   (`python -m pytest -n 2 --dist loadfile --nbval --nbval-current-env tests notebooks`),
   which then finds the site built by step 1;
3. the quick suite, the pytest command of `scripts/test.sh --quick` (the same, without the
   tests marked `browser`, `real_etcd` or `https_server`; budget: 30 s on two cores).

The model's own scale benchmark is a separate command: `k8sbook bench` (see DEVELOPING.md).

This is a measurement, not a test: it never fails on a slow run, but it exits non-zero when a
measured command itself failed, and reports each command's exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

BUILD = [str(BIN / "jupyter-book"), "build", ".", "-W", "-n", "--keep-going"]
CLEAN = [str(BIN / "jupyter-book"), "clean", "--all", "."]
TESTS = [
    sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadfile",
    "--nbval", "--nbval-current-env", "tests", "notebooks", "-q",
]
QUICK = TESTS + ["-m", "not browser and not real_etcd and not https_server"]


def timed(command: list[str], quiet: bool) -> tuple[float, int]:
    """Run a command from the repository root; return (wall seconds, exit status)."""
    output = subprocess.DEVNULL if quiet else None
    start = time.perf_counter()
    status = subprocess.run(
        command, cwd=ROOT, stdout=output, stderr=output, check=False
    ).returncode
    return time.perf_counter() - start, status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--verbose", action="store_true", help="show the commands' output")
    args = parser.parse_args(argv)
    quiet = not args.verbose

    env_note = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    subprocess.run(
        CLEAN, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    build_seconds, build_status = timed(BUILD, quiet)
    test_seconds, test_status = timed(TESTS, quiet)
    quick_seconds, quick_status = timed(QUICK, quiet)

    result = {
        "test_suite": {
            "command": " ".join(["python"] + TESTS[1:]),
            "seconds": round(test_seconds, 2),
            "exit_status": test_status,
        },
        "quick_test_suite": {
            "command": " ".join(["python"] + QUICK[1:]),
            "seconds": round(quick_seconds, 2),
            "exit_status": quick_status,
        },
        "clean_book_build": {
            "command": "jupyter-book clean --all . && " + " ".join(["jupyter-book"] + BUILD[1:]),
            "seconds": round(build_seconds, 2),
            "exit_status": build_status,
        },
        "environment": env_note,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name in ("test_suite", "quick_test_suite", "clean_book_build"):
            entry = result[name]
            print(f"{name}: {entry['seconds']:.1f} s (exit status {entry['exit_status']})")
    return 0 if build_status == 0 and test_status == 0 and quick_status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
