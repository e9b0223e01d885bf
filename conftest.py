"""Markers by location, for the whole session (tests/ and the notebooks nbval collects).

Tests and chapters that start a real server or binary are marked here, in one place, so that
`bash scripts/test.sh --quick` can leave them out with `-m` (the README's full command runs
everything):

- ``real_etcd``: tests/storage/test_etcd_differential.py and notebooks/a2-real-etcd start etcd;
- ``https_server``: tests/serve/ and notebooks/a1-kubectl-against-the-model start
  ``k8sbook serve`` on loopback and drive it with the official client or kubectl;
- ``browser``: tests/site/ (also set in those modules) drive the built site in Chromium.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

MARKS_BY_PATH: dict[str, str] = {
    "tests/storage/test_etcd_differential.py": "real_etcd",
    "notebooks/a2-real-etcd.ipynb": "real_etcd",
    "tests/serve/": "https_server",
    "notebooks/a1-kubectl-against-the-model.ipynb": "https_server",
    "tests/site/": "browser",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            where = Path(item.path).resolve().relative_to(ROOT).as_posix()
        except ValueError:
            continue
        for prefix, mark in MARKS_BY_PATH.items():
            if where == prefix or (prefix.endswith("/") and where.startswith(prefix)):
                item.add_marker(getattr(pytest.mark, mark))
