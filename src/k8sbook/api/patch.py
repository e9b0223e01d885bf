"""The patch formats the apiserver accepts.

Mirrors ``k8s.io/apimachinery/pkg/util/jsonmergepatch`` / ``evanphx/json-patch`` as used by the
apiserver's ``patchResource``: JSON merge patch (RFC 7386, ``application/merge-patch+json``)
and JSON patch (RFC 6902, ``application/json-patch+json``), plus strategic merge patch
(``application/strategic-merge-patch+json``, lists merged by key: :mod:`k8sbook.api.strategicpatch`).
Server-side apply (``application/apply-patch+yaml``) is not a patch format here: the
apiserver's field manager serves it (:mod:`k8sbook.apiserver.fieldmanager`).
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api.decoding import copy_json, copy_value
from k8sbook.api.strategicpatch import STRATEGIC, strategic_merge_patch
from k8sbook.core.status import StatusError, status_object, unsupported_media_type

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` deletes, anything else replaces. The
    target is copied once and the patch merged into the copy (``target`` is not changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    _merge_into(out, patch)
    return out


def _merge_into(out: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            inner = out.get(key)
            if not isinstance(inner, dict):
                inner = out[key] = {}
            _merge_into(inner, value)
        else:
            out[key] = copy_value(value)  # deepcopy's result, faster



def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc


def json_patch(target: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902: add, remove, replace, move, copy, test."""
    doc = copy_value(target)  # deepcopy's result, faster
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        parent, last = (_walk(doc, parts[:-1]), parts[-1]) if parts else (None, "")
        if kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise ValueError(f"testing value {op.get('path')} failed")
            continue
        if kind in ("remove", "replace", "move"):
            src = _pointer(op["from"]) if kind == "move" else parts
            sp, sl = _walk(doc, src[:-1]), src[-1]
            value = sp.pop(int(sl)) if isinstance(sp, list) else sp.pop(sl)
            if kind == "remove":
                continue
            if kind == "replace":
                value = op.get("value")
        elif kind == "copy":
            value = copy.deepcopy(_walk(doc, _pointer(op["from"])))
        elif kind == "add":
            value = op.get("value")
        else:
            raise ValueError(f"unknown operation {kind!r}")
        if parent is None:
            doc = value
        elif isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), value)
        else:
            parent[last] = value
    return doc


def apply_patch(target: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    try:
        if content_type == MERGE:
            if not isinstance(patch, dict):
                raise ValueError("a merge patch must be a JSON object")
            out = copy_json(target)  # a stored object: JSON types only
            _merge_into(out, patch)
            return out
        if content_type == JSON_PATCH:
            if not isinstance(patch, list):
                raise ValueError("a JSON patch must be a JSON array of operations")
            return json_patch(target, patch)
        if content_type == STRATEGIC:
            return strategic_merge_patch(target, patch)
    except (ValueError, KeyError, IndexError, TypeError) as err:
        # patch failures that are the client's fault: 422 from the patcher (``errors.NewInvalid``
        # in newer releases, BadRequest in older ones); the model answers 400 BadRequest.
        raise StatusError(status_object(400, "BadRequest", f"the server rejected our request "
                                        f"due to an error in our request: {err}")) from err
    raise unsupported_media_type(content_type)
