"""HTTP requests and responses as they cross the model's network.

Mirrors the parts of Go's ``net/http`` (``http.Request``, ``http.Response``) that the paths in
this book use: a method, a path with its query, headers, the credentials the TLS handshake or
the ``Authorization`` header presented, and a body. Servers that speak HTTP in the model (the
kubelet on 10250, an application in a pod, an admission webhook, an aggregated API server, a
cloud API) listen on the network with a handler that takes an :class:`HTTPRequest` and
returns an :class:`HTTPResponse`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from k8sbook.api.request import Credentials


@dataclass(frozen=True)
class HTTPRequest:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None
    #: what the server learns of the caller from TLS (a client certificate) or from an
    #: ``Authorization: Bearer`` header
    credentials: Credentials = None
    #: the query, decoded (``?command=ls&command=-l`` -> ``{"command": ["ls", "-l"]}``)
    params: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]


@dataclass
class HTTPResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def result(self) -> str:
        """The response as a trace shows it."""
        return str(self.status)
