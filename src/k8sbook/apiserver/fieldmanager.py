"""managedFields: who owns which field, recorded on every write; server-side apply.

Mirrors ``k8s.io/apimachinery/pkg/util/managedfields/internal`` (v0.35.0: ``FieldManager``,
``managedfieldsupdater.go``, ``stripmeta.go``, ``conflict.go``) over structured-merge-diff's
``merge.Updater`` (:mod:`k8sbook.api.fieldpath`), as ``endpoints/handlers`` call it:

- **every create, update and patch** (operation ``Update``): the fields the write added or
  changed (``typed.Compare`` of the live object and the new one) go to the writer's entry
  ``{manager, operation: Update, apiVersion, subresource}``, are taken from every other
  manager, and fields the write removed are dropped from all; the entry's ``time`` moves only
  when the write took some field. The manager is the ``fieldManager`` parameter, else the
  User-Agent's product (``managerOrUserAgent``: ``kubectl``'s own commands send
  ``kubectl-create``, ``kubectl-edit``, ``kubectl-client-side-apply`` ...);
- **apply** (``PATCH`` with ``application/apply-patch+yaml``, ``fieldManager`` required): the
  applied configuration is merged into the live object (``Merge``), the manager's entry
  ``{manager, operation: Apply}`` becomes exactly the fields the configuration sets
  (``ToFieldSet``), fields it applied before and no longer sets are removed unless another
  manager owns them (``prune``), and a field the apply would change that another manager owns
  is a **conflict**: 409 ``Conflict`` with one ``FieldManagerConflict`` cause per field and
  the message ``Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using
  apps/v1: .spec.replicas`` (``NewConflictError``); ``force=true`` takes the fields instead. An
  apply to an object that does not exist creates it. A configuration with a field the schema
  does not declare fails as upstream's fails it: ``failed to create typed patch object
  (default/web; apps/v1, Kind=Deployment): .spec.foo: field not declared in schema``, a plain
  error that the handler answers with 500 and no reason (upstream's behaviour, kept).

Never managed (``stripmeta.go``): ``apiVersion``, ``kind``, and in ``metadata`` the ``name``,
``namespace``, ``creationTimestamp``, ``selfLink``, ``uid``, ``generation``,
``managedFields`` and ``resourceVersion``; the reset fields of the registry strategies
(``GetResetFields``): ``status`` for a write to a kind with a status subresource, everything
but ``status`` for a write to ``/status``. Entries are sorted as ``sortEncodedManagedFields``
sorts them: by operation, time, manager.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from k8sbook.api import fieldpath
from k8sbook.api.fieldpath import Path
from k8sbook.api.resources import ResourceType
from k8sbook.apiserver.registry import HAS_STATUS
from k8sbook.core.status import StatusError, bad_request, status_object

APPLY = "application/apply-patch+yaml"
_META = ("name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
         "generation", "managedFields", "resourceVersion")
STRIPPED: frozenset[Path] = frozenset({("f:apiVersion",), ("f:kind",), ("f:metadata",),
                                        *((("f:metadata", f"f:{m}")) for m in _META)})
Entry = dict[str, Any]
_MANAGED = ("f:metadata", "f:managedFields")


def _filter(rt: ResourceType, subresource: str, paths: set[Path]) -> set[Path]:
    """The paths a manager may own: not the stripped ones (``stripmeta.go``), and of a kind
    with a status subresource only ``status`` for a write to ``/status``, everything else
    for the others (the reset fields)."""
    kept = {p for p in paths if p and p not in STRIPPED and p[:2] != _MANAGED}
    if rt.kind in HAS_STATUS:
        if subresource == "status":
            return {p for p in kept if p[0] == "f:status"}
        return {p for p in kept if p[0] != "f:status"}
    return kept


def _bare(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    out = dict(obj)
    out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items()
                       if k != "managedFields"}
    return out


def _identity(e: Entry) -> tuple[str, str, str, str]:
    op = e.get("operation", "")
    return (e.get("manager", ""), op, "" if op == "Apply" else e.get("apiVersion", ""),
            e.get("subresource", ""))


def _decode(obj: dict[str, Any] | None) -> list[tuple[Entry, set[Path]]]:
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    return [(e, fieldpath.from_fields_v1(e.get("fieldsV1") or {})) for e in entries
            if isinstance(e, dict) and e.get("manager") is not None]


def _encode(managed: list[tuple[Entry, set[Path]]]) -> list[Entry]:
    out = []
    for entry, paths in managed:
        if not paths:
            continue
        e = {k: v for k, v in entry.items() if k not in ("fieldsV1", "fieldsType")}
        e["fieldsType"] = "FieldsV1"
        e["fieldsV1"] = fieldpath.to_fields_v1(paths)
        out.append({k: e[k] for k in sorted(e)})
    return sorted(out, key=lambda e: (e.get("operation", ""), e.get("time", ""),
                                      e.get("manager", ""), e.get("apiVersion", ""),
                                      e.get("subresource", "")))


def _entry(rt: ResourceType, manager: str, operation: str, subresource: str,
           time: str) -> Entry:
    e: Entry = {"manager": manager, "operation": operation, "apiVersion": rt.api_version,
                "time": time}
    if subresource:
        e["subresource"] = subresource
    return e


def _set_managed(obj: dict[str, Any], managed: list[tuple[Entry, set[Path]]]) -> None:
    encoded = _encode(managed)
    if encoded:
        obj["metadata"]["managedFields"] = encoded
    else:
        obj["metadata"].pop("managedFields", None)


def update(rt: ResourceType, live: dict[str, Any] | None, new: dict[str, Any], manager: str,
           subresource: str, now: str) -> None:
    """Record a create (``live`` None) or an update by ``manager`` in ``new``'s managedFields."""
    schema = fieldpath.kind_schema(rt.api_version, rt.kind)
    reset = (new.get("metadata") or {}).get("managedFields") == [{}]
    managed = [] if reset else _decode(live)
    added, modified, removed = fieldpath.compare(_bare(live) or {}, _bare(new), schema,
                                                 creating=live is None)
    changed = _filter(rt, subresource, added | modified)
    removed = _filter(rt, subresource, removed)
    me = (manager, "Update", rt.api_version, subresource)
    out, mine = [], None
    for entry, paths in managed:
        if _identity(entry) == me:
            mine = (entry, paths)
            continue
        out.append((entry, paths - changed - removed))
    paths = ((mine[1] if mine else set()) - removed) | changed
    entry = dict(mine[0]) if mine else _entry(rt, manager, "Update", subresource, now)
    if changed:
        entry["time"] = now
    out.append((entry, paths))
    _set_managed(new, out)


