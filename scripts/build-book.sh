#!/usr/bin/env bash
# Build the book's HTML into _build/html, with all set-up included.
#
#   bash scripts/build-book.sh          incremental build (only changed pages are rewritten)
#   bash scripts/build-book.sh --clean  remove _build first, then build every page
#
# Notebooks are not executed here (_config.yml: execute_notebooks "off"): the book publishes the
# outputs stored in the notebooks, and the test suite proves they equal a fresh run.
# The build is strict: any warning, broken cross-reference or missing page fails it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
k8sbook_setup
k8sbook_setup_lite

clean=0
for arg in "$@"; do
    case "$arg" in
        --clean|--all) clean=1 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "build-book: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

if [ "$clean" = 1 ]; then
    jupyter-book clean --all .
fi
jupyter-book build . -W -n --keep-going
echo "build-book: open _build/html/index.html"
