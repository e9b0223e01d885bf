"""Decoding a request body into an API object, and refusing what does not decode.

Mirrors what the REST handlers of ``k8s.io/apiserver/pkg/endpoints/handlers`` do with a body
before any registry code sees it:

* the JSON text itself (``runtime/serializer/json`` and Go's ``encoding/json`` scanner):
  ``NaN``/``Infinity`` are not JSON (``invalid character 'N' looking for beginning of
  value``); nesting is limited (``encoding/json``'s ``maxNestingDepth`` and
  ``apimachinery/pkg/util/json``'s ``maxDepth = 10000``: ``exceeded max depth``); a number
  too large for its Go type fails to decode. These are 400 BadRequest with the message
  ``couldn't get version/kind; json parse error: ...`` (``Interpret`` in
  ``serializer/json/meta.go``), :func:`parse_json`;
* the typed decode into the kind's Go struct (``sigs.k8s.io/json``, a fork of
  ``encoding/json``): a field of the wrong JSON type is an ``UnmarshalTypeError``,
  ``json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name of type
  string``, which ``transformDecodeError`` (``handlers/rest.go``) turns into 400
  ``Pod in version "v1" cannot be handled as a Pod: <error>`` on create and update; a
  patch whose result does not decode is 422 Invalid on the field ``patch``
  (``handlers/patch.go``, ``applyPatch``: ``field.Invalid(field.NewPath("patch"),
  string(patchedObjJS), err.Error())``), :func:`type_error`.

The types come from the kind's OpenAPI schema (:mod:`k8sbook.api.fieldvalidation`), so every
field the schema knows is checked, not only those the model validates. Simplified, said out
loud: Python's own parser and the model's recursive code cannot follow 10000 levels, so the
model's limit is :data:`MAX_DEPTH` (no built-in kind nests more than ~20 levels); the Go type
names in messages are derived from the schema's definition names (``v1.Container``); a map's
keys and a list's indices are not in the field path, as in Go's error.

Every write pays for these walks, so they are made cheap without changing a result: the type
check reads each schema once into a node (its ``$ref`` followed, its types, its children),
the JSON check recurses over containers only, copies go through :mod:`marshal`
(``tests/api/test_decoding.py`` compares each with the plain walk it replaces). This module
is over 400 lines: it is one decoder, body to checked object, as upstream's handlers call it.
"""

from __future__ import annotations

import copy
import json
import marshal
import math
from typing import Any

from k8sbook.api import fieldvalidation
from k8sbook.core.status import StatusError, bad_request, invalid

#: upstream's limit (``apimachinery/pkg/util/json``: ``const maxDepth = 10000``)
UPSTREAM_MAX_DEPTH = 10000
#: the model's: what Python's recursion allows with room to spare
MAX_DEPTH = 200
PARSE_ERROR = "couldn't get version/kind; json parse error: "
#: Go's range of the integer formats the schemas use
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _constant(name: str) -> Any:
    # what Go's scanner says at the first character of NaN / Infinity / -Infinity
    if name.startswith("-"):
        raise ValueError("invalid character 'I' in numeric literal")
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _integer(text: str) -> Any:
    if len(text.lstrip("-")) > 19:  # beyond int64: Go keeps the literal for its error
        return BigNumber(text)
    return int(text)


def _float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else BigNumber(text)  # 1e999: out of float64 range


class BigNumber(str):
    """A JSON integer literal too large for any Go integer type (kept as its text)."""


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or the 400 the apiserver's decoder answers."""
    try:
        value = json.loads(raw, parse_constant=_constant, parse_int=_integer,
                           parse_float=_float)
    except RecursionError as err:
        raise bad_request(PARSE_ERROR + "exceeded max depth") from err
    except json.JSONDecodeError as err:
        raise bad_request(PARSE_ERROR + str(err)) from err
    except (UnicodeDecodeError, ValueError) as err:
        raise bad_request(PARSE_ERROR + str(err)) from err
    check_value(value, numbers=False)
    return value


def check_value(value: Any, *, numbers: bool = True) -> bool:
    """Refuse what is not JSON (NaN, non-string keys, other Python types) or nests beyond
    :data:`MAX_DEPTH`, without deep recursion (a body from an in-process client); with
    ``numbers``, also a number no Go type holds (after :func:`type_error` has named the
    field, if the schema knows it). Returns whether the value holds such a number (so a
    caller that has checked once need not walk again to learn there is none)."""
    return _check(value, 1, numbers)


