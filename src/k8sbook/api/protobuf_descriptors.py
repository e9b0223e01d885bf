"""The protobuf messages of the built-in kinds, built from the field tables derived from upstream.

Mirrors the ``generated.proto`` files of ``k8s.io/api`` (the v1 group versions),
``k8s.io/apimachinery`` (``meta/v1``, ``runtime``, ``runtime/schema``, ``util/intstr``,
``api/resource``) and ``k8s.io/kube-aggregator`` (``apiregistration/v1``) at kubernetes-1.35.0.
``scripts/protobuf_tables.py`` derives the tables (``data/protobuf.json``): each message's
fields with their names, numbers, labels and types from ``generated.proto``, and from the Go
types the ``json`` name, ``omitempty``/``inline`` and whether the Go field is a pointer. This
module turns them into ``FileDescriptorProto``s (proto2, one per package, maps as map-entry
messages) in a descriptor pool of the ``protobuf`` library, which encodes and decodes. The
conversion to and from JSON is :mod:`k8sbook.api.protobuf`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

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
def tables() -> dict[str, dict[str, Any]]:
    text = resources.files("k8sbook.api").joinpath("data/protobuf.json").read_text()
    packages: dict[str, dict[str, Any]] = json.loads(text)["packages"]
    return packages


@cache
def fields(full_name: str) -> tuple[Field, ...]:
    package, _, name = full_name.rpartition(".")
    rows = tables()[package][name]["fields"]
    return tuple(Field(r[0], r[1], r[2], r[3], r[4], "p" in r[5], "o" in r[5], "i" in r[5])
                 for r in rows)


def is_named_slice(full_name: str) -> bool:
    package, _, name = full_name.rpartition(".")
    entry = tables()[package][name]
    return not entry["struct"] and [f[0] for f in entry["fields"]] == ["items"]


SCALAR_TYPES = {
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
    if typ in SCALAR_TYPES:
        fd.type = SCALAR_TYPES[typ]
    else:
        fd.type = _FDP.TYPE_MESSAGE
        fd.type_name = "." + typ


def _file(package: str) -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name=package.replace(".", "/") + "/generated.proto",
                                             package=package, syntax="proto2")
    deps: set[str] = set()
    for name in sorted(tables()[package]):
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
            if typ not in SCALAR_TYPES:
                deps.add(typ.rpartition(".")[0])
    deps.discard(package)
    fdp.dependency.extend(sorted(p.replace(".", "/") + "/generated.proto" for p in deps))
    return fdp


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    files = {p: _file(p) for p in tables()}
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
    return f"{package}.{kind}" if kind in tables().get(package, {}) else None


def supports(api_version: str, kind: str) -> bool:
    return message_name(api_version, kind) is not None


