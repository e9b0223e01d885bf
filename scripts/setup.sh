#!/usr/bin/env bash
# Set-up shared by every command of the project: make sure .venv exists and holds exactly the
# packages pinned in requirements.txt (plus the k8sbook package itself, installed editable).
#
# Run it directly (`bash scripts/setup.sh`) or source it from another script. It is quick when
# nothing changed: a stamp inside .venv records the hash of requirements.txt + pyproject.toml,
# and pip runs only when that hash changes (or when .venv is missing or broken).
#
# Needs only Python 3.11 (or newer) with pip and venv, and access to PyPI.
# Environment: PYTHON=/path/to/python3.11 chooses the interpreter that creates .venv.
#
# The book build and the tests also call k8sbook_setup_lite, the set-up of the browser edition:
# the Pyodide runtime from the npm registry (lite/package-lock.json, into lite/node_modules;
# needs Node.js and npm) and the pure-Python wheels it bundles (lite/pyodide-wheels.txt, from
# PyPI, into lite/wheels). Each is redone only when its pin file changes.
set -euo pipefail

K8SBOOK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$K8SBOOK_ROOT/.venv"
STAMP="$VENV/.k8sbook-setup.stamp"

_k8sbook_pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3 python; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
            >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    echo "setup: no Python >= 3.11 found (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

_k8sbook_hash() {
    # The hash of the two files that decide what gets installed, computed with Python so that
    # no sha256sum/shasum variant is needed.
    "$1" - "$K8SBOOK_ROOT/requirements.txt" "$K8SBOOK_ROOT/pyproject.toml" <<'PY'
import hashlib, sys
digest = hashlib.sha256()
for name in sys.argv[1:]:
    with open(name, "rb") as handle:
        digest.update(handle.read())
print(digest.hexdigest())
PY
}

k8sbook_setup() {
    cd "$K8SBOOK_ROOT"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

    if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        echo "setup: $VENV is broken (its interpreter does not start); recreating it"
        rm -rf "$VENV"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        local python
        python="$(_k8sbook_pick_python)"
        echo "setup: creating $VENV with $python ($("$python" --version 2>&1))"
        "$python" -m venv "$VENV"
    fi

    local want have=""
    want="$(_k8sbook_hash "$VENV/bin/python")"
    [ -f "$STAMP" ] && have="$(cat "$STAMP")"
    if [ "$want" = "$have" ]; then
        echo "setup: .venv is up to date (requirements unchanged)"
    else
        echo "setup: installing requirements.txt into .venv (this takes a few minutes the first time)"
        rm -f "$STAMP"
        "$VENV/bin/python" -m pip install --quiet -r requirements.txt
        echo "$want" > "$STAMP"
        echo "setup: done"
    fi

    # Everything after this uses the venv's tools first.
    export VIRTUAL_ENV="$VENV"
    export PATH="$VENV/bin:$PATH"
    # Notebook kernels pick the inline matplotlib backend only when MPLBACKEND is unset; a value
    # inherited from the caller's shell would change the stored figure outputs.
    unset MPLBACKEND
}

k8sbook_setup_lite() {
    cd "$K8SBOOK_ROOT"
    local lite="$K8SBOOK_ROOT/lite" want have=""
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        echo "setup: node and npm are needed for the browser edition (Debian: apt-get install nodejs npm)" >&2
        return 1
    fi
    want="$(_k8sbook_hash_files "$lite/package.json" "$lite/package-lock.json")"
    [ -f "$lite/node_modules/.k8sbook.stamp" ] && have="$(cat "$lite/node_modules/.k8sbook.stamp")"
    if [ "$want" != "$have" ] || [ ! -f "$lite/node_modules/pyodide/pyodide.mjs" ]; then
        echo "setup: installing the Pyodide runtime (npm ci in lite/)"
        npm ci --prefix "$lite" --no-audit --no-fund --ignore-scripts --loglevel=error
        echo "$want" > "$lite/node_modules/.k8sbook.stamp"
    fi
    want="$(_k8sbook_hash_files "$lite/pyodide-wheels.txt")"
    have=""
    [ -f "$lite/wheels/.k8sbook.stamp" ] && have="$(cat "$lite/wheels/.k8sbook.stamp")"
    if [ "$want" != "$have" ]; then
        echo "setup: downloading the wheels the browser edition bundles (lite/pyodide-wheels.txt)"
        rm -rf "$lite/wheels"
        "$VENV/bin/python" -m pip download --quiet --no-deps --only-binary=:all: \
            --python-version 3.14 --implementation py --abi none --platform any \
            --require-hashes -r "$lite/pyodide-wheels.txt" -d "$lite/wheels"
        echo "$want" > "$lite/wheels/.k8sbook.stamp"
    fi
}

_k8sbook_hash_files() {
    "$VENV/bin/python" - "$@" <<'PY'
import hashlib, sys
digest = hashlib.sha256()
for name in sys.argv[1:]:
    with open(name, "rb") as handle:
        digest.update(handle.read())
print(digest.hexdigest())
PY
}

# Executed (not sourced): set up everything, the browser edition included.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    k8sbook_setup
    k8sbook_setup_lite
fi
