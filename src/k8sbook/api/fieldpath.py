"""Field sets, comparison and merging by schema: the structured-merge-diff the apiserver uses.

Mirrors ``sigs.k8s.io/structured-merge-diff/v6`` (v6.3.0: ``fieldpath``, ``typed``
``ToFieldSet``/``Compare``/``Merge``) over the official OpenAPI schemas
(:mod:`k8sbook.api.fieldvalidation` reads them from ``kubernetes-validate``), whose extensions
say how each field merges:

- a struct (``properties``) or a map (``additionalProperties``) is *granular*: each field is
  its own path element ``f:<name>``; ``x-kubernetes-map-type: atomic`` (a ``LabelSelector``,
  for example) makes the whole value one leaf;
- a list is *atomic* unless ``x-kubernetes-list-type`` says ``map`` (items identified by the
  fields ``x-kubernetes-list-map-keys`` names: ``k:{"name":"nginx"}``, with the key fields in
  name order as compact JSON) or ``set`` (scalar items identified by value: ``v:"a"``);
- a path is a tuple of those elements; a set of paths serialises as ``FieldsV1``: nested JSON
  objects, ``{}`` for a member with no members below it and ``".": {}`` for a member that has
  some (``fieldpath.Set.ToJSON``), children in path-element order.

``compare`` follows ``typed.Compare``: a leaf whose value changed is *modified*, a path present
on one side only is *added* or *removed*, maps and lists that are empty on both sides are
leaves. One difference, said out loud: when the old side is the empty object of a create,
upstream compares with the Go zero value of the type, in which non-pointer structs (a
Deployment's ``spec.template``) already exist; the model has no Go types, so on create it treats
every struct as existing and only maps, list items and leaves as added (a pointer struct such as
``rollingUpdate`` then gets no ``"."`` member of its own).

Every write records its fields, so the walks are made cheap without changing a result: each
schema is read once into a node (form and children), ``compare`` adds to shared sets and walks
a create's fields knowing the old side is absent, ``FieldsV1`` conversions are remembered by
field set and by text (``tests/api/test_fieldpath.py`` compares ``compare`` with the plain
walk). This module is over 400 lines: it is structured-merge-diff's set, compare and merge
over one schema walk, as upstream's ``typed`` package is.
"""

from __future__ import annotations

import copy
import functools
import json
import marshal
from typing import Any

from k8sbook.api import fieldvalidation

Path = tuple[str, ...]
Schema = dict[str, Any]


@functools.cache
def _schema_of(name: str) -> Schema:
    return fieldvalidation.resolve({"$ref": f"#/$defs/{name}"})[1]


def resolve(schema: Schema | None) -> Schema:
    """``schema`` with its ``$ref`` followed (``{}``, a leaf, when there is none)."""
    if not schema:
        return {}
    ref = schema.get("$ref")
    return _schema_of(ref.rsplit("/", 1)[-1]) if ref else schema


def kind_schema(api_version: str, kind: str) -> Schema:
    return fieldvalidation.kind_schema({"apiVersion": api_version, "kind": kind}) or {}


def _form(schema: Schema) -> str:
    """``struct``, ``map``, ``list`` or ``leaf``."""
    if schema.get("x-kubernetes-map-type") == "atomic":
        return "leaf"
    if "properties" in schema:
        return "struct"
    if isinstance(schema.get("additionalProperties"), dict):
        return "map"
    if "items" in schema and schema.get("x-kubernetes-list-type") in ("map", "set"):
        return "list"
    return "leaf"


def _child(schema: Schema, key: str) -> Schema:
    if "properties" in schema:
        return resolve(schema["properties"].get(key))
    extra = schema.get("additionalProperties")
    return resolve(extra) if isinstance(extra, dict) else {}


class _Node:
    """What the walks need to know of one schema, worked out once: its form, and its
    children's schemas (``_form``/``_child``/``resolve`` of the same schema, remembered)."""

    __slots__ = ("form", "items", "kids", "schema")

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.form = _form(schema)
        self.items = resolve(schema.get("items"))
        self.kids: dict[str, _Node] = {}  # by property name (a struct's, or "" for a map)

    def child(self, key: str) -> _Node:
        """``_node(_child(self.schema, key))``."""
        schema = self.schema
        if "properties" not in schema:
            kid = self.kids.get("")
            if kid is None:  # looked up on first use: a schema may be its own child
                kid = self.kids[""] = _node(_child(schema, key))
            return kid
        kid = self.kids.get(key)
        if kid is None:
            if key not in schema["properties"]:
                return _LEAF
            kid = self.kids[key] = _node(_child(schema, key))
        return kid


