"""kubectl port-forward (k8sbook.serve.portforward, .spdy) with both kubectl versions:
SPDY/3.1 tunnelled in a WebSocket, to a port the pod's application listens on."""

from __future__ import annotations

import socket
import struct
import subprocess
import time
import urllib.request
import zlib
from collections.abc import Iterator

import pytest

from k8sbook.serve import server, spdy
from tests.serve.conftest import Kubectl
from tests.serve.test_streams import phase, wait_for


@pytest.fixture(scope="module")
def srv() -> Iterator[server.ModelServer]:
    with server.ModelServer(seed=3) as s:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
               "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                        "ports": [{"containerPort": 80}]}]}}
        with s.model() as cluster:
            cluster.admin().create(pod)
        wait_for(lambda: phase(s, "web") == "Running")
        yield s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_port_forward_reaches_the_application(srv: server.ModelServer,
                                              kubectl: Kubectl) -> None:
    local = free_port()
    with srv.model() as cluster:
        start = cluster.trace.mark()
    proc = subprocess.Popen([kubectl.binary, "port-forward", "pod/web",  # type: ignore[attr-defined]
                             f"{local}:80", "--address=127.0.0.1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=kubectl.env)  # type: ignore[attr-defined]
    try:
        body = wait_for(lambda: _get(f"http://127.0.0.1:{local}/"))
        assert body == b"web"  # the application answers with its pod's hostname
        assert _get(f"http://127.0.0.1:{local}/healthz") == b"web"  # a second connection
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert out.splitlines()[0] == f"Forwarding from 127.0.0.1:{local} -> 80"
    with srv.model() as cluster:
        msgs = cluster.trace.since(start)
    forwards = [m for m in msgs if m.src == "kubectl" and m.resource == "pods/portforward"]
    assert [m.result for m in forwards] == [
        "101 Switching Protocols (SPDY/3.1+portforward.k8s.io)"] * 2
    # the runtime connected to the port inside the pod's network namespace, once per request
    inside = [m.resource.split(":80", 1)[1] for m in msgs
              if m.src.startswith("container-runtime/") and m.dst == "pod/web"]
    assert inside == ["/", "/healthz"]


def test_a_port_nothing_listens_on_is_an_error_on_the_error_stream(
        srv: server.ModelServer, kubectl: Kubectl) -> None:
    local = free_port()
    proc = subprocess.Popen([kubectl.binary, "port-forward", "pod/web",  # type: ignore[attr-defined]
                             f"{local}:9999", "--address=127.0.0.1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=kubectl.env)  # type: ignore[attr-defined]
    try:
        wait_for(lambda: _connects(local))
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=5)
        time.sleep(0.5)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "connection refused" in err  # kubectl logs what the error stream carried


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bytes(resp.read())
    except OSError:
        return None


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_spdy_frames_and_compressed_headers() -> None:
    framer = spdy.Framer()
    # a SYN_STREAM as spdystream writes it: headers compressed with the SPDY/3 dictionary
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                               spdy.DICTIONARY)
    pairs = [("port", "80"), ("requestid", "0"), ("streamtype", "error")]
    raw = struct.pack(">I", len(pairs)) + b"".join(
        struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
        for k, v in pairs)
    block = deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">IIH", 1, 0, 0) + block
    syn = struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(payload)) + payload
    ping = struct.pack(">HHII", 0x8003, spdy.PING, 4, 7)
    data = spdy.Framer.data(1, b"hello", fin=True)
    frames = framer.feed(syn + ping + data[:5])  # the data frame arrives in two pieces
    assert [(f.type, f.stream, f.headers) for f in frames] == [
        (spdy.SYN_STREAM, 1, dict(pairs)), (spdy.PING, 0, {})]
    (last,) = framer.feed(data[5:])
    assert (last.control, last.stream, last.data, last.flags) == (False, 1, b"hello", 1)
    reply = framer.syn_reply(1)
    assert reply[:4] == struct.pack(">HH", 0x8003, spdy.SYN_REPLY)
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    assert inflate.decompress(reply[12:]) == struct.pack(">I", 0)  # no headers