#: how deep :func:`_check` recurses before it hands a subtree to the loop of
#: :func:`_check_stack` (the same checks in the same order, on an explicit stack)
_RECURSE = 48


def _check(item: Any, depth: int, numbers: bool) -> bool:
    # The stack walk of _check_stack pops a node, checks it (a dict's keys all at once),
    # then pushes its children in order, so it visits them last first: this is the same
    # visit, recursing over the children in reverse, so the first error found is the same.
    # A child that is a str, int, bool or None is skipped: no check can fail on it at a
    # depth within MAX_DEPTH (_RECURSE is below it).
    if depth > _RECURSE:
        return _check_stack(item, depth, numbers)
    big = False
    kind = type(item)
    if kind is dict:
        for k in item:
            if type(k) is not str and not isinstance(k, str):
                raise bad_request(PARSE_ERROR + f"json: unsupported type: key {k!r}")
        children: Any = reversed(item.values())
    elif kind is list:
        children = reversed(item)
    else:
        return _check_stack(item, depth, numbers)
    for v in children:
        kind = type(v)
        if kind is str or kind is int or kind is bool or v is None:
            continue
        if _check(v, depth + 1, numbers):
            big = True
    return big


def _check_stack(value: Any, depth: int, numbers: bool) -> bool:
    big = False
    stack: list[tuple[Any, int]] = [(value, depth)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise bad_request(PARSE_ERROR + "exceeded max depth")
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise bad_request(PARSE_ERROR + f"json: unsupported type: key {k!r}")
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, BigNumber):
            big = True
            if numbers:
                raise bad_request(PARSE_ERROR + f"json: cannot unmarshal number {item} into "
                                  "Go value of type float64")
        elif isinstance(item, float) and not math.isfinite(item):
            raise bad_request(PARSE_ERROR + f"json: unsupported value: {item}")
        elif item is not None and not isinstance(item, str | int | float | bool):
            raise bad_request(PARSE_ERROR + f"json: unsupported type: {type(item).__name__}")
    return big


def copy_json(value: Any) -> Any:
    """A deep copy of a value made only of JSON types (dicts with string keys, lists,
    strings, numbers, booleans, ``None``: what etcd's values and a checked body decode to),
    the result of a JSON encode and decode. Not for a value holding a :class:`BigNumber` (it
    would come back a plain string).

    Made with :mod:`marshal` (C, about twice as fast), format version 2, which writes no
    references, so the copy shares no object with the value or within itself, as a decoded
    JSON text. For a value of exactly those types the two give equal values of the same types;
    marshal refuses any other type, a subclass included (``ValueError``), and then the JSON
    round trip makes the copy, as before."""
    try:
        return marshal.loads(marshal.dumps(value, 2))
    except ValueError:
        return json.loads(json.dumps(value))


