"""Paginated lists: ``limit`` and ``continue``, as the etcd3 storage serves them.

Mirrors ``k8s.io/apiserver/pkg/storage/continue.go`` and the ``GetList`` of
``pkg/storage/etcd3/store.go`` (v0.35.0):

- which reads paginate is ``shouldDelegateList`` (``storage/cacher``): a ``continue``, or a
  ``limit`` with ``resourceVersion`` "" (a consistent read) or a number (the legacy exact read at
  that revision) goes to etcd; at ``resourceVersion=0`` or ``NotOlderThan`` the watch cache
  answers and ignores the limit;
- a list with ``limit`` returns at most that many items, read from etcd at one revision; when
  more remain, ``metadata.continue`` is a token and ``metadata.remainingItemCount`` counts what
  is left (only when no label or field selector filters the list: etcd's count includes objects
  a selector would drop, so upstream leaves it unset);
- the token is ``base64.RawURLEncoding`` of the JSON ``{"v":"meta.k8s.io/v1","rv":REV,
  "start":KEY}``, ``KEY`` being the last returned key with ``"\\x00"`` appended (the next key
  in etcd's order) with the resource's key prefix cut off (``EncodeContinue``);
- a continued list reads at the token's revision, from its start key; a token whose revision
  etcd has compacted is 410 ``Expired`` with ``inconsistentContinue``'s message
  (``etcd3/errors.go``) and, in ``metadata.continue``, a fresh token with ``rv: -1`` that
  continues from the same key at the latest revision; a token that does not decode is 400
  ``continue key is not valid``; ``continue`` with a ``resourceVersion`` is 400 too
  (``ValidateListOptions``).

Difference, said out loud: the model reads the whole prefix at the revision and slices it
(the real store sends ``Range`` with a limit and a start key); the trace shows one ``Range``.
"""

from __future__ import annotations

import base64
import json
import posixpath
from collections.abc import Callable
from typing import Any

from k8sbook.api.request import Request, Response
from k8sbook.api.resources import ResourceType
from k8sbook.core.status import StatusError, bad_request, status_object
from k8sbook.storage.etcd3 import Storage

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list.")


def encode_continue(key: str, prefix: str, revision: int) -> str:
    """``EncodeContinue``: the token for a list that goes on at ``key``."""
    token = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": key[len(prefix):]},
                       separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[str, int]:
    """``DecodeContinue``: (the key to start from, the revision to read at)."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError) as err:
        raise bad_request(f"continue key is not valid: {err}") from None
    if not isinstance(data, dict) or data.get("v") != "meta.k8s.io/v1":
        version = data.get("v") if isinstance(data, dict) else None
        raise bad_request("continue key is not valid: server does not recognize this encoded "
                          f"version {version}")
    if not data.get("rv"):
        raise bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                          "(version meta.k8s.io/v1)")
    start = str(data.get("start") or "")
    if not start:
        raise bad_request("continue key is not valid: encoded start key empty (version "
                          "meta.k8s.io/v1)")
    key = start if start.startswith("/") else "/" + start
    if posixpath.normpath(key) != key:  # no climbing out of the prefix
        raise bad_request(f"continue key is not valid: {start}")
    return prefix + key[1:], int(data["rv"])


def expired_continue(start_key: str, prefix: str) -> StatusError:
    """``handleCompactedErrorForPaging``: 410 with a token that continues at the latest
    revision (``rv: -1``)."""
    status = status_object(410, "Expired", CONTINUE_EXPIRED)
    status["metadata"] = {"continue": encode_continue(start_key, prefix, -1)}
    return StatusError(status)


def page(keyed: list[tuple[str, dict[str, Any]]], start: str, limit: int
         ) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """The items from ``start`` on (keys in etcd order), at most ``limit``; and whether
    more remain."""
    rest = [(k, o) for k, o in keyed if k >= start]
    if limit <= 0:
        return rest, False
    return rest[:limit], len(rest) > limit


def list_page(storage: Storage, rt: ResourceType, req: Request, ns: str, rv: str,
              matches: Callable[[dict[str, Any]], bool]) -> Response:
    """A list with ``limit`` or ``continue``, read from etcd at one revision."""
    prefix, token = rt.prefix(ns), str(req.params.get("continue") or "")
    # a limit with a resourceVersion (``Exact``, or no match: the legacy exact read) reads at
    # that revision; without one, at the latest
    start, rev = prefix, int(rv) if rv.isdigit() and rv != "0" else 0
    if token:
        if rv and rv != "0":
            raise bad_request("specifying resource version is not allowed when using "
                              "continue")
        start, rev = decode_continue(token, prefix)
    try:
        items, read_rev = storage.list(prefix, max(rev, 0))
    except StatusError as err:
        if token and err.code == 410:
            raise expired_continue(start, prefix) from None
        raise
    keyed = [(rt.key(o["metadata"].get("namespace", ""), o["metadata"]["name"]), o)
             for o in items if matches(o)]
    limit = int(req.params.get("limit") or 0)
    chosen, more = page(keyed, start, limit)
    meta: dict[str, Any] = {"resourceVersion": str(read_rev)}
    if more:
        meta["continue"] = encode_continue(chosen[-1][0] + "\x00", prefix,
                                                      read_rev)
        if not req.params.get("labelSelector") and not req.params.get("fieldSelector"):
            meta["remainingItemCount"] = len([k for k, _ in keyed if k > chosen[-1][0]])
    return Response(200, {"apiVersion": rt.api_version, "kind": f"{rt.kind}List",
                          "metadata": meta, "items": [o for _, o in chosen]})
