"""The Kubernetes protobuf wire format (``application/vnd.kubernetes.protobuf``) of the built-in kinds.

Mirrors ``k8s.io/apimachinery/pkg/runtime/serializer/protobuf`` and the ``generated.proto``
files of ``k8s.io/api``, ``k8s.io/apimachinery`` and ``k8s.io/kube-aggregator``:

- an encoded object is the 4-byte magic ``k8s\\x00`` followed by a ``runtime.Unknown``
  message (``typeMeta`` = 1 holding ``apiVersion`` and ``kind``, ``raw`` = 2 the object's own
  message, ``contentEncoding`` = 3, ``contentType`` = 4; ``protobuf.go``'s
  ``protoEncodingPrefix`` and ``runtime/generated.proto``);
- the object's message carries no ``apiVersion``/``kind`` (the envelope does); its fields
  have the numbers and types of the kind's message in ``generated.proto``;
- a watch stream (``;stream=watch``) is a sequence of frames, each a 4-byte big-endian length
  and a ``meta.v1.WatchEvent`` encoded *without* the envelope (the ``RawSerializer`` and
  ``LengthDelimitedFramer`` of ``codec_factory.go``), whose ``object.raw`` holds the object
  encoded *with* it.

The messages are built from field tables derived from upstream
(:mod:`k8sbook.api.protobuf_descriptors`); the ``protobuf`` library does the encoding.

JSON and protobuf differ where Go's types do, and this module converts as Go would on each
side: embedded (``json:",inline"``) structs such as a Volume's ``volumeSource`` are a field
on the wire and flat in JSON; ``meta.v1.Time``/``MicroTime`` are seconds and nanos on the wire
and RFC 3339 strings in JSON; ``Duration`` a Go duration string; ``resource.Quantity`` and
``intstr.IntOrString`` their string or number; ``RawExtension`` and ``FieldsV1`` raw JSON;
named slices (``ExtraValue``) a list; ``bytes`` base64. Decoding keeps what Go's JSON encoder
would print after decoding: a field on the wire is omitted when it is ``omitempty``, not a
pointer, and zero. Two differences are deliberate: empty lists and maps, and zero times, are
left out (Go prints ``null``).
"""

from __future__ import annotations

import base64
import json
import re
import struct
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError, Message

from k8sbook.api.protobuf_descriptors import (
    META,
    RUNTIME,
    SCALAR_TYPES,
    Field,
    fields,
    is_named_slice,
    message_class,
    message_name,
    supports,
)

__all__ = ["CONTENT_TYPE", "MAGIC", "WATCH_CONTENT_TYPE", "Field", "ProtobufError", "decode",
           "encode", "format_duration", "from_json", "message_class", "message_name",
           "parse_duration", "read_watch_frames", "supports", "to_json", "watch_frame"]

#: ``runtime.ContentTypeProtobuf``
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
#: the media type of a protobuf watch stream
WATCH_CONTENT_TYPE = CONTENT_TYPE + ";stream=watch"
#: ``protoEncodingPrefix``: "k8s" and the encoding style 0 (a ``runtime.Unknown`` follows)
MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """A body that is not a protobuf object of a kind this server knows; ``kind`` and
    ``version`` are the envelope's when it could be read."""

    def __init__(self, message: str, kind: str = "", version: str = "") -> None:
        super().__init__(message)
        self.kind, self.version = kind, version


