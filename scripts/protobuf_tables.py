"""Derive the protobuf field tables of the built-in kinds from the upstream definitions.

Reads, at a release tag, each package's ``generated.proto`` (message names, field names,
numbers, labels and types) and its Go types (``types.go`` and the other non-test files: the
``json`` tag of each field, whether it is ``omitempty`` or ``inline``, and whether the Go field
is a pointer), and writes them as data to ``src/k8sbook/api/data/protobuf.json``. The model's
wire format (:mod:`k8sbook.api.protobuf`) builds its descriptors from that file with the
``protobuf`` library; no upstream code is copied.

Usage (the repositories as git directories, e.g. the ones the search tool's ``fetch`` makes)::

    python scripts/protobuf_tables.py --api DIR --apimachinery DIR --kube-aggregator DIR \
        [--tag kubernetes-1.35.0]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/k8sbook/api/data/protobuf.json"

#: (repository option, package directory, Go package name as it is imported)
PACKAGES = [
    ("apimachinery", "pkg/apis/meta/v1", "k8s.io.apimachinery.pkg.apis.meta.v1"),
    ("apimachinery", "pkg/runtime", "k8s.io.apimachinery.pkg.runtime"),
    ("apimachinery", "pkg/runtime/schema", "k8s.io.apimachinery.pkg.runtime.schema"),
    ("apimachinery", "pkg/util/intstr", "k8s.io.apimachinery.pkg.util.intstr"),
    ("apimachinery", "pkg/api/resource", "k8s.io.apimachinery.pkg.api.resource"),
    *[("api", d, "k8s.io.api." + d.replace("/", ".")) for d in (
        "core/v1", "apps/v1", "batch/v1", "autoscaling/v1", "coordination/v1",
        "discovery/v1", "events/v1", "networking/v1", "admissionregistration/v1",
        "authorization/v1", "authentication/v1", "policy/v1", "scheduling/v1", "rbac/v1",
        "storage/v1", "certificates/v1", "flowcontrol/v1", "node/v1")],
    ("kube-aggregator", "pkg/apis/apiregistration/v1",
     "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1"),
]

MESSAGE = re.compile(r"^message (\w+) \{\n(.*?)^\}", re.DOTALL | re.MULTILINE)
FIELD = re.compile(r"^\s*(optional|repeated)\s+(\S+)\s+(\w+)\s*=\s*(\d+)\s*;", re.MULTILINE)
MAP = re.compile(r"^\s*map<\s*(\w+)\s*,\s*(\S+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;", re.MULTILINE)
SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float",
           "fixed32", "fixed64", "sint32", "sint64"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={repo}", *args], check=True,
                          capture_output=True, text=True).stdout


def qualify(typ: str, package: str) -> str:
    if typ in SCALARS:
        return typ
    return typ[1:] if typ.startswith(".") else f"{package}.{typ}"


def proto_messages(text: str, package: str) -> dict[str, list[list[object]]]:
    text = re.sub(r"//[^\n]*", "", text)
    out: dict[str, list[list[object]]] = {}
    for name, body in MESSAGE.findall(text):
        fields: list[list[object]] = []
        for label, typ, fname, num in FIELD.findall(body):
            fields.append([fname, int(num), label, qualify(typ, package)])
        for key, value, fname, num in MAP.findall(body):
            fields.append([fname, int(num), "map", f"{key},{qualify(value, package)}"])
        out[name] = sorted(fields, key=lambda f: int(str(f[1])))
    return out


STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.DOTALL | re.MULTILINE)
TAG = re.compile(r'(\w+):"([^"]*)"')


def go_fields(texts: list[str]) -> dict[str, dict[str, str]]:
    """Per struct: the proto field name (or ``#number``) -> ``<json name>|<flags>`` (p
    pointer, o omitempty, i inline) from each field's tags."""
    out: dict[str, dict[str, str]] = {}
    for text in texts:
        for name, body in STRUCT.findall(text):
            fields: dict[str, str] = {}
            for line in body.splitlines():
                code, _, rest = line.partition("`")
                if not rest:
                    continue
                tags = dict(TAG.findall(rest))
                parts = tags.get("protobuf", "").split(",")
                if len(parts) < 2:
                    continue
                # by name, or by number where the tag names none (EphemeralContainerCommon)
                proto = next((p[5:] for p in parts if p.startswith("name=")), f"#{parts[1]}")
                tokens = code.split("//")[0].split()
                gotype = tokens[-1] if tokens else ""
                jname, *opts = tags.get("json", "").split(",")
                flags = ("p" if gotype.startswith("*") else "") + \
                    ("o" if "omitempty" in opts else "") + ("i" if "inline" in opts else "")
                fields[proto] = f"{jname}|{flags}"
            out[name] = fields
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", type=Path, required=True)
    ap.add_argument("--apimachinery", type=Path, required=True)
    ap.add_argument("--kube-aggregator", type=Path, required=True)
    ap.add_argument("--tag", default="kubernetes-1.35.0")
    args = ap.parse_args()
    repos = {"api": args.api, "apimachinery": args.apimachinery,
             "kube-aggregator": args.kube_aggregator}
    tables: dict[str, dict[str, object]] = {}
    for repo_key, directory, package in PACKAGES:
        repo = repos[repo_key]
        proto = proto_messages(git(repo, "show", f"{args.tag}:{directory}/generated.proto"),
                               package)
        files = [f for f in git(repo, "ls-tree", "--name-only", f"{args.tag}:{directory}")
                 .split() if f.endswith(".go") and not f.endswith("_test.go")
                 and not f.startswith(("zz_generated", "generated."))]
        go = go_fields([git(repo, "show", f"{args.tag}:{directory}/{f}") for f in files])
        messages: dict[str, object] = {}
        for name, fields in sorted(proto.items()):
            tags = go.get(name)
            rows = []
            for fname, num, label, typ in fields:
                found = (tags or {}).get(str(fname)) or (tags or {}).get(f"#{num}")
                jname, flags = (found or f"{fname}|").split("|")
                rows.append([fname, num, label, typ, jname or str(fname), flags])
            # a message with no Go struct is a named slice or a type with its own JSON form
            messages[name] = {"fields": rows, "struct": tags is not None}
        tables[package] = messages
    doc = {"source": f"generated.proto and Go types at {args.tag} of k8s.io/api, "
                     "k8s.io/apimachinery and k8s.io/kube-aggregator", "packages": tables}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, "
          f"{sum(len(m) for m in tables.values())} messages)")


if __name__ == "__main__":
    main()
