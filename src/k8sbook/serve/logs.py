"""``pods/log`` over HTTPS: the text, and with ``follow=true`` a stream that stays open.

Mirrors the apiserver's ``LogREST`` (``pkg/registry/core/pod/rest/log.go``): it validates the
``PodLogOptions``, finds the pod's kubelet and streams back what the kubelet answers for
``/containerLogs`` as ``text/plain`` (``genericrest.LocationStreamer``). With ``follow`` the
response is chunked and stays open while the kubelet sends more; the kubelet decides when it
ends (the container stopped: :mod:`k8sbook.node.kubelet.logs`), or the client goes away.

In the model the kubelet's open response is the ``follow`` callable in its body: the front
end calls it under the model's lock every tick of virtual time (which ``serve``'s clock
advances) and writes what it returns as the next chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from k8sbook.api.request import Request, Response
from k8sbook.core.status import bad_request
from k8sbook.serve.http import Handler, send, send_json


def validate(req: Request) -> None:
    """``validation.ValidatePodLogOptions``: the messages of the fields' checks."""
    p = req.params
    if p.get("sinceSeconds") is not None and p.get("sinceTime"):
        raise bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified")
    for key, low, msg in (("tailLines", 0, "must be greater than or equal to 0"),
                          ("limitBytes", 1, "must be greater than 0"),
                          ("sinceSeconds", 1, "must be greater than 0")):
        if p.get(key) is not None and int(p[key]) < low:
            raise bad_request(f'PodLogOptions "{req.name}" is invalid: {key}: '
                              f"Invalid value: {p[key]}: {msg}")


def serve(h: Handler, req: Request, call: Callable[[Request], Response],
          lock: threading.RLock, stopping: threading.Event, tick: float) -> None:
    validate(req)
    resp = call(req)
    if not resp.ok:
        return send_json(h, resp.code, resp.body or {})
    body: dict[str, Any] = resp.body if isinstance(resp.body, dict) else {}
    text = str(body.get("text", ""))
    follow = body.get("follow")
    if not callable(follow):
        return send(h, 200, text.encode(), "text/plain")
    h.send_response(200)
    h.send_header("Content-Type", "text/plain")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    h.close_connection = True
    try:
        _chunk(h, text)
        while not stopping.wait(tick):
            with lock:
                more, done = follow()
            _chunk(h, more)
            if done:
                break
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()
    except (BrokenPipeError, ConnectionResetError, OSError):
        return  # the client went away (^C on kubectl logs -f)


def _chunk(h: Handler, text: str) -> None:
    data = text.encode()
    if data:
        h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        h.wfile.flush()
