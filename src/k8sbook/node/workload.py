"""The model's container programs: how long a container's main process runs, what it serves.

Mirrors what the chapters' images run: BusyBox's ``sh`` and applets (``sh -c 'echo hi;
exit 3'``, ``sleep N``: :func:`main_process`) and agnhost's
``serve-hostname`` (``kubernetes/test/images/agnhost``): the application listens on each of
its ``containerPort`` s on its pod's IP and answers every HTTP request ``200`` with the pod's
hostname, or ``503`` when the chapter made it unhealthy. Connections the container opens
start inside its sandbox's network namespace (:func:`dial_from`). The runtime that runs
these programs is :mod:`k8sbook.node.container_runtime`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address, DialError, Network
from k8sbook.node import shell
from k8sbook.node.containerd_store import CONTAINER_RUNNING, Container, Sandbox


def main_process(command: list[str], proc: shell.Process) -> tuple[float | None, int, str]:
    """How the container's main process runs: (seconds until it exits, or None when it runs
    until stopped; its exit code; what it printed).

    A command whose binary is one of the image's shell applets (``sh -c 'echo hello; exit
    3'``, ``sleep 5``, ``true``) is run by :mod:`k8sbook.node.shell` when the container
    starts: it prints at once and exits after the seconds its ``sleep`` s add up to. Any other
    command (or none: the image's entrypoint, a server) runs until it is stopped, as does
    ``sleep infinity``, and a shell that reads its script from stdin (``sh``, as ``kubectl
    run -i`` starts it): it waits for what an attached client writes
    (:mod:`k8sbook.node.containerd_attach`)."""
    if not command or command[0].rsplit("/", 1)[-1] not in shell.BINARIES \
            or shell.reads_script(command):
        return None, 0, ""
    try:
        result = shell.run(command, proc)
    except ValueError:  # ``sleep infinity``: not a number of seconds, it never ends
        return None, 0, ""
    return result.slept, result.exit_code, result.output


def program_of(command: list[str]) -> tuple[float | None, int]:
    """How long the container's program runs and how it exits: (seconds or None, code)."""
    seconds, code, _ = main_process(command, shell.Process(files=lambda path: None))
    return seconds, code


def answer(c: Container, sb: Sandbox, req: Any) -> HTTPResponse:
    """The application's answer to one HTTP request."""
    if c.state != CONTAINER_RUNNING:
        return HTTPResponse(502)
    return HTTPResponse(200 if c.healthy else 503, sb.hostname)


def listen(network: Network, c: Container, sb: Sandbox) -> OSError | None:
    """The container's program listens on each of its ports, on its pod's IP; the error
    if one is taken (two containers of one pod on one port)."""
    for port in sorted(set(c.ports)):  # a port given for TCP and UDP is one TCP socket
        try:
            network.listen(Address.tcp(sb.ip, port), f"pod/{sb.name}", partial(answer, c, sb),
                           protocol="HTTP")
        except OSError as err:
            return err
    return None


def unlisten(network: Network, c: Container, sb: Sandbox) -> None:
    """The program's ports close (those it, and not another container, listens on)."""
    for port in sorted(set(c.ports)):
        listener = network.listener(Address.tcp(sb.ip, port))
        if listener is not None and listener.owner == f"pod/{sb.name}":
            network.close(Address.tcp(sb.ip, port))


def dial_from(network: Network, node: str, sb: Sandbox, host: str, port: int, path: str, *,
              src: str = "") -> tuple[int | None, str]:
    """A connection opened inside the sandbox's network namespace (``localhost`` is the
    pod's own IP: the namespace's loopback); (status, body), or (None, "") if refused."""
    if host in ("localhost", "127.0.0.1"):
        host = sb.ip
    try:
        resp = network.dial(src or f"pod/{sb.namespace}/{sb.name}",
                            Address.tcp(host, port), HTTPRequest("GET", path),
                            protocol="HTTP", verb="GET",
                            resource=f"http://{host}:{port}{path}",
                            result=HTTPResponse.result, via=node, source_ip=sb.ip)
    except DialError:
        return None, ""
    return resp.status, str(resp.body or "")


#: Go's ``http.StatusText`` for the statuses the model's applications answer
STATUS_TEXT = {200: "OK", 404: "Not Found", 502: "Bad Gateway", 503: "Service Unavailable"}


def request_path(raw: str) -> str:
    """The path of the HTTP/1.1 request line in ``raw`` (what a port-forward carries to the
    application), ``/`` if there is none."""
    parts = raw.split("\r\n", 1)[0].split(" ")
    return parts[1] if len(parts) >= 3 and parts[1].startswith("/") else "/"


def response_bytes(status: int, body: str) -> str:
    """The application's answer as Go's ``net/http`` writes it on the wire (no ``Date``)."""
    data = body.encode()
    return (f"HTTP/1.1 {status} {STATUS_TEXT.get(status, '')}\r\n"
            f"Content-Length: {len(data)}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"\r\n{body}")

