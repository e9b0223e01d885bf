"""client-go's cache mutation detector, as the model's watch cache uses it."""

from __future__ import annotations

import pytest

from k8sbook.core import mutation_detector


def test_check_fails_only_on_an_object_changed_since_it_was_sent() -> None:
    mutation_detector.detect()
    try:
        obj = {"metadata": {"name": "x"}, "data": {"k": "v"}}
        mutation_detector.sent(obj, '{"metadata":{"name":"x"},"data":{"k":"v"}}')
        mutation_detector.check()
        obj["data"]["k"] = "w"
        with pytest.raises(AssertionError, match="cache mutation detected"):
            mutation_detector.check()
    finally:
        mutation_detector.detect(mutation_detector.enabled_by_environment())


def test_nothing_is_kept_while_not_detecting() -> None:
    mutation_detector.detect(False)
    try:
        obj = {"a": 1}
        mutation_detector.sent(obj, '{"a":1}')
        obj["a"] = 2
        mutation_detector.check()  # nothing was kept, so nothing to find
    finally:
        mutation_detector.detect(mutation_detector.enabled_by_environment())