_NODES: dict[int, _Node] = {}


def _node(schema: Schema) -> _Node:
    """The :class:`_Node` of ``schema`` (by identity: the schemas are the definitions'
    own dicts, which live as long as the process; the node holds its schema, so an id
    is never reused while it is in the table)."""
    if not schema:
        return _LEAF
    found = _NODES.get(id(schema))
    if found is None or found.schema is not schema:
        if len(_NODES) >= 65536:
            _NODES.clear()
        found = _NODES[id(schema)] = _Node(schema)
    return found


_LEAF = _Node({})


#: what ``json.dumps(value, separators=(",", ":"), sort_keys=True)`` builds for each call,
#: built once: the same text
_SORTED = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


#: key fields with a ``+default`` in the Go types (``k8s.io/api/core/v1/types.go``:
#: ``ContainerPort.Protocol`` and ``ServicePort.Protocol``, ``+default="TCP"``), which
#: structured-merge-diff fills in for an item that omits them (``getAssociativeKeyDefault``);
#: the schemas kubernetes-validate ships leave the OpenAPI ``default`` out
KEY_DEFAULTS: dict[str, dict[str, Any]] = {
    "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
}


def item_element(schema: Schema, item: Any, index: int) -> str:
    """The path element of one item of an associative list (``k:``, ``v:``, else ``i:``)."""
    if schema.get("x-kubernetes-list-type") == "map" and isinstance(item, dict):
        keys = sorted(schema.get("x-kubernetes-list-map-keys") or [])
        ref = str((schema.get("items") or {}).get("$ref", "")).rsplit("/", 1)[-1]
        defaults = KEY_DEFAULTS.get(ref, {})
        return "k:" + _SORTED.encode({k: item[k] if k in item else defaults[k] for k in keys
                                      if k in item or k in defaults})
    if schema.get("x-kubernetes-list-type") == "set":
        return "v:" + _SORTED.encode(item)
    return f"i:{index}"


def _items(schema: Schema, value: Any) -> dict[str, Any]:
    if not isinstance(value, list):
        return {}
    return {item_element(schema, item, i): item for i, item in enumerate(value)}


def to_field_set(value: Any, schema: Schema, path: Path = ()) -> set[Path]:
    """``TypedValue.ToFieldSet``: the leaves of ``value``, and the items of associative lists."""
    out: set[Path] = set()
    form = _form(schema)
    if form in ("struct", "map") and isinstance(value, dict) and value:
        for key, item in value.items():
            out |= to_field_set(item, _child(schema, key), (*path, f"f:{key}"))
    elif form == "list" and isinstance(value, list) and value:
        element = resolve(schema.get("items"))
        for pe, item in _items(schema, value).items():
            out.add((*path, pe))
            if not pe.startswith("v:"):
                out |= to_field_set(item, element, (*path, pe))
    elif path:
        out.add(path)
    return out


def undeclared(value: Any, schema: Schema, path: Path = ()) -> list[Path]:
    """The fields of ``value`` its schema does not declare (``ObjectToTyped``'s ``field not
    declared in schema``), in field-name order."""
    out: list[Path] = []
    form = _form(schema)
    if isinstance(value, dict) and "properties" in schema and form != "leaf":
        for key in sorted(value):
            if key in schema["properties"]:
                out += undeclared(value[key], _child(schema, key), (*path, f"f:{key}"))
            elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                out.append((*path, f"f:{key}"))
    elif isinstance(value, dict) and form == "map":
        for key in sorted(value):
            out += undeclared(value[key], _child(schema, key), (*path, f"f:{key}"))
    elif isinstance(value, list) and form == "list":
        element = resolve(schema.get("items"))
        for pe, item in _items(schema, value).items():
            out += undeclared(item, element, (*path, pe))
    return out