def check_apply_body(rt: ResourceType, config: Any) -> dict[str, Any]:
    """The checks of ``structuredMergeManager.Apply`` on an applied configuration: its
    apiVersion must be the resource's, and it may not carry managedFields (the kind is
    checked as any body's is)."""
    if not isinstance(config, dict):
        raise bad_request("the apply patch must be an object")
    if config.get("apiVersion") != rt.api_version:
        raise bad_request("Incorrect version specified in apply patch. Specified patch "
                          f"version: {config.get('apiVersion', '')}, expected: "
                          f"{rt.api_version}")
    if isinstance(config.get("metadata"), dict) and \
            config["metadata"].get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    return config


def _print_manager(e: Entry) -> str:
    out = json.dumps(e.get("manager", ""))
    if e.get("subresource"):
        out += f" with subresource {json.dumps(e['subresource'])}"
    if e.get("operation") == "Update":
        out += f" using {e.get('apiVersion', '')}"
    return out


def _path_key(p: Path) -> list[tuple[int, str]]:
    return [({"f": 1, "k": 2, "v": 3, "i": 4}.get(pe[:1], 5), pe) for pe in p]


def conflict_error(conflicts: list[tuple[Entry, Path]]) -> StatusError:
    """``NewConflictError``: 409 with one cause per conflicting field."""
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {_print_manager(e)}",
               "field": fieldpath.path_string(p)} for e, p in conflicts]
    if len(conflicts) == 1:
        e, p = conflicts[0]
        message = (f"Apply failed with 1 conflict: conflict with {_print_manager(e)}: "
                   f"{fieldpath.path_string(p)}")
    else:
        by_manager: dict[str, list[Path]] = {}
        for e, p in conflicts:
            by_manager.setdefault(_print_manager(e), []).append(p)
        lines = []
        for manager in sorted(by_manager):
            lines.append(f"conflicts with {manager}:")
            lines += [f"- {fieldpath.path_string(p)}" for p in by_manager[manager]]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    status = status_object(409, "Conflict", message, causes=causes)
    return StatusError(status)


def _not_declared(rt: ResourceType, config: dict[str, Any], paths: list[Path]) -> StatusError:
    """``failed to create typed patch object``: what the field manager answers for an applied
    configuration with fields the schema does not declare. Upstream returns it as a plain
    error, so the handler answers 500 with no reason (``ErrorToAPIStatus``)."""
    errors = [f"{fieldpath.path_string(p)}: field not declared in schema" for p in paths]
    detail = errors[0] if len(errors) == 1 else "\n".join(["errors:", *("  " + e for e in errors)])
    meta = config.get("metadata") or {}
    message = (f"failed to create typed patch object ({meta.get('namespace', '')}/"
               f"{meta.get('name', '')}; {rt.group}/{rt.version}, Kind={rt.kind}): {detail}")
    return StatusError(status_object(500, "", message))


def apply(rt: ResourceType, live: dict[str, Any] | None, config: dict[str, Any], manager: str,
          force: bool, subresource: str, now: str) -> dict[str, Any]:
    """The object an apply of ``config`` by ``manager`` makes of ``live`` (``None``: absent),
    with its managedFields; raises the 409 of a conflict unless ``force``."""
    schema = fieldpath.kind_schema(rt.api_version, rt.kind)
    unknown = fieldpath.undeclared(config, schema)
    if unknown:
        raise _not_declared(rt, config, unknown)
    base = _bare(live) or {}
    applied = _filter(rt, subresource, fieldpath.to_field_set(_bare(config), schema))
    merged = fieldpath.merge(base, _bare(config), schema) if live is not None \
        else copy.deepcopy(config)
    managed = _decode(live)
    me = (manager, "Apply", "", subresource)
    last = next((p for e, p in managed if _identity(e) == me), set())
    others = [(e, p) for e, p in managed if _identity(e) != me]
    for path in sorted(last - applied, key=len, reverse=True):  # prune what it stopped setting
        if not any(path in p for _, p in others):
            merged = fieldpath.remove(merged, path, schema)
    added, modified, removed = fieldpath.compare(base, _bare(merged), schema,
                                                 creating=live is None)
    changed = _filter(rt, subresource, added | modified)
    removed = _filter(rt, subresource, removed)
    conflicts = [(e, path) for e, p in others for path in sorted(p & changed, key=_path_key)]
    if conflicts and not force:
        raise conflict_error(conflicts)
    out = [(e, p - changed - removed) for e, p in others]
    entry = next((dict(e) for e, _ in managed if _identity(e) == me),
                 _entry(rt, manager, "Apply", subresource, now))
    if changed or removed or live is None:
        entry["time"] = now
    entry["apiVersion"] = rt.api_version
    out.append((entry, applied))
    merged.setdefault("metadata", {})
    _set_managed(merged, out)
    return merged