def copy_value(value: Any) -> Any:
    """``copy.deepcopy`` of a value decoded from JSON, faster: a string, number, boolean or
    ``None`` is its own copy (as deepcopy returns it); containers of exactly those types go
    through :mod:`marshal` (format 2: equal values of the same types, nothing shared with the
    value); anything marshal refuses (a :class:`BigNumber`, a subclass) through deepcopy. The
    one difference from deepcopy, said out loud: an object that appears twice inside the value
    comes back as two copies, as a JSON decode would give it (deepcopy keeps one)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    try:
        return marshal.loads(marshal.dumps(value, 2))
    except ValueError:
        return copy.deepcopy(value)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, BigNumber):
        return f"number {value}"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _types(schema: dict[str, Any]) -> set[str]:
    t = schema.get("type")
    if t is None and "oneOf" in schema:
        return set().union(*(_types(s) for s in schema["oneOf"]))
    if t is None:
        return set()
    return {t} if isinstance(t, str) else set(t)


def _go_type(schema: dict[str, Any]) -> str:
    name, resolved = fieldvalidation.resolve(schema)
    if name:
        parts = name.split(".")
        return f"{parts[-2]}.{parts[-1]}"
    types = _types(resolved) - {"null"}
    if "array" in types:
        return "[]" + _go_type(resolved.get("items") or {})
    if "object" in types:
        extra = resolved.get("additionalProperties")
        return "map[string]" + (_go_type(extra) if isinstance(extra, dict) else "interface {}")
    if "integer" in types:
        return str(resolved.get("format") or "int64")
    if "number" in types:
        return "float64"
    return {"string": "string", "boolean": "bool"}.get(next(iter(types), ""), "interface {}")


def _mismatch(value: Any, schema: dict[str, Any]) -> bool:
    types = _types(schema)
    if not types or value is None:
        return False
    if isinstance(value, bool):
        return "boolean" not in types
    if isinstance(value, BigNumber):
        return True  # no Go integer holds it
    if isinstance(value, int):
        if "integer" in types:
            low, high = _INT_RANGE.get(str(schema.get("format")), _INT_RANGE["int64"])
            return not low <= value <= high
        return "number" not in types
    if isinstance(value, float):
        return "number" not in types and not ("integer" in types and value.is_integer())
    if isinstance(value, str):
        return "string" not in types
    if isinstance(value, list):
        return "array" not in types
    return "object" not in types


def _zero(schema: dict[str, Any]) -> Any:
    types = _types(fieldvalidation.resolve(schema)[1]) - {"null"}
    for t, zero in (("string", ""), ("integer", 0), ("number", 0), ("boolean", False),
                    ("object", {}), ("array", [])):
        if t in types:
            return zero
    return None


class _Node:
    """One schema as :func:`_walk` reads it, worked out once: the ``$ref`` followed, the
    struct it names, its JSON types, its children's nodes, and the Python types of a value
    that can never mismatch it (``_mismatch`` false whatever the value)."""

    __slots__ = ("extra", "extra_node", "items", "items_node", "kids", "ok", "props",
                 "resolved", "schema", "simple", "struct", "types")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        name, resolved = fieldvalidation.resolve(schema)
        self.resolved = resolved
        self.struct = name.rsplit(".", 1)[-1] if name and resolved.get("properties") is not None \
            else ""
        types = self.types = _types(resolved)
        self.props: dict[str, Any] | None = resolved.get("properties")
        extra = resolved.get("additionalProperties")
        self.extra: dict[str, Any] | None = extra if isinstance(extra, dict) else None
        items = resolved.get("items")
        self.items: dict[str, Any] | None = items if isinstance(items, dict) else None
        ok: set[type] = set()
        if not types or "string" in types:
            ok.add(str)
        if not types or "boolean" in types:
            ok.add(bool)
        if not types or "number" in types:
            ok.add(float)
            if "integer" not in types:
                ok.add(int)
        if not types or "object" in types:
            ok.add(dict)
        if not types or "array" in types:
            ok.add(list)
        self.ok = frozenset(ok)
        # nothing below to walk: after the type check, _walk does nothing with the value
        self.simple = self.props is None and self.extra is None and self.items is None
        self.kids: dict[str, _Node] = {}
        self.extra_node: _Node | None = None
        self.items_node: _Node | None = None

    def kid(self, key: str) -> _Node:
        found = self.kids.get(key)
        if found is None:
            assert self.props is not None
            found = self.kids[key] = _node(self.props[key])
        return found


_NODES: dict[int, _Node] = {}


def _node(schema: dict[str, Any]) -> _Node:
    """The :class:`_Node` of ``schema``, by identity (the schemas are the definitions' own
    dicts; the node holds its schema, so an id is not reused while it is in the table)."""
    found = _NODES.get(id(schema))
    if found is None or found.schema is not schema:
        if len(_NODES) >= 65536:
            _NODES.clear()
        found = _NODES[id(schema)] = _Node(schema)
    return found


def _walk(value: Any, node: _Node, struct: str, path: str) -> str | None:
    if node.struct:
        struct = node.struct
    schema = node.resolved
    if type(value) not in node.ok and _mismatch(value, schema):
        shown = _json_type(value)
        if shown == "number" and node.types & {"integer", "number"}:
            shown = f"number {value}"  # Go quotes the literal when the kind is numeric
        where = f"Go struct field {struct}.{path}" if path else "Go value"
        return f"json: cannot unmarshal {shown} into {where} of type {_go_type(schema)}"
    if isinstance(value, dict):
        props = node.props
        extra = node.extra
        for key, item in list(value.items()):
            if item is None and props is not None and key in props:
                del value[key]  # a null field is the Go zero value, omitted when encoded
                continue
            if item is None and extra is not None:
                value[key] = _zero(extra)  # a map's null value is its type's zero value
                continue
            if props is not None and key in props:
                kid = node.kids.get(key) or node.kid(key)
                if kid.simple and type(item) in kid.ok:
                    continue  # a leaf of its type: what the call would find (nothing)
                err = _walk(item, kid, struct, f"{path}.{key}" if path else key)
            elif extra is not None:
                kid = node.extra_node or _node(extra)
                node.extra_node = kid
                if kid.simple and type(item) in kid.ok:
                    continue
                err = _walk(item, kid, struct, path)
            else:
                continue  # unknown fields: dropped by the decoder (see fieldvalidation)
            if err:
                return err
    elif isinstance(value, list) and node.items is not None:
        items = node.items
        if None in value:
            value[:] = [_zero(items) if item is None else item for item in value]
        kid = node.items_node or _node(items)
        node.items_node = kid
        for item in value:
            if kid.simple and type(item) in kid.ok:
                continue
            err = _walk(item, kid, struct, path)
            if err:
                return err
    return None


def type_error(obj: dict[str, Any], api_version: str = "", kind: str = "") -> str | None:
    """The first ``UnmarshalTypeError`` decoding ``obj`` as ``kind`` (default: its own)
    would raise; nulls become what the Go decoder leaves (a field's zero value, omitted
    when encoded; a map value's or list item's zero value), in place."""
    kind = kind or str(obj.get("kind", ""))
    schema = fieldvalidation.kind_schema({"apiVersion": api_version or obj.get("apiVersion"),
                                          "kind": kind})
    if schema is None:
        return None
    return _walk(obj, _node(schema), kind, "")


def check_decodes(obj: dict[str, Any], kind: str, version: str, *,
                  checked: bool | None = None) -> None:
    """Create and update: 400 ``<Kind> in version "<v>" cannot be handled as a <Kind>``.
    ``checked``: what :func:`check_value` (``numbers=False``) already returned for ``obj``,
    so the value is walked once, not three times (one decode per request, as upstream)."""
    big = check_value(obj, numbers=False) if checked is None else checked
    err = type_error(obj)
    if err:
        raise bad_request(f"{kind} in version {json.dumps(version)} cannot be handled as a "
                          f"{kind}: {err}")
    if big:
        check_value(obj)


def check_patched(obj: dict[str, Any], api_version: str, kind: str) -> None:
    """Patch: the patched object must decode as the resource's kind (422 Invalid on
    ``patch``, kind and name ""); a patch that changes ``kind`` or ``apiVersion`` fails the
    same way (upstream: the conversion into the resource's type fails)."""
    big = check_value(obj, numbers=False)
    err = type_error(obj, api_version, kind)
    if obj.get("kind") != kind or obj.get("apiVersion") != api_version:
        err = (f"the patched object's kind and apiVersion ({obj.get('kind')!r}, "
               f"{obj.get('apiVersion')!r}) are not the resource's ({kind!r}, {api_version!r})")
    if err:
        text = json.dumps(obj, separators=(",", ":"))
        raise invalid("", "", "", [{"reason": "FieldValueInvalid", "field": "patch",
                                    "message": f"Invalid value: {json.dumps(text)}: {err}"}])
    if big:
        check_value(obj)


def query_bool(value: str) -> bool:
    """A boolean query parameter as ``runtime.Convert_Slice_string_To_bool``
    (``apimachinery/pkg/runtime/conversion.go``) reads it for ``ListOptions`` (``watch``,
    ``allowWatchBookmarks``) and ``PodLogOptions``: only ``0`` and ``false`` (any case) are
    false; anything else, ``yes`` and the empty string included, is true. (Not
    ``strconv.ParseBool``: no value is an error.)"""
    return not (value == "0" or value.lower() == "false")


__all__ = ["MAX_DEPTH", "UPSTREAM_MAX_DEPTH", "BigNumber", "StatusError", "check_decodes",
           "check_patched", "check_value", "copy_json", "copy_value", "parse_json", "query_bool", "type_error"]