def compare(old: Any, new: Any, schema: Schema, path: Path = (), *, creating: bool = False
            ) -> tuple[set[Path], set[Path], set[Path]]:
    """``typed.Compare``: the (added, modified, removed) paths from ``old`` to ``new``."""
    added: set[Path] = set()
    modified: set[Path] = set()
    removed: set[Path] = set()
    _compare(old, new, _node(schema), path, creating, added, modified, removed)
    return added, modified, removed


_CONTAINERS = (dict, list, type(None))


def _compare(old: Any, new: Any, node: _Node, path: Path, creating: bool,
             added: set[Path], modified: set[Path], removed: set[Path]) -> None:
    # One walk that adds to the three sets it is given, instead of three new sets per node
    # merged on the way back up: the same paths, without the copies.
    if old is None and new is not None:
        _added(new, node, path, creating, added)
        return
    if old == new and old is not None:
        return  # an unchanged subtree: nothing to walk
    form = node.form
    empty = not old and not new and isinstance(old or new or {}, dict | list)
    if form == "leaf" or empty or not isinstance(old, _CONTAINERS) \
            or not isinstance(new, _CONTAINERS):
        if new is None and old is not None:
            removed.add(path)
        elif old != new:
            modified.add(path)
        return
    if form == "list":
        schema = node.schema
        element = _node(node.items)
        left, right = _items(schema, old), _items(schema, new)
        for pe in {*left, *right}:
            if pe.startswith("v:"):  # a set item is its own leaf
                if pe not in left:
                    added.add((*path, pe))
                elif pe not in right:
                    removed.add((*path, pe))
                continue
            lv, rv = left.get(pe), right.get(pe)
            if lv is not None and lv == rv:
                continue  # unchanged (the call's first test, without the call)
            _compare(lv, rv, element, (*path, pe), creating, added, modified, removed)
    else:
        lmap = old if isinstance(old, dict) else {}
        rmap = new if isinstance(new, dict) else {}
        for k in {*lmap, *rmap}:
            lv, rv = lmap.get(k), rmap.get(k)
            if lv is not None and lv == rv:
                continue
            _compare(lv, rv, node.child(k), (*path, f"f:{k}"), creating,
                     added, modified, removed)
    if path and new is None and old is not None:
        removed.add(path)


def _added(new: Any, node: _Node, path: Path, creating: bool, added: set[Path]) -> None:
    """:func:`_compare` of ``None`` with ``new`` (not ``None``), the case of every field of a
    create: the same steps with the old side known to be absent (a child ``None`` on both
    sides adds nothing, so it is skipped)."""
    form = node.form
    if form == "leaf" or not new or not isinstance(new, dict | list):
        added.add(path)
        return
    if form == "list":
        if isinstance(new, list):
            element = _node(node.items)
            for pe, item in _items(node.schema, new).items():
                if pe.startswith("v:"):
                    added.add((*path, pe))
                elif item is not None:
                    _added(item, element, (*path, pe), creating, added)
    elif isinstance(new, dict):
        for k, item in new.items():
            if item is None:
                continue
            kid = node.child(k)
            if kid.form == "leaf" or not item or not isinstance(item, dict | list):
                added.add((*path, f"f:{k}"))  # the call's first step, without the call
            else:
                _added(item, kid, (*path, f"f:{k}"), creating, added)
    if path and not (creating and form == "struct"):
        added.add(path)


def merge(live: Any, config: Any, schema: Schema) -> Any:
    """``TypedValue.Merge``: ``config`` over ``live``; granular maps and associative lists
    merge item by item (live items first, in their order, then new ones in config order),
    anything else is replaced."""
    form = _form(schema)
    if form in ("struct", "map") and isinstance(live, dict) and isinstance(config, dict):
        out = copy.deepcopy(live)
        for key, value in config.items():
            out[key] = merge(live.get(key), value, _child(schema, key)) if key in live \
                else copy.deepcopy(value)
        return out
    if form == "list" and isinstance(live, list) and isinstance(config, list):
        element = resolve(schema.get("items"))
        mine = _items(schema, config)
        out_items = []
        seen = set()
        for i, item in enumerate(live):
            pe = item_element(schema, item, i)
            seen.add(pe)
            out_items.append(merge(item, mine[pe], element) if pe in mine else item)
        out_items += [copy.deepcopy(v) for pe, v in mine.items() if pe not in seen]
        return out_items
    return copy.deepcopy(config)


