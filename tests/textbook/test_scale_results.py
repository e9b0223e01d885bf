"""Chapter 15's stored full-size results (textbook/scale_results.py), rerun and compared.

Marked ``slow`` (by location in the root conftest.py, and here): ``bash scripts/test.sh``
runs it, ``--quick`` leaves it out.
"""

from __future__ import annotations

import tomllib

import pytest

from k8sbook.textbook import scale_results

pytestmark = pytest.mark.slow


def test_stored_results_are_what_the_benchmarks_give_now():
    fresh = scale_results.run()
    assert fresh == scale_results.stored(), (
        "the stored full-size results are stale: rerun `k8sbook scale-results --write` "
        "and refresh chapter 15")


def test_the_store_round_trips_and_names_its_command():
    data = scale_results.stored()
    assert data["command"] == scale_results.COMMAND == "k8sbook scale-results --write"
    assert tomllib.loads(scale_results.dumps(data)) == data
    assert set(data) == {"command", *scale_results.BENCHMARKS}
