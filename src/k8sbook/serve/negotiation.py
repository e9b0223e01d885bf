"""Content negotiation of ``k8sbook serve``'s resource responses: JSON or protobuf.

Mirrors ``k8s.io/apiserver/pkg/endpoints/handlers/negotiation`` (``NegotiateOutputMediaType``:
the ``Accept`` header's media ranges in order of preference, ``q`` first; the first one a
serializer of the resource matches wins; an empty header means JSON; none matching is
``406 NotAcceptable``, "only the following media types are accepted: ...") and the serializers
``codec_factory.go`` registers for the built-in types (JSON, YAML, protobuf; a kind with no
protobuf form, such as ``meta.k8s.io/v1`` ``Table``, offers JSON and YAML only). The
protobuf encoding is :mod:`k8sbook.api.protobuf`. The model writes JSON, which is YAML too,
when YAML is asked for.
"""

from __future__ import annotations

from typing import Any

from k8sbook.api import protobuf
from k8sbook.core.status import StatusError, status_object
from k8sbook.serve.http import Handler, send, send_json

JSON, YAML = "application/json", "application/yaml"


def _ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    """The media ranges of ``accept``, most preferred first (``goautoneg.ParseAccept``: by
    ``q``, then ``type/subtype`` before ``type/*`` before ``*/*``, then in order)."""
    out: list[tuple[float, int, int, str, dict[str, str]]] = []
    for i, clause in enumerate(c for c in accept.split(",") if c.strip()):
        kind, *rest = (p.strip() for p in clause.split(";"))
        params = dict(p.split("=", 1) for p in rest if "=" in p)
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        if q > 0:
            kind = kind.lower()
            out.append((-q, kind.count("*"), i, kind, params))
    return [(kind, params) for *_, kind, params in sorted(out, key=lambda r: r[:3])]


def output_media_type(accept: str, api_version: str, kind: str) -> str:
    """``application/json`` or ``application/vnd.kubernetes.protobuf`` for a response
    holding ``apiVersion``/``kind``; 406 if the client accepts neither."""
    ranges = _ranges(accept)
    if not ranges:
        return JSON
    proto_ok = protobuf.supports(api_version, kind)
    offered = [JSON, YAML] + ([protobuf.CONTENT_TYPE] if proto_ok else [])
    for media, params in ranges:
        if params.get("as"):
            continue  # a conversion (Table, PartialObjectMetadata): handled by the caller
        if media == protobuf.CONTENT_TYPE and proto_ok:
            return protobuf.CONTENT_TYPE
        if media in (JSON, YAML, "application/*", "*/*"):
            return JSON
    raise StatusError(status_object(
        406, "NotAcceptable",
        f"only the following media types are accepted: {', '.join(offered)}"))


def send_object(h: Handler, code: int, body: dict[str, Any],
                warnings: list[str] | None = None, *, as_json: bool = False) -> None:
    """Write ``body`` in the media type the client's ``Accept`` header negotiates
    (``as_json``: a conversion the caller already made, such as a Table)."""
    if as_json:
        return send_json(h, code, body, warnings)
    try:
        media = output_media_type(h.headers.get("Accept", ""),
                                  str(body.get("apiVersion", "")), str(body.get("kind", "")))
    except StatusError as err:
        return send_json(h, err.code, err.status)
    if media == protobuf.CONTENT_TYPE:
        return send(h, code, protobuf.encode(body), protobuf.CONTENT_TYPE, warnings)
    send_json(h, code, body, warnings)


def watch_is_protobuf(h: Handler, api_version: str, kind: str) -> bool:
    """Whether a watch of ``kind`` is streamed as protobuf frames (406 as for a get)."""
    return output_media_type(h.headers.get("Accept", ""), api_version, kind) == \
        protobuf.CONTENT_TYPE
