"""Shared pytest set-up.

Guard against notebooks whose outputs were stripped.

nbval (0.11) compares a cell's fresh outputs with the stored ones only when the stored cell has
an ``execution_count``; a cell stripped of outputs (``execution_count: null``, ``outputs: []``)
is run but never compared, so a notebook run through an output stripper would pass silently
while the book would publish empty pages. The guard below fails any notebook cell that stores
no outputs although running it produces some, whatever its execution count or nbval markers
(only cells nbval skips are exempt, since they are not run).

Markers by location, for the whole session (tests/ and the notebooks nbval collects). Tests
and chapters that start a real server or binary are marked here, in one place, so that
`bash scripts/test.sh --quick` can leave them out with `-m` (the README's full command runs
everything):

- ``real_etcd``: tests/storage/test_etcd_differential.py, tests/storage/test_etcd_cluster_real.py
  (three members) and notebooks/a2-real-etcd start etcd;
- ``https_server``: tests/serve/ and notebooks/a1-kubectl-against-the-model start
  ``k8sbook serve`` on loopback and drive it with the official client or kubectl;
- ``browser``: tests/site/ (also set in those modules) drive the built site in Chromium;
- ``slow``: tests/textbook/test_scale_results.py reruns chapter 15's stored full-size
  benchmarks (tens of seconds); ``--quick`` leaves out everything marked ``slow``.

The guard is a plugin object registered from ``pytest_configure`` in this root conftest, so
it applies to every item pytest collects, ``notebooks/`` and ``tests/`` alike, however pytest
is invoked (``scripts/test.sh``, ``pytest --nbval notebooks/02-the-hub.ipynb``, ...).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
GUARD_NAME = "k8sbook-stripped-output-guard"


class StrippedOutputGuard:
    """Fail an nbval cell that stores no outputs but produces some when run."""

    @staticmethod
    def _is_nbval_cell(item: pytest.Item) -> bool:
        try:
            from nbval.plugin import IPyNbCell
        except ImportError:  # nbval not installed: nothing to guard
            return False
        return isinstance(item, IPyNbCell)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        result = yield  # nbval has run the cell; an error or an output mismatch propagates
        if self._is_nbval_cell(item):
            stored = item.cell.get("outputs") or []
            produced = item.test_outputs or []
            if not stored and produced:
                kinds = sorted({out.get("output_type", "?") for out in produced})
                item.raise_cell_error(
                    "Cell stores no outputs, but running it produced "
                    f"{len(produced)} ({', '.join(kinds)}). The notebook was probably saved "
                    "without outputs or stripped; refresh it with "
                    "`bash scripts/refresh-notebooks.sh` and commit the outputs."
                )
        return result


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(GUARD_NAME):
        config.pluginmanager.register(StrippedOutputGuard(), GUARD_NAME)



#: Test files that take seconds each (browser, real etcd, kubectl, notebooks), the costliest
#: first: pytest-xdist deals files out in collection order (scripts/test.sh passes
#: ``--no-loadscope-reorder``; by default it would deal the files with the most tests first),
#: so starting these first keeps both workers busy to the end instead of leaving one finishing
#: a long file alone. Chapters 15 and 13 each take a good part of the quick suite's CPU time.
#: The tests of SPLIT_FILES (below), small units of work each, come last: they fill in
#: whichever worker is free at the end.
_SLOW_FIRST = ("tests/site/test_browser_edition_pyodide", "notebooks/15-", "notebooks/13-",
               "notebooks/", "tests/site/", "tests/storage/test_etcd_differential",
               "tests/serve/", "tests/node/test_certificate", "tests/test_lazy_imports",
               "tests/textbook/test_exercise_variants", "tests/controlplane/test_endpoint.py",
               "tests/textbook/test_scale.py")

MARKS_BY_PATH: dict[str, str] = {
    "tests/storage/test_etcd_differential.py": "real_etcd",
    "tests/storage/test_etcd_cluster_real.py": "real_etcd",
    "notebooks/a2-real-etcd.ipynb": "real_etcd",
    "tests/serve/": "https_server",
    "notebooks/a1-kubectl-against-the-model.ipynb": "https_server",
    "tests/site/": "browser",
    "tests/textbook/test_scale_results.py": "slow",
}


#: Files whose tests pytest-xdist may deal out one by one to both workers: independent tests,
#: no module-scoped fixture worth sharing, and together longer than most files. Every other
#: file stays one unit of work, as ``--dist loadfile`` makes it (a notebook's cells share one
#: kernel; a module's fixtures are built once). See :func:`pytest_xdist_make_scheduler`.
SPLIT_FILES = ("tests/textbook/test_scenarios_schema.py",)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile`` (as scripts/test.sh runs), except that the tests of
    :data:`SPLIT_FILES` are units of their own. (``--dist loadgroup`` with ``xdist_group``
    marks would say the same, but pytest-xdist 3.8 cannot rename pytest 9.2's node ids.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SplitSomeFiles(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return nodeid if scope in SPLIT_FILES else scope

    return SplitSomeFiles(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        node = item.nodeid
        for i, prefix in enumerate(_SLOW_FIRST):
            if node.startswith(prefix):
                return i
        if node.split("::", 1)[0] in SPLIT_FILES:
            return len(_SLOW_FIRST) + 1
        return len(_SLOW_FIRST)

    items.sort(key=rank)  # stable: the order within a file (a notebook's cells) is kept
    for item in items:
        try:
            where = Path(item.path).resolve().relative_to(ROOT).as_posix()
        except ValueError:
            continue
        for prefix, mark in MARKS_BY_PATH.items():
            if where == prefix or (prefix.endswith("/") and where.startswith(prefix)):
                item.add_marker(getattr(pytest.mark, mark))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Print the summaries tests record as the `k8sbook_summary` property (for instance the
    cells the browser-edition test could not run), also from pytest-xdist workers."""
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "k8sbook_summary" and getattr(report, "when", "") == "call":
                    lines.append(str(value))
    if lines:
        terminalreporter.section("k8sbook")
        for line in lines:
            terminalreporter.line(line)
