"""The size of a message on the wire, as the trace's ``counts`` level counts its bytes.

Mirrors what the serializers would write: compact JSON, as Go's ``encoding/json`` writes it
(``k8s.io/apimachinery/pkg/runtime/serializer/json``, what kube-apiserver answers JSON with),
and for etcd's gRPC messages an estimate of their protobuf size (``proto.Size`` of the
``etcdserverpb`` messages: their keys' and values' bytes, a few bytes per number). An
:class:`Encoded` object (a watch event the watch cache encoded once for all its watchers)
carries the size of the text it was decoded from. :mod:`k8sbook.core.trace` re-exports all
three names; the fabric (:mod:`k8sbook.client.network`) is what measures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from json import encoder as json_encoder
from operator import attrgetter
from typing import Any

__all__ = ["Encoded", "proto_bytes", "wire_bytes"]


class Encoded(dict[str, Any]):
    """A JSON object decoded from text whose size on the wire is already known (a watch
    event the watch cache encoded once for all its watchers): :func:`wire_bytes` reads
    ``wire_size`` instead of encoding it again."""

    __slots__ = ("wire_size",)

    def __init__(self, value: dict[str, Any], wire_size: int) -> None:
        super().__init__(value)
        self.wire_size = wire_size


def _compact_encoder() -> Callable[[Any], int]:
    """The length of ``json.dumps(value, separators=(",", ":"))``, from one C encoder made
    once (``json.dumps`` builds a new encoder for every call with non-default separators).
    ``ensure_ascii`` holds, so the text is ASCII and its length is its size in bytes. No
    check for reference cycles (API bodies are trees). A value that is not JSON raises
    ``TypeError``, as ``json.dumps`` does."""
    encoder = json.JSONEncoder(separators=(",", ":"))
    make = getattr(json_encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (CPython and Pyodide have it): the same text
        return lambda value: len(encoder.encode(value))
    # the arguments JSONEncoder.iterencode passes, but no dict of markers (cycle check)
    iterencode = make(None, encoder.default, json_encoder.encode_basestring_ascii, None,
                      encoder.key_separator, encoder.item_separator, False, False, True)
    join = "".join
    return lambda value: len(join(iterencode(value, 0)))


_json_size = _compact_encoder()


# How a payload is measured (its exact type, a subclass of dict or list, being callable, being
# a dataclass and which fields it has) depends only on its type: the rules are applied once per
# type, to its first value, and give a strategy that every later value of that type goes
# straight to. The numbers are exactly those of the rules as the docstrings state them, which
# ``tests/core/test_wire.py`` keeps as a plain recursive walk and compares with these on every
# payload of a cluster's run.

def wire_bytes(payload: Any) -> int:
    """The size of a payload on the wire: a dict or list (an API body) as compact JSON; an
    object with a ``body`` (a request, a response) by its body; a tuple by its parts; text by
    its UTF-8 length; a dataclass (an etcd gRPC message, protobuf on the wire) by
    :func:`proto_bytes`; anything else (a callable, a message the model keeps as an object) 0.
    An :class:`Encoded` object counts the size of the text it was decoded from.

    In that order: ``None`` and a callable count 0 before anything else, and a list that is
    not JSON (a list of gRPC messages: etcd ops, events) counts its :func:`proto_bytes`."""
    measure = _WIRE.get(type(payload))
    if measure is None:
        measure = _wire_strategy(payload)
    return measure(payload)


def _wire_strategy(payload: Any) -> Callable[[Any], int]:
    """How :func:`wire_bytes` measures ``payload`` and every value of its type: the checks
    below are the rules in their order, and each depends only on the type (``callable``,
    ``isinstance``, ``is_dataclass`` of an instance), so they are made once per type."""
    measure: Callable[[Any], int]
    if payload is None or callable(payload):
        measure = _zero
    elif type(payload) is Encoded:
        measure = _encoded_size
    elif type(payload) is list:
        measure = _list_size
    elif isinstance(payload, (dict, list)):
        measure = _json_or_proto
    elif isinstance(payload, (bytes, bytearray)):
        measure = len
    elif isinstance(payload, str):
        measure = _text_size
    elif isinstance(payload, tuple):
        measure = _tuple_size
    elif is_dataclass(payload):
        measure = proto_bytes
    else:
        measure = _body_size
    _WIRE[type(payload)] = measure
    return measure


_WIRE: dict[type, Callable[[Any], int]] = {}


def _zero(_: Any) -> int:
    return 0


def _encoded_size(value: Encoded) -> int:
    return value.wire_size


def _text_size(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode())


def _json_or_proto(value: dict[str, Any] | list[Any]) -> int:
    if not value:  # "{}" or "[]"
        return 2
    try:
        return _json_size(value)
    except TypeError:  # a list of gRPC messages (etcd ops, events)
        return proto_bytes(value)


def _list_size(value: list[Any]) -> int:
    # a list whose first item is a gRPC message is not JSON (json.dumps raises at that item),
    # so it goes to the fallback at once: the same number, without raising and catching
    if value:
        kind = type(value[0])
        message = _MESSAGE_TYPES.get(kind)
        if message is None:  # a dataclass that is none of the types JSON can write
            message = _MESSAGE_TYPES[kind] = is_dataclass(kind) and not issubclass(
                kind, (dict, list, tuple, str, int, float))
        if message:
            return proto_bytes(value)
    return _json_or_proto(value)


_MESSAGE_TYPES: dict[type, bool] = {}


def _tuple_size(value: tuple[Any, ...]) -> int:
    total = 0
    for part in value:
        total += wire_bytes(part)
    return total


def _body_size(payload: Any) -> int:
    body = getattr(payload, "body", None)
    return wire_bytes(body) if body is not None else 0


def proto_bytes(value: Any) -> int:
    """An estimate of a protobuf message's size: its strings' and bytes' lengths, 8 per
    number, summed through nested messages and lists (close for etcd's messages, whose size
    is their keys and values).

    Precisely: text its UTF-8 length, a list or tuple the sum of its items, a bool 1, an int
    or float 8, bytes their length, a dict (JSON inside a message) its :func:`wire_bytes`, a
    dataclass the sum of its fields; anything else (``None``, another object) 0."""
    measure = _PROTO.get(type(value))
    if measure is None:
        measure = _proto_strategy(value)
    return measure(value)


def _proto_strategy(value: Any) -> Callable[[Any], int]:
    """How :func:`proto_bytes` measures ``value`` and every value of its type (the rules in
    their order; each depends only on the type)."""
    measure: Callable[[Any], int]
    if isinstance(value, str):
        measure = _text_size
    elif isinstance(value, (list, tuple)):
        measure = _items_size
    elif isinstance(value, bool):
        measure = _one
    elif isinstance(value, (int, float)):
        measure = _eight
    elif isinstance(value, (bytes, bytearray)):
        measure = len
    elif isinstance(value, dict):
        measure = wire_bytes
    elif is_dataclass(value):
        measure = _fields_size(tuple(f.name for f in fields(value)))
    else:
        measure = _zero
    _PROTO[type(value)] = measure
    return measure


_PROTO: dict[type, Callable[[Any], int]] = {}


def _one(_: Any) -> int:
    return 1


def _eight(_: Any) -> int:
    return 8


def _items_size(value: list[Any] | tuple[Any, ...]) -> int:
    total = 0
    for v in value:
        total += proto_bytes(v)
    return total


def _fields_size(names: tuple[str, ...]) -> Callable[[Any], int]:
    """The sum of a message's fields ``names``: the common field types (text, numbers,
    ``None``, bools) measured in line, exactly as :func:`proto_bytes` measures them, the
    others through it."""
    if not names:
        return _zero
    get = attrgetter(*names)
    single = len(names) == 1

    def measure(value: Any) -> int:
        total = 0
        for v in (get(value),) if single else get(value):
            k = type(v)
            if k is str:
                total += len(v) if v.isascii() else len(v.encode())
            elif k is int or k is float:
                total += 8
            elif v is None:
                pass
            elif k is bool:
                total += 1
            else:
                total += proto_bytes(v)
        return total
    return measure
