"""exec over SPDY/3.1 (k8sbook.serve.spdy_exec): the real kubectl, both versions, with
WebSockets turned off (``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false``), as a client without them
talks; outputs, exit codes and the terminal compared with what the model holds."""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from k8sbook.serve import server
from tests.serve.test_streams import phase, wait_for


@pytest.fixture(scope="module")
def srv() -> Iterator[server.ModelServer]:
    with server.ModelServer(seed=4) as s:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
               "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}
        with s.model() as cluster:
            cluster.admin().create(pod)
        wait_for(lambda: phase(s, "web") == "Running")
        yield s


def spdy_kubectl(binary: str, kubeconfig: Path, *args: str, stdin: str | None = None
                 ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig),
           "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
    return subprocess.run([binary, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=30, check=False)


def test_exec_over_spdy_streams_output_stdin_and_the_exit_code(
        srv: server.ModelServer, kubeconfig: Path, kubectl_bin: str) -> None:
    with srv.model() as cluster:
        mark = cluster.trace.mark()
    out = spdy_kubectl(kubectl_bin, kubeconfig, "-v=6", "exec", "web", "--", "sh", "-c",
                       "echo hi; cat /nope; exit 3")
    assert out.returncode == 3 and out.stdout == "hi\n"
    assert "cat: can't open '/nope': No such file or directory\n" in out.stderr
    assert "command terminated with exit code 3" in out.stderr
    # a POST with Upgrade: SPDY/3.1 (a WebSocket upgrade is a GET)
    assert 'verb="POST"' in out.stderr or "POST https://" in out.stderr
    with srv.model() as cluster:
        results = [m.result for m in cluster.trace.since(mark)
                   if m.src == "kubectl" and m.resource == "pods/exec"]
    assert results == ["101 Switching Protocols (SPDY/3.1, v5.channel.k8s.io), streaming"]
    cat = spdy_kubectl(kubectl_bin, kubeconfig, "exec", "-i", "web", "--", "cat",
                       stdin="line 1\nline 2\n")
    assert (cat.returncode, cat.stdout) == (0, "line 1\nline 2\n")
    script = spdy_kubectl(kubectl_bin, kubeconfig, "exec", "-i", "web", "--", "sh",
                          stdin="echo $HOSTNAME\nexit 4\necho never\n")
    assert (script.returncode, script.stdout) == (4, "web\n")
    missing = spdy_kubectl(kubectl_bin, kubeconfig, "exec", "ghost", "--", "true")
    assert missing.returncode == 1 and \
        'Error from server (NotFound): pods "ghost" not found' in missing.stderr


def test_a_terminal_over_spdy_reads_the_resize_stream(kubeconfig: Path,
                                                      kubectl_bin: str) -> None:
    import pexpect

    env = {**os.environ, "KUBECONFIG": str(kubeconfig),
           "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
    child = pexpect.spawn(kubectl_bin, ["exec", "-it", "web", "--", "sh"], env=env,
                          dimensions=(33, 101), timeout=20)
    child.expect_exact("/ # ")
    child.send("stty size\r")
    child.expect_exact("/ # ")
    assert child.before == b"stty size\r\n33 101\r\n"
    child.setwinsize(40, 120)
    time.sleep(0.3)
    child.send("stty size\r")
    child.expect_exact("/ # ")
    assert child.before == b"stty size\r\n40 120\r\n"
    child.send("exit 7\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 7


def test_a_protocol_the_server_does_not_speak_is_refused_before_the_upgrade(
        srv: server.ModelServer) -> None:
    ctx = ssl.create_default_context(cadata=srv.pki.ca.cert_pem.decode())
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=5)
    conn.request("POST", "/api/v1/namespaces/default/pods/web/exec?command=true&stdout=true",
                 headers={"Authorization": f"Bearer {srv.token}", "Connection": "Upgrade",
                          "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "channel.k8s.io"})
    resp = conn.getresponse()
    body: Any = resp.read().decode()
    assert resp.status == 403 and (
        "unable to upgrade: unable to negotiate protocol: client supports "
        "['channel.k8s.io'], server supports ['v5.channel.k8s.io', 'v4.channel.k8s.io']") in body
