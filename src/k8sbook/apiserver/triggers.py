"""The watch cache's indexed triggers: which watchers an event can concern.

Mirrors the ``TriggerFunc`` of the registries' ``StoreOptions`` and the cacher's use of it
(``apiserver/pkg/storage/cacher``: ``triggerValuesThreadUnsafe``): a resource with a trigger
files each watcher under the value its field selector requires (a kubelet's
``spec.nodeName=node-a``), so an event is handed only to the watchers filed under its value
and to those that asked for no particular value. Only pods have one upstream.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TRIGGERS", "node_name_trigger", "trigger_value"]


def node_name_trigger(obj: dict[str, Any]) -> str:
    """``pod.NodeNameTriggerFunc`` (``pkg/registry/core/pod/strategy.go``): a pod's
    ``spec.nodeName``, the value the watch cache files kubelets' watches under."""
    return obj.get("spec", {}).get("nodeName", "") or ""


#: the watch cache's indexed trigger per resource (``TriggerFunc`` in the registry's
#: ``StoreOptions``): only pods have one upstream, on ``spec.nodeName``
TRIGGERS = {"pods": ("spec.nodeName", node_name_trigger)}


def trigger_value(field: str, selector: list[tuple[str, str, str]]) -> str | None:
    """The value a parsed field selector requires for ``field`` (``RequiresExactMatch``),
    or None if it allows more than one."""
    for name, op, value in selector:
        if name == field and op == "=":
            return value
    return None
