"""The schema definitions the model reads: kubernetes-validate's, or the package's copy of them.

Field sets (managedFields) and strict field validation follow the official schemas; a plain
install of the wheel and the browser edition have no kubernetes-validate, so the package carries
that release's definitions file, which must be the same as the one kubernetes-validate ships.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from k8sbook.api import fieldvalidation


def test_the_bundled_definitions_are_those_of_kubernetes_validate():
    spec = importlib.util.find_spec("kubernetes_validate")
    assert spec is not None and spec.submodule_search_locations  # a test requirement
    shipped = Path(next(iter(spec.submodule_search_locations)), "kubernetes-json-schema",
                   f"v{fieldvalidation.SCHEMA_VERSION}-local-strict", "_definitions.json")
    assert fieldvalidation.bundled_definitions() == json.loads(shipped.read_text())["$defs"]
    assert fieldvalidation.bundled_definitions() == fieldvalidation.definitions()
