"""Server-side dry run: every step of a write but the write itself.

Mirrors ``k8s.io/apiserver/pkg/registry/generic/registry/dryrun.go`` (``DryRunnableStorage``):
the registry runs defaulting, admission (mutating and validating, webhooks told
``dryRun: true``), validation and the strategy's hooks as for a real request, then asks the
storage to write with ``dryRun`` set, and the storage only checks: a create whose key exists is
409 ``AlreadyExists``, an update or delete whose object changed meanwhile is a conflict, and the
answer is the object that *would* be stored. Nothing reaches etcd and no revision is used, so a
dry-run create answers with no ``resourceVersion`` and an update with the current one.

Which requests are dry runs is :func:`k8sbook.apiserver.options.dry_run`.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.storage.etcd3 import Storage


class DryRunStorage:
    """The storage as a dry-run write sees it: reads are real, writes are checks."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def get(self, key: str) -> dict[str, Any] | None:
        return self.storage.get(key)

    def create(self, key: str, obj: dict[str, Any], lease_ttl: int = 0) -> dict[str, Any] | None:
        if self.storage.get(key) is not None:
            return None
        out = copy.deepcopy(obj)
        out["metadata"].pop("resourceVersion", None)
        return out

    def update(self, key: str, obj: dict[str, Any], expected_mod_revision: int
               ) -> dict[str, Any] | None:
        current = self.storage.get(key)
        if current is None or int(current["metadata"]["resourceVersion"]) != \
                expected_mod_revision:
            return None
        out = copy.deepcopy(obj)
        out["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return out

    def delete(self, key: str, expected_mod_revision: int) -> int | None:
        current = self.storage.get(key)
        if current is None or int(current["metadata"]["resourceVersion"]) != \
                expected_mod_revision:
            return None
        return expected_mod_revision
