"""Strategic merge patch (``application/strategic-merge-patch+json``) for the model's kinds.

Mirrors ``k8s.io/apimachinery/pkg/util/strategicpatch`` (``StrategicMergePatch``): a JSON
merge patch, except that some lists are *merged* by a key instead of replaced. Which lists
merge, and by which key, is declared in the Go types of ``k8s.io/api`` by the struct tags
``patchStrategy:"merge"`` and ``patchMergeKey:"..."`` (for example ``PodSpec.Containers``
merges by ``name``, ``Container.Ports`` by ``containerPort``, ``ServiceSpec.Ports`` by
``port``). ``kubectl apply`` (client-side, the default) and ``kubectl cordon`` send this
patch type; so does the official Python client for a ``dict`` body.

The directives the apiserver understands are applied: ``$patch: replace | delete | merge``
on maps and list items, ``$setElementOrder/<list>``, ``$retainKeys`` and
``$deleteFromPrimitiveList/<list>``.

Simplified, said out loud: the merge keys are a table over the model's kinds (read off the
``k8s.io/api`` struct tags) rather than derived from the Go types or OpenAPI; lists of other
kinds replace, as a JSON merge patch does. ``$setElementOrder`` puts the listed items first in
the listed order and keeps items only the server had after them, in server order (the real
``normalizeElementOrder`` interleaves the server-only items by their server positions).
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api.decoding import copy_value

STRATEGIC = "application/strategic-merge-patch+json"

#: Lists inside a PodSpec that merge, and their merge key (``k8s.io/api/core/v1`` PodSpec).
POD_SPEC_LISTS = {"containers": "name", "initContainers": "name",
                  "ephemeralContainers": "name", "volumes": "name",
                  "imagePullSecrets": "name", "hostAliases": "ip",
                  "topologySpreadConstraints": "topologyKey", "schedulingGates": "name",
                  "resourceClaims": "name"}
#: Lists inside a Container that merge (``Container.Ports``, ``Env``, ``VolumeMounts`` ...).
CONTAINER_LISTS = {"ports": "containerPort", "env": "name", "volumeMounts": "mountPath",
                   "volumeDevices": "devicePath"}
#: Where each kind keeps a PodSpec.
POD_SPEC_AT = {"Pod": ("spec",), "ReplicaSet": ("spec", "template", "spec"),
               "Deployment": ("spec", "template", "spec")}
#: Lists of primitives merged as sets (``ObjectMeta.Finalizers``, ``NodeSpec.PodCIDRs``).
PRIMITIVE_MERGE = {("metadata", "finalizers"), ("spec", "podCIDRs")}

_DIRECTIVE = "$patch"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_RETAIN = "$retainKeys"


def list_strategy(kind: str, path: tuple[str, ...]) -> tuple[str, str | None]:
    """``("merge", key)`` for a list merged by ``key``, ``("merge", None)`` for a list of
    primitives merged as a set, ``("replace", None)`` for a list a patch replaces."""
    if path == ("metadata", "ownerReferences"):
        return "merge", "uid"
    if path in PRIMITIVE_MERGE and (path[0] == "metadata" or kind == "Node"):
        return "merge", None
    if path == ("status", "conditions"):
        return "merge", "type"
    if kind == "Pod" and path == ("status", "podIPs"):
        return "merge", "ip"
    if kind == "Node" and path == ("status", "addresses"):
        return "merge", "type"
    if kind == "Service" and path == ("spec", "ports"):
        return "merge", "port"
    spec = POD_SPEC_AT.get(kind)
    if spec and path[:len(spec)] == spec:
        rest = path[len(spec):]
        if len(rest) == 1 and rest[0] in POD_SPEC_LISTS:
            return "merge", POD_SPEC_LISTS[rest[0]]
        if (len(rest) == 2 and rest[0] in ("containers", "initContainers",
                                           "ephemeralContainers")
                and rest[1] in CONTAINER_LISTS):
            return "merge", CONTAINER_LISTS[rest[1]]
    return "replace", None


def strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply ``patch`` to ``original`` (whose ``kind`` chooses the merge keys)."""
    if not isinstance(patch, dict):
        raise TypeError("a strategic merge patch must be a JSON object")
    kind = str(original.get("kind", ""))
    out = _merge_map(copy_value(original), patch, kind, ())  # deepcopy's result, faster
    if out is None:
        raise ValueError("a strategic merge patch may not delete the whole object")
    return out


def _merge_map(orig: Any, patch: dict[str, Any], kind: str,
               path: tuple[str, ...]) -> dict[str, Any] | None:
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return None
    body = {k: v for k, v in patch.items() if k != _DIRECTIVE}
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in body.items()
                if not k.startswith("$")}
    if directive not in (None, "merge"):
        raise ValueError(f"Unknown patch type: {directive}, in {path or 'the object'}")
    out = dict(orig) if isinstance(orig, dict) else {}
    retain = body.pop(_RETAIN, None)
    orders = {k[len(_ORDER):]: body.pop(k) for k in list(body) if k.startswith(_ORDER)}
    removals = {k[len(_DELETE_PRIMITIVE):]: body.pop(k) for k in list(body)
                if k.startswith(_DELETE_PRIMITIVE)}
    for key, value in body.items():
        here = (*path, key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            merged = _merge_map(out.get(key), value, kind, here)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, kind, here)
        else:
            out[key] = copy.deepcopy(value)
    for key, values in removals.items():
        if isinstance(out.get(key), list):
            out[key] = [v for v in out[key] if v not in values]
    for key, order in orders.items():
        if isinstance(out.get(key), list):
            out[key] = _order(out[key], order, list_strategy(kind, (*path, key))[1])
    if retain is not None:
        if not isinstance(retain, list):
            raise ValueError("$retainKeys must be a list")
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(orig: Any, patch: list[Any], kind: str, path: tuple[str, ...]) -> list[Any]:
    strategy, key = list_strategy(kind, path)
    if any(isinstance(i, dict) and i.get(_DIRECTIVE) == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch
                if not (isinstance(i, dict) and _DIRECTIVE in i)]
    if strategy == "replace" or not isinstance(orig, list):
        if strategy == "merge" and key is not None:
            return [_strip(i) for i in patch
                    if not (isinstance(i, dict) and i.get(_DIRECTIVE) == "delete")]
        return copy.deepcopy(patch)
    out = list(orig)
    if key is None:  # a set of primitives (finalizers): add what is missing
        return out + [copy.deepcopy(v) for v in patch if v not in out]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise ValueError(f"map: {item} does not contain declared merge key: {key}")
        at = next((i for i, o in enumerate(out) if isinstance(o, dict)
                   and o.get(key) == item[key]), None)
        if item.get(_DIRECTIVE) == "delete":
            if at is not None:
                del out[at]
            continue
        if at is None:
            out.append(_strip(item))
        else:
            merged = _merge_map(out[at], item, kind, path)
            if merged is None:
                del out[at]
            else:
                out[at] = merged
    return out


def _strip(item: Any) -> Any:
    """A new list item: directives removed (they only steer merging)."""
    if isinstance(item, dict):
        return {k: _strip(v) for k, v in item.items() if not k.startswith("$")}
    return copy.deepcopy(item)


def _order(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(v: Any) -> Any:
        return v.get(key) if key is not None and isinstance(v, dict) else v
    wanted = [ident(o) for o in order]
    listed = sorted((i for i in items if ident(i) in wanted), key=lambda i: wanted.index(ident(i)))
    return listed + [i for i in items if ident(i) not in wanted]
