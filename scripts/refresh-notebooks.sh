#!/usr/bin/env bash
# Re-execute every notebook in place (or only those named), after a change to the model, so
# that the stored outputs are current again. Includes all set-up.
#
#   bash scripts/refresh-notebooks.sh
#   bash scripts/refresh-notebooks.sh notebooks/02-the-hub.ipynb
#
# It also rewrites the refreshed chapters' scenario digests (tests/textbook/scenario_digests.json;
# every one: `bash scripts/refresh-notebooks.sh --digests-only`).
#
# Then review the diff of the notebooks and run `bash scripts/test.sh`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
k8sbook_setup
python scripts/refresh_notebooks.py "$@"