# -- JSON <-> message ---------------------------------------------------------------------
_DURATION_UNITS = (("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9), ("ms", 10**6),
                   ("us", 10**3), ("µs", 10**3), ("ns", 1))


def format_duration(ns: int) -> str:
    """Go's ``time.Duration.String``: ``1h2m3s``, ``1.5s``, ``500ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size:
                return sign + _trim(ns / size) + unit
    h, rest = divmod(ns, 3600 * 10**9)
    m, rest = divmod(rest, 60 * 10**9)
    s = _trim(rest / 10**9)
    return sign + (f"{h}h{m}m" if h else f"{m}m" if m else "") + s + "s"


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration``, in nanoseconds."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return 0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)", body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise ProtobufError(f'time: invalid duration "{text}"')
    units = dict(_DURATION_UNITS)
    return sign * round(sum(float(n) * units[u] for n, u in parts))


def _time_to_json(seconds: int, nanos: int, micro: bool) -> str | None:
    if seconds == 0 and nanos == 0:
        return None
    t = datetime.fromtimestamp(seconds, UTC)
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_from_json(text: str) -> tuple[int, int]:
    try:
        t = datetime.fromisoformat(text)
    except ValueError as err:
        raise ProtobufError(f"parsing time {text!r}: {err}") from None
    return int(t.timestamp() // 1), t.microsecond * 1000


def _raw_to_json(raw: bytes) -> Any:
    if raw.startswith(MAGIC):
        return decode(raw)
    return json.loads(raw) if raw else None


def to_json(msg: Message, full_name: str) -> Any:
    """The JSON form of a decoded message, as Go's JSON encoder prints the decoded struct."""
    special = _SPECIAL_TO_JSON.get(full_name)
    if special is not None:
        return special(msg)
    if is_named_slice(full_name):
        return list(msg.items)
    out: dict[str, Any] = {}
    for f in fields(full_name):
        value = getattr(msg, f.name)
        if f.label == "map":
            vtype = f.type.split(",", 1)[1]
            if len(value):
                out[f.json] = {k: _value_to_json(value[k], vtype) for k in sorted(value)}
            continue
        if f.label == "repeated":
            if len(value):
                out[f.json] = [_value_to_json(v, f.type) for v in value]
            continue
        if not msg.HasField(f.name):
            continue
        converted = _value_to_json(value, f.type)
        if f.inline and isinstance(converted, dict):
            out.update(converted)
        elif converted is None or (f.omitempty and not f.pointer and
                                   converted in ("", 0, False)
                                   and not isinstance(converted, dict)):
            continue
        else:
            out[f.json] = converted
    return out


def _value_to_json(value: Any, typ: str) -> Any:
    if typ == "bytes":
        return base64.b64encode(value).decode()
    if typ in SCALAR_TYPES:
        return value
    return to_json(value, typ)


def from_json(obj: Any, msg: Message, full_name: str) -> None:
    """Fill ``msg`` from the JSON form ``obj`` (fields the message does not have are dropped,
    as Go's decoder drops them)."""
    special = _SPECIAL_FROM_JSON.get(full_name)
    if special is not None:
        special(obj, msg)
        return
    if is_named_slice(full_name):
        msg.items.extend(str(v) for v in obj or ())
        return
    if not isinstance(obj, dict):
        raise ProtobufError(f"{full_name.rpartition('.')[2]}: expected an object, got {obj!r}")
    for f in fields(full_name):
        if f.inline:
            sub = getattr(msg, f.name)
            sub.SetInParent()
            from_json(obj, sub, f.type)
            continue
        value = obj.get(f.json)
        if value is None:
            continue
        target = getattr(msg, f.name)
        if f.label == "map":
            vtype = f.type.split(",", 1)[1]
            for k, v in value.items():
                if vtype in SCALAR_TYPES:
                    target[k] = _scalar(v, vtype)
                else:
                    from_json(v, target[k], vtype)
        elif f.label == "repeated":
            for v in value:
                if f.type in SCALAR_TYPES:
                    target.append(_scalar(v, f.type))
                else:
                    from_json(v, target.add(), f.type)
        elif f.type in SCALAR_TYPES:
            setattr(msg, f.name, _scalar(value, f.type))
        else:
            target.SetInParent()
            from_json(value, target, f.type)


def _scalar(value: Any, typ: str) -> Any:
    if typ == "bytes":
        return base64.b64decode(value) if isinstance(value, str) else bytes(value)
    if typ == "string":
        return str(value)
    if typ == "bool":
        return bool(value)
    if typ in ("double", "float"):
        return float(value)
    return int(value)


def _from_time(obj: Any, msg: Message) -> None:
    msg.seconds, msg.nanos = _time_from_json(str(obj))


def _from_intstr(obj: Any, msg: Message) -> None:
    if isinstance(obj, int) and not isinstance(obj, bool):
        msg.type, msg.intVal = 0, obj
    else:
        msg.type, msg.strVal = 1, str(obj)


def _from_raw(obj: Any, msg: Message) -> None:
    msg.raw = json.dumps(obj, separators=(",", ":")).encode()


_SPECIAL_TO_JSON: dict[str, Any] = {
    f"{META}.Time": lambda m: _time_to_json(m.seconds, m.nanos, False),
    f"{META}.MicroTime": lambda m: _time_to_json(m.seconds, m.nanos, True),
    f"{META}.Duration": lambda m: format_duration(m.duration),
    f"{META}.FieldsV1": lambda m: json.loads(m.Raw) if m.Raw else {},
    "k8s.io.apimachinery.pkg.api.resource.Quantity": lambda m: m.string,
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        lambda m: m.strVal if m.type == 1 else m.intVal,
    f"{RUNTIME}.RawExtension": lambda m: _raw_to_json(m.raw),
}
_SPECIAL_FROM_JSON: dict[str, Any] = {
    f"{META}.Time": _from_time,
    f"{META}.MicroTime": _from_time,
    f"{META}.Duration": lambda o, m: setattr(m, "duration", parse_duration(str(o))),
    f"{META}.FieldsV1": lambda o, m: setattr(m, "Raw", json.dumps(o, separators=(",", ":"))
                                             .encode()),
    "k8s.io.apimachinery.pkg.api.resource.Quantity": lambda o, m: setattr(m, "string", str(o)),
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": _from_intstr,
    f"{RUNTIME}.RawExtension": _from_raw,
}


# -- the envelope -------------------------------------------------------------------------
def encode(obj: dict[str, Any]) -> bytes:
    """``k8s\\x00`` + ``runtime.Unknown`` for an object with ``apiVersion`` and ``kind``."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    name = message_name(api_version, kind)
    if name is None:
        raise ProtobufError(f"object {api_version}/{kind} has no protobuf form")
    msg = message_class(name)()
    from_json(obj, msg, name)
    unknown = message_class(f"{RUNTIME}.Unknown")()
    unknown.typeMeta.apiVersion = api_version
    unknown.typeMeta.kind = kind
    unknown.raw = msg.SerializeToString(deterministic=True)
    unknown.contentEncoding = ""
    unknown.contentType = ""
    return MAGIC + unknown.SerializeToString(deterministic=True)


def decode(data: bytes) -> dict[str, Any]:
    """The JSON form of an enveloped object (``apiVersion`` and ``kind`` from the envelope)."""
    if not data.startswith(MAGIC):
        raise ProtobufError("provided data does not appear to be a protobuf message, expected "
                            "prefix [107 56 115 0]")
    unknown = message_class(f"{RUNTIME}.Unknown")()
    try:
        unknown.ParseFromString(data[len(MAGIC):])
    except DecodeError as err:
        raise ProtobufError(str(err)) from None
    api_version = unknown.typeMeta.apiVersion
    kind = unknown.typeMeta.kind
    name = message_name(api_version, kind)
    version = api_version.rpartition("/")[2]
    if name is None:  # the scheme's error (``runtime.NewNotRegisteredErrForKind``)
        raise ProtobufError(f'no kind "{kind}" is registered for version "{api_version}" in '
                            'scheme "pkg/api/legacyscheme/scheme.go:30"', kind, version)
    msg = message_class(name)()
    try:
        msg.ParseFromString(unknown.raw)
    except DecodeError as err:
        raise ProtobufError(str(err), kind, version) from None
    out = to_json(msg, name)
    return {"kind": kind, "apiVersion": api_version, **out}


def watch_frame(event: dict[str, Any]) -> bytes:
    """One frame of a protobuf watch stream: the length, then the raw ``WatchEvent``."""
    msg = message_class(f"{META}.WatchEvent")()
    msg.type = event["type"]
    msg.object.raw = encode(event["object"])
    data = msg.SerializeToString(deterministic=True)
    return struct.pack(">I", len(data)) + data


def read_watch_frames(data: bytes) -> list[dict[str, Any]]:
    """The events of a protobuf watch stream (for clients and tests)."""
    events = []
    while data:
        (size,), data = struct.unpack(">I", data[:4]), data[4:]
        msg = message_class(f"{META}.WatchEvent")()
        msg.ParseFromString(data[:size])
        data = data[size:]
        events.append({"type": msg.type,
                       "object": decode(msg.object.raw)})
    return events