def remove(value: Any, path: Path, schema: Schema) -> Any:
    """``value`` without the field or item at ``path`` (what pruning drops)."""
    if not path or value is None:
        return value
    pe, rest = path[0], path[1:]
    if isinstance(value, dict) and pe.startswith("f:"):
        key = pe[2:]
        if key not in value:
            return value
        out = dict(value)
        if rest:
            out[key] = remove(value[key], rest, _child(schema, key))
        else:
            del out[key]
        return out
    if isinstance(value, list):
        element = resolve(schema.get("items"))
        out_list = []
        for i, item in enumerate(value):
            if item_element(schema, item, i) == pe:
                if rest:
                    out_list.append(remove(item, rest, element))
                continue
            out_list.append(item)
        return out_list
    return value


_ORDER = {".": 0, "f": 1, "k": 2, "v": 3, "i": 4}


def _order(pe: str) -> tuple[int, str]:
    return (_ORDER.get(pe.split(":", 1)[0], 5), pe)


#: ``FieldsV1`` by field set and field set by ``FieldsV1`` (both kept as :mod:`marshal`'s
#: bytes), both ways of the same conversion (most writes record a set an earlier write of the
#: same shape has already encoded: the pods of one template, a node's status). Each value is
#: exactly what the conversion would compute; a copy is handed out, so no caller shares a
#: dict with another. Bounded: cleared when full.
_ENCODED: dict[frozenset[Path], bytes] = {}
_DECODED: dict[bytes, frozenset[Path]] = {}
_MEMO_SIZE = 4096


def to_fields_v1(paths: set[Path] | frozenset[Path]) -> dict[str, Any]:
    """A set of paths as ``FieldsV1`` JSON."""
    key = frozenset(paths)
    data = _ENCODED.get(key)
    if data is None:
        data = marshal.dumps(_to_fields_v1(key), 2)
        if len(_ENCODED) >= _MEMO_SIZE:
            _ENCODED.clear()
        _ENCODED[key] = data
    out: dict[str, Any] = marshal.loads(data)  # a fresh copy, members in the same order
    return out


def _to_fields_v1(paths: frozenset[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for pe in path:
            node = node.setdefault(pe, {})
    for path in paths:
        node = tree
        for pe in path:
            node = node[pe]
        if node and "." not in node:
            node["."] = {}

    def ordered(node: dict[str, Any]) -> dict[str, Any]:
        return {k: ordered(node[k]) if node[k] else {} for k in sorted(node, key=_order)}
    return ordered(tree)


def from_fields_v1(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    """``FieldsV1`` JSON back to a set of paths."""
    if prefix or not fields:
        return _from_fields_v1(fields, prefix)
    try:  # the members, in order, as marshal's bytes (equal bytes: equal FieldsV1)
        data = marshal.dumps(fields, 2)
    except ValueError:  # not JSON-decoded types: no memo
        return _from_fields_v1(fields, ())
    found = _DECODED.get(data)
    if found is None:
        found = frozenset(_from_fields_v1(fields, ()))
        if len(_DECODED) >= _MEMO_SIZE:
            _DECODED.clear()
        _DECODED[data] = found
    return set(found)


def _from_fields_v1(fields: dict[str, Any], prefix: Path) -> set[Path]:
    out: set[Path] = set()
    for pe, sub in (fields or {}).items():
        if pe == ".":
            out.add(prefix)
            continue
        here = (*prefix, pe)
        if not sub:
            out.add(here)
        else:
            out |= _from_fields_v1(sub, here)
    return out


def path_string(path: Path) -> str:
    """``fieldpath.Path.String``: ``.spec.replicas``, ``.spec.containers[name="nginx"].image``,
    ``.spec.finalizers[="a"]``, ``[0]``."""
    out = ""
    for pe in path:
        kind, _, text = pe.partition(":")
        if kind == "f":
            out += f".{text}"
        elif kind == "k":
            keys = json.loads(text)
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(keys.items())) + "]"
        elif kind == "v":
            out += f"[={text}]"
        else:
            out += f"[{text}]"
    return out
