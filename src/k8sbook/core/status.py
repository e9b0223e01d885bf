"""Kubernetes ``Status`` objects and the errors that carry them.

Mirrors ``k8s.io/apimachinery/pkg/api/errors`` (``NewNotFound``, ``NewAlreadyExists``,
``NewConflict``, ``NewInvalid``, ``NewForbidden``, ``NewResourceExpired``, ...) and
``metav1.Status``: every failed request is answered with a ``Status`` whose ``code`` is the HTTP
status code and whose ``reason`` is the machine-readable ``StatusReason``. The message formats
follow the Go functions, so a reader sees what a real apiserver would answer.
"""

from __future__ import annotations

from typing import Any


class StatusError(Exception):
    """An API error: ``.status`` is the ``Status`` object the apiserver returns."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status["message"])
        self.status = status

    @property
    def code(self) -> int:
        return int(self.status["code"])

    @property
    def reason(self) -> str:
        return str(self.status.get("reason", ""))


def status_object(
    code: int,
    reason: str,
    message: str,
    *,
    name: str | None = None,
    group: str | None = None,
    kind: str | None = None,
    causes: list[dict[str, str]] | None = None,
    retry_after: int | None = None,
) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name is not None:
        details["name"] = name
    if group:
        details["group"] = group
    if kind is not None:
        details["kind"] = kind
    if causes:
        details["causes"] = causes
    if retry_after is not None:
        details["retryAfterSeconds"] = retry_after
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if not reason:  # StatusReasonUnknown is the empty string, omitted from the JSON
        del status["reason"]
    if details:
        status["details"] = details
    return status


def success_status(name: str, group: str, kind: str, uid: str) -> dict[str, Any]:
    """What ``DELETE`` returns for most resources (``metav1.StatusSuccess``; an empty group is
    omitted, as ``StatusDetails.Group`` is ``omitempty``)."""
    details = {"name": name, "group": group, "kind": kind, "uid": uid}
    if not group:
        del details["group"]
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def bad_request(message: str) -> StatusError:
    return StatusError(status_object(400, "BadRequest", message))


def unauthorized(message: str = "Unauthorized") -> StatusError:
    return StatusError(status_object(401, "Unauthorized", message))


def forbidden(resource: str, group: str, name: str, reason: str) -> StatusError:
    what = _qualified(resource, group) + (f' "{name}"' if name else "")
    return StatusError(
        status_object(403, "Forbidden", f"{what} is forbidden: {reason}",
                      name=name or None, group=group, kind=resource)
    )


def not_found(resource: str, group: str, name: str) -> StatusError:
    return StatusError(
        status_object(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                      name=name, group=group, kind=resource)
    )


def method_not_supported(resource: str, group: str, action: str) -> StatusError:
    return StatusError(
        status_object(405, "MethodNotAllowed",
                      f"{action} is not supported on resources of kind "
                      f"{_qualified(resource, group)!r}", group=group, kind=resource)
    )


def already_exists(resource: str, group: str, name: str) -> StatusError:
    return StatusError(
        status_object(409, "AlreadyExists",
                      f'{_qualified(resource, group)} "{name}" already exists',
                      name=name, group=group, kind=resource)
    )


def conflict(resource: str, group: str, name: str, err: str) -> StatusError:
    return StatusError(
        status_object(409, "Conflict",
                      f"Operation cannot be fulfilled on {_qualified(resource, group)} "
                      f'"{name}": {err}', name=name, group=group, kind=resource)
    )


#: The text ``registry/generic`` uses when an update's resourceVersion is stale.
OPTIMISTIC_LOCK_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def resource_expired(message: str) -> StatusError:
    """410 Gone, reason Expired: the resourceVersion asked for has been compacted away."""
    return StatusError(status_object(410, "Expired", message))


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(
        status_object(415, "UnsupportedMediaType", f"the body of the request was in an unknown "
                      f"format - accepted media types include: application/json-patch+json, "
                      f"application/merge-patch+json (got {content_type})")
    )


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> StatusError:
    """422 Invalid with one cause per field error, as ``errors.NewInvalid`` builds it."""
    parts = [f"{c['field']}: {c['message']}" for c in causes]
    if len(parts) == 1:
        summary = parts[0]
    else:
        summary = "[" + ", ".join(parts) + "]"
    what = f"{kind}.{group}" if group else kind
    return StatusError(
        status_object(422, "Invalid", f'{what} "{name}" is invalid: {summary}',
                      name=name, group=group, kind=kind, causes=causes)
    )


def too_many_requests(message: str, causes: list[dict[str, str]] | None = None,
                      retry_after: int | None = None) -> StatusError:
    return StatusError(
        status_object(429, "TooManyRequests", message, causes=causes, retry_after=retry_after)
    )


def internal_error(message: str) -> StatusError:
    return StatusError(
        status_object(500, "InternalError", f"Internal error occurred: {message}",
                      causes=[{"message": message}])
    )


def unknown_error(message: str) -> StatusError:
    """What ``ErrorToAPIStatus`` makes of an error that is not an API error: 500, no reason,
    the error's own text (kubectl prints it as ``Error from server: <message>``)."""
    return StatusError(status_object(500, "", message))


#: ``NewGenericServerResponse``: the reason and the message for a code, when the server's own
#: message is not kept (``None``: it is)
_GENERIC: dict[int, tuple[str, str | None]] = {
    404: ("NotFound", "the server could not find the requested resource"),
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", None),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    415: ("UnsupportedMediaType", None),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", ("the server was unable to return a response in the time allotted, but may "
                    "still be processing the request")),
    429: ("TooManyRequests", ("the server has received too many requests and has asked us to "
                            "try again later")),
}


def generic_server_response(code: int, verb: str, resource: str, group: str, name: str,
                            server_message: str) -> StatusError:
    """``errors.NewGenericServerResponse`` (no retry-after, not an unexpected response): a
    Status for an HTTP error some server answered with a body that is not a Status. A 403 and a
    415 keep the server's message; the others get the code's own words (a 5xx quotes the
    server's); then `` (<verb> <resource> <name>)`` with the verb in lower case."""
    reason, message = _GENERIC.get(code, ("", None))
    if message is None and reason:
        message = server_message
    elif message is None:
        message = f"the server responded with the status code {code} but did not return " \
                  "more information"
        if code >= 500:
            reason = "InternalError"
            message = f"an error on the server ({_go_quote(server_message)}) has prevented " \
                      "the request from succeeding"
    if resource:
        what = _qualified(resource, group)
        message += f" ({verb.lower()} {what} {name})" if name else f" ({verb.lower()} {what})"
    return StatusError(status_object(code, reason, message, name=name, group=group,
                                     kind=resource))


def _go_quote(text: str) -> str:
    """Go's ``%q`` for the texts servers answer with (JSON string escapes)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def service_unavailable(message: str) -> StatusError:
    return StatusError(status_object(503, "ServiceUnavailable", message))


def timeout(message: str, retry_after: int = 1) -> StatusError:
    return StatusError(status_object(504, "Timeout", message, retry_after=retry_after))
