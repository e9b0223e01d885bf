"""k8sbook.textbook.figures imports matplotlib only when a figure is drawn.

The browser edition runs the chapters in Pyodide, where matplotlib is fetched from Pyodide's
package index and may be unavailable (offline): every cell that draws no figure must still run,
so importing the textbook modules (every scenario module included) and running a scenario must
not import matplotlib (tests/site/test_browser_edition_pyodide.py runs them all there).
"""

from __future__ import annotations

import subprocess
import sys

from k8sbook.textbook import figures

_CHECK = """
import sys
from k8sbook.textbook import atlas, catalog, figures, scenarios
assert len(scenarios.all_scenarios()) > 30  # every scenario module imported
scenarios.run("hub-write-and-watch")
print(sorted(m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")))
"""


def test_no_matplotlib_until_a_figure_is_drawn():
    out = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout[-500:]


def test_a_figure_is_drawn_with_the_books_settings():
    import matplotlib

    svg = figures.svg(figures.timeline(["kubelet"], [("kubelet", 0.0, 1.0, "up", "#2e8b57")]))
    assert matplotlib.rcParams["svg.hashsalt"] == "k8sbook"
    assert "<text" in svg  # svg.fonttype "none": text stays text
