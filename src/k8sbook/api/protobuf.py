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

The field tables are data (``data/protobuf.json``), derived by ``scripts/protobuf_tables.py``
from ``generated.proto`` (numbers, labels, types) and the Go types at the release tag (each
field's ``json`` name, ``omitempty``/``inline`` and whether the Go field is a pointer). The
descriptors are built from them with the ``protobuf`` library, which does the encoding.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

#: ``runtime.ContentTypeProtobuf``
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
#: the media type of a protobuf watch stream
WATCH_CONTENT_TYPE = CONTENT_TYPE + ";stream=watch"
#: ``protoEncodingPrefix``: "k8s" and the encoding style 0 (a ``runtime.Unknown`` follows)
MAGIC = b"k8s\x00"

META = "k8s.io.apimachinery.pkg.apis.meta.v1"
RUNTIME = "k8s.io.apimachinery.pkg.runtime"
#: API group -> the proto package of its v1 types (``k8s.io/api/<dir>/v1``)
GROUP_PACKAGES = {
    "": "core", "apps": "apps", "batch": "batch", "autoscaling": "autoscaling",
    "coordination.k8s.io": "coordination", "discovery.k8s.io": "discovery",
    "events.k8s.io": "events", "networking.k8s.io": "networking",
    "admissionregistration.k8s.io": "admissionregistration",
    "authorization.k8s.io": "authorization", "authentication.k8s.io": "authentication",
    "policy": "policy", "scheduling.k8s.io": "scheduling", "rbac.authorization.k8s.io": "rbac",
    "storage.k8s.io": "storage", "certificates.k8s.io": "certificates",
    "flowcontrol.apiserver.k8s.io": "flowcontrol", "node.k8s.io": "node",
}
AGGREGATOR = "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1"
#: kinds every group version serves, defined in ``meta/v1`` (``AddToGroupVersion``)
META_KINDS = ("Status", "DeleteOptions", "WatchEvent", "ListOptions", "CreateOptions",
              "UpdateOptions", "PatchOptions", "GetOptions")


class ProtobufError(ValueError):
    """A body that is not a protobuf object of a kind this server knows."""


@dataclass(frozen=True)
class Field:
    name: str
    number: int
    label: str  # optional, repeated or map
    type: str  # a scalar name, a message's full name, or "key,value" for a map
    json: str
    pointer: bool
    omitempty: bool
    inline: bool


@cache
def _tables() -> dict[str, dict[str, Any]]:
    text = resources.files("k8sbook.api").joinpath("data/protobuf.json").read_text()
    packages: dict[str, dict[str, Any]] = json.loads(text)["packages"]
    return packages


@cache
def fields(full_name: str) -> tuple[Field, ...]:
    package, _, name = full_name.rpartition(".")
    rows = _tables()[package][name]["fields"]
    return tuple(Field(r[0], r[1], r[2], r[3], r[4], "p" in r[5], "o" in r[5], "i" in r[5])
                 for r in rows)


def _is_named_slice(full_name: str) -> bool:
    package, _, name = full_name.rpartition(".")
    entry = _tables()[package][name]
    return not entry["struct"] and [f[0] for f in entry["fields"]] == ["items"]


_SCALAR_TYPES = {
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "fixed32": descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32,
    "fixed64": descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64,
    "sint32": descriptor_pb2.FieldDescriptorProto.TYPE_SINT32,
    "sint64": descriptor_pb2.FieldDescriptorProto.TYPE_SINT64,
}
_FDP = descriptor_pb2.FieldDescriptorProto


def _set_type(fd: descriptor_pb2.FieldDescriptorProto, typ: str) -> None:
    if typ in _SCALAR_TYPES:
        fd.type = _SCALAR_TYPES[typ]
    else:
        fd.type = _FDP.TYPE_MESSAGE
        fd.type_name = "." + typ


def _file(package: str) -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name=package.replace(".", "/") + "/generated.proto",
                                             package=package, syntax="proto2")
    deps: set[str] = set()
    for name in sorted(_tables()[package]):
        msg = fdp.message_type.add(name=name)
        for f in fields(f"{package}.{name}"):
            fd = msg.field.add(name=f.name, number=f.number, json_name=f.name)
            if f.label == "map":
                key, value = f.type.split(",", 1)
                entry_name = f.name[:1].upper() + f.name[1:] + "Entry"
                entry = msg.nested_type.add(name=entry_name)
                entry.options.map_entry = True
                k = entry.field.add(name="key", number=1, label=_FDP.LABEL_OPTIONAL)
                _set_type(k, key)
                v = entry.field.add(name="value", number=2, label=_FDP.LABEL_OPTIONAL)
                _set_type(v, value)
                fd.label = _FDP.LABEL_REPEATED
                fd.type = _FDP.TYPE_MESSAGE
                fd.type_name = f".{package}.{name}.{entry_name}"
                typ = value
            else:
                fd.label = _FDP.LABEL_REPEATED if f.label == "repeated" else _FDP.LABEL_OPTIONAL
                _set_type(fd, f.type)
                typ = f.type
            if typ not in _SCALAR_TYPES:
                deps.add(typ.rpartition(".")[0])
    deps.discard(package)
    fdp.dependency.extend(sorted(p.replace(".", "/") + "/generated.proto" for p in deps))
    return fdp


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    files = {p: _file(p) for p in _tables()}
    added: set[str] = set()

    def add(package: str) -> None:
        if package in added:
            return
        added.add(package)
        for dep in files[package].dependency:
            add(dep[: -len("/generated.proto")].replace("/", "."))
        pool.Add(files[package])
    for package in sorted(files):
        add(package)
    return pool


@cache
def message_class(full_name: str) -> type[Message]:
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(full_name))


def message_name(api_version: str, kind: str) -> str | None:
    """The full name of the message for ``apiVersion``/``kind``, or ``None`` (no proto)."""
    group, _, version = api_version.rpartition("/")
    if kind in META_KINDS:
        package = META
    elif group == "apiregistration.k8s.io" and version == "v1":
        package = AGGREGATOR
    elif group in GROUP_PACKAGES and version == "v1":
        package = f"k8s.io.api.{GROUP_PACKAGES[group]}.v1"
    else:
        return None
    return f"{package}.{kind}" if kind in _tables().get(package, {}) else None


def supports(api_version: str, kind: str) -> bool:
    return message_name(api_version, kind) is not None


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
    if _is_named_slice(full_name):
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
    if typ in _SCALAR_TYPES:
        return value
    return to_json(value, typ)


def from_json(obj: Any, msg: Message, full_name: str) -> None:
    """Fill ``msg`` from the JSON form ``obj`` (fields the message does not have are dropped,
    as Go's decoder drops them)."""
    special = _SPECIAL_FROM_JSON.get(full_name)
    if special is not None:
        special(obj, msg)
        return
    if _is_named_slice(full_name):
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
                if vtype in _SCALAR_TYPES:
                    target[k] = _scalar(v, vtype)
                else:
                    from_json(v, target[k], vtype)
        elif f.label == "repeated":
            for v in value:
                if f.type in _SCALAR_TYPES:
                    target.append(_scalar(v, f.type))
                else:
                    from_json(v, target.add(), f.type)
        elif f.type in _SCALAR_TYPES:
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
    if name is None:
        raise ProtobufError(f'no kind "{kind}" is registered for version "{api_version}"')
    msg = message_class(name)()
    try:
        msg.ParseFromString(unknown.raw)
    except DecodeError as err:
        raise ProtobufError(str(err)) from None
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
