#!/usr/bin/env bash
# Run the whole test suite, with all set-up included:
#   1. lint (ruff) of src, tests and scripts, and type checks (mypy, default mode) of src;
#   2. a strict book build (incremental: only changed pages are rebuilt);
#   3. pytest on two workers: the model's tests, the stored-notebook checks, every notebook
#      re-executed by nbval in strict mode and compared with its stored outputs, and the
#      browser tests of the built site.
# Every step runs even if an earlier one failed; the exit status is non-zero if any failed.
# Extra arguments are passed on to pytest (e.g. `bash scripts/test.sh -k glossary`).
#
# Bytecode is cached (`__pycache__/`, git-ignored) even where PYTHONDONTWRITEBYTECODE is set:
# every pytest-xdist worker, notebook kernel and subprocess imports the model, and pytest
# rewrites the test modules' asserts in each worker; without the cache each of them compiles
# it all again (about a quarter of a second per process, a few seconds per worker).
#
# `bash scripts/test.sh --quick` (first argument) is the quick loop while editing: ruff, mypy
# and pytest on two workers over the model's tests and the notebooks, without the book build
# and without anything that starts a real server or a browser, or reruns a stored full-size
# benchmark (the markers `browser`, `real_etcd`, `https_server` and `slow`, set by location in
# conftest.py). The full command above is the one CI runs.
#
# pytest-xdist runs with `--dist loadfile`: conftest.py puts each file's tests in one group
# (as `--dist loadfile` would: one kernel per notebook, module fixtures built once), except the
# files in its SPLIT_FILES, whose independent tests are dealt out one by one to both workers.
set -uo pipefail
quick=false
if [ "${1:-}" = "--quick" ]; then
    quick=true
    shift
fi
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
k8sbook_setup || exit 1
k8sbook_setup_lite || exit 1
unset PYTHONDONTWRITEBYTECODE

failed=()

if ! $quick && [ ! -x /usr/bin/chromium ]; then
    echo "test: /usr/bin/chromium not found: the browser tests will be SKIPPED (Debian: apt-get install chromium)"
elif ! python -c 'import playwright.sync_api' >/dev/null 2>&1; then
    echo "test: the playwright package is missing: the browser tests will be SKIPPED"
fi

if $quick; then
    echo "test: --quick: no book build, no browser, no real etcd, no HTTPS server or kubectl, no slow benchmark reruns"
elif ! command -v etcd >/dev/null 2>&1 && [ ! -x /usr/bin/etcd ]; then
    echo "test: no etcd binary: the real-etcd tests will be SKIPPED (FAILED when CI=true) and notebooks/a2-real-etcd.ipynb will FAIL (Debian: apt-get install etcd-server)"
fi
if ! $quick && ! command -v kubectl >/dev/null 2>&1; then
    echo "test: no kubectl: the kubectl tests will be SKIPPED (FAILED when CI=true) and notebooks/a1-kubectl-against-the-model.ipynb will FAIL"
fi

echo "test: ruff check src tests scripts"
ruff check src tests scripts || failed+=("ruff")

echo "test: mypy src"
mypy || failed+=("mypy")

if $quick; then
    echo "test: pytest (quick)"
    python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --nbval --nbval-current-env tests notebooks \
        -m "not browser and not real_etcd and not https_server and not slow" "$@" || failed+=("pytest")
else
    echo "test: building the book (strict)"
    jupyter-book build . -W -n --keep-going || failed+=("book build")

    echo "test: pytest"
    python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --nbval --nbval-current-env tests notebooks "$@" \
        || failed+=("pytest")
fi

if [ "${#failed[@]}" -gt 0 ]; then
    echo "test: FAILED: ${failed[*]}"
    exit 1
fi
