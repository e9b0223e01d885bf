"""``events.k8s.io/v1`` Events: the same objects as core ``v1`` Events, another shape.

Mirrors ``pkg/apis/events/v1/conversion.go`` and the registration of
``pkg/registry/core/rest`` / ``pkg/registry/events/rest``: both group versions are served from
one storage (``/registry/events``, kept as core Events), and each request to
``events.k8s.io/v1`` is converted on the way in and on the way out. The fields map one to one:

=============================  ==========================
events.k8s.io/v1               v1 (core)
=============================  ==========================
``regarding``                  ``involvedObject``
``note``                       ``message``
``reportingController``        ``reportingComponent``
``deprecatedSource``           ``source``
``deprecatedFirstTimestamp``   ``firstTimestamp``
``deprecatedLastTimestamp``    ``lastTimestamp``
``deprecatedCount``            ``count``
=============================  ==========================

and ``eventTime``, ``series``, ``reportingInstance``, ``action``, ``reason``, ``related``,
``type`` and ``metadata`` are the same in both. A create through ``events.k8s.io/v1`` is
validated more strictly than one through ``v1`` (:func:`validate_create`); the model runs that
check before admission, upstream after it (a bad event for a namespace that does not exist
gets 422 here, 404 there).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from k8sbook.api import validation
from k8sbook.api.request import Request, Response

API_VERSION = "events.k8s.io/v1"
#: events.k8s.io/v1 name -> core v1 name
RENAMED = {"regarding": "involvedObject", "note": "message",
           "reportingController": "reportingComponent", "deprecatedSource": "source",
           "deprecatedFirstTimestamp": "firstTimestamp",
           "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count"}
_BACK = {v: k for k, v in RENAMED.items()}


def to_core(event: dict[str, Any]) -> dict[str, Any]:
    """An ``events.k8s.io/v1`` Event as the core ``v1`` Event it is stored as."""
    out = {RENAMED.get(k, k): copy.deepcopy(v) for k, v in event.items()}
    out["apiVersion"], out["kind"] = "v1", "Event"
    return out


def from_core(event: dict[str, Any]) -> dict[str, Any]:
    """A stored core Event in the ``events.k8s.io/v1`` shape."""
    if event.get("kind") != "Event":
        return event
    out = {_BACK.get(k, k): copy.deepcopy(v) for k, v in event.items()}
    out["apiVersion"] = API_VERSION
    return out


def validate_create(event: dict[str, Any]) -> list[dict[str, str]]:
    """``ValidateEventCreate`` for a request to ``events.k8s.io/v1`` (``pkg/apis/core/
    validation/events.go``), on the core shape (so the field paths are the core names):
    ``eventTime`` is required, ``type`` is Normal or Warning, the deprecated fields are unset,
    a ``series`` counts at least 2; and an event with an ``eventTime`` names its reporting
    controller and instance, its action and its reason."""
    causes: list[dict[str, str]] = []
    if not event.get("eventTime"):
        causes.append(validation.required("eventTime"))
    else:
        for name, label in (("reportingComponent", "reportingController"),
                            ("reportingInstance", "reportingInstance"), ("action", "action"),
                            ("reason", "reason")):
            if not event.get(name):
                causes.append(validation.required(label))
    if event.get("type") not in ("Normal", "Warning"):
        causes.append(validation.invalid("type", "", f"has invalid value: {event.get('type', '')}"))
    for name in ("firstTimestamp", "lastTimestamp", "count", "source"):
        if event.get(name):
            causes.append(validation.invalid(name, "", "needs to be unset"))
    series = event.get("series")
    if isinstance(series, dict):
        if int(series.get("count") or 0) < 2:
            causes.append(validation.invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            causes.append(validation.required("series.lastObservedTime"))
    return causes


def core_request(req: Request) -> Request:
    """The request as the core ``events`` storage serves it."""
    body = req.body
    if isinstance(body, dict) and req.verb in ("create", "update"):
        body = to_core({"apiVersion": API_VERSION, "kind": "Event", **body})
    elif isinstance(body, dict) and req.verb == "patch" and \
            not req.content_type.startswith("application/apply-patch"):
        body = {RENAMED.get(k, k): v for k, v in body.items()}
    return Request(req.verb, "events", "", req.namespace, req.name, req.subresource, body=body,
                   params=req.params, credentials=req.credentials, content_type=req.content_type,
                   user=req.user, impersonate=req.impersonate, original_user=req.original_user)


def convert_response(resp: Response) -> Response:
    """The core storage's answer in the ``events.k8s.io/v1`` shape."""
    body = resp.body
    if isinstance(body, dict) and body.get("kind") == "EventList":
        body = {**body, "apiVersion": API_VERSION,
                "items": [from_core(i) for i in body.get("items") or []]}
    elif isinstance(body, dict) and body.get("kind") == "Event":
        body = from_core(body)
    elif isinstance(body, dict) and body.get("kind") == "Status":
        body = _status(body)
    return Response(resp.code, body, resp.watch)


def _status(status: dict[str, Any]) -> dict[str, Any]:
    details = status.get("details") or {}
    if details.get("kind") != "events" or details.get("group"):
        return status
    out = copy.deepcopy(status)
    out["details"]["group"] = "events.k8s.io"
    out["message"] = str(out.get("message", "")).replace('events "', 'events.events.k8s.io "', 1)
    return out


def watch_events(on_event: Callable[[dict[str, Any] | None], None] | None
                 ) -> Callable[[dict[str, Any] | None], None] | None:
    """A watch consumer that receives each event's object in the ``events.k8s.io/v1`` shape."""
    if on_event is None:
        return None

    def convert(event: dict[str, Any] | None) -> None:
        if event is not None and isinstance(event.get("object"), dict):
            event = {**event, "object": from_core(event["object"])}
        on_event(event)
    return convert
