"""exec and cp over WebSocket (k8sbook.serve.streams) with the real kubectl, both versions,
and with the official Python client; what they print is compared with what the model holds."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.stream import stream

from k8sbook.serve import server
from tests.serve.conftest import Kubectl


@pytest.fixture(scope="module")
def web(srv: server.ModelServer) -> str:
    """A running pod ``web`` with one container ``app``."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
           "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                    "env": [{"name": "MODE", "value": "test"}]}]}}
    with srv.model() as cluster:
        cluster.admin().create(pod)
    wait_for(lambda: phase(srv, "web") == "Running")
    return "web"


def phase(srv: server.ModelServer, name: str) -> str:
    with srv.model() as cluster:
        pod = cluster.apiserver.cached("pods", "default", name) or {}
    return str(pod.get("status", {}).get("phase", ""))


def wait_for(cond: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_exec_prints_stdout_and_stderr_and_returns_the_exit_code(
        srv: server.ModelServer, web: str, kubectl: Kubectl) -> None:
    out = kubectl("exec", web, "--", "printenv", "MODE")
    assert (out.returncode, out.stdout) == (0, "test\n")
    failed = kubectl("exec", web, "--", "sh", "-c", "echo out; cat /nope; exit 3")
    assert failed.returncode == 3 and failed.stdout == "out\n"
    assert failed.stderr == ("cat: can't open '/nope': No such file or directory\n"
                             "command terminated with exit code 3\n")
    # the hostname the runtime wrote into the container is the pod's name
    assert kubectl("exec", web, "--", "cat", "/etc/hostname").stdout == "web\n"


def test_exec_reads_stdin_until_the_client_closes_it(web: str, kubectl: Kubectl) -> None:
    assert kubectl("exec", "-i", web, "--", "cat", stdin="line 1\nline 2\n").stdout == \
        "line 1\nline 2\n"
    script = kubectl("exec", "-i", web, "--", "sh", stdin="echo a\nexit 4\necho never\n")
    assert (script.returncode, script.stdout) == (4, "a\n")


def test_exec_errors_before_the_upgrade_are_api_errors(web: str, kubectl: Kubectl) -> None:
    missing = kubectl("exec", "ghost", "--", "true")
    assert (missing.returncode, missing.stderr) == (
        1, 'Error from server (NotFound): pods "ghost" not found\n')
    container = kubectl("exec", web, "-c", "nope", "--", "true")
    assert "container nope is not valid for pod web" in container.stderr
    binary = kubectl("exec", web, "--", "nosuch")
    assert binary.returncode == 126 and 'exec: "nosuch": executable file not found' in \
        binary.stderr


def test_cp_into_and_out_of_the_container(srv: server.ModelServer, web: str, kubectl: Kubectl,
                                          tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("written on the host\n")
    put = kubectl("cp", "notes.txt", f"{web}:/tmp/notes.txt", cwd=tmp_path)
    assert put.returncode == 0, put.stderr
    with srv.model() as cluster:
        kubelet = cluster.components["kubelet/" + _node(cluster, web)]
        cid = kubelet.container_id("default", web, "app")  # type: ignore[attr-defined]
        held = kubelet.runtime.read_file(cid, "/tmp/notes.txt")  # type: ignore[attr-defined]
    assert held == "written on the host\n"
    got = kubectl("cp", f"{web}:/tmp/notes.txt", "back.txt", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "back.txt").read_text() == "written on the host\n"
    assert kubectl("exec", web, "--", "ls", "/tmp").stdout == "notes.txt\n"


def _node(cluster: Any, pod: str) -> str:
    return str(cluster.apiserver.cached("pods", "default", pod)["spec"]["nodeName"])


def test_the_trace_shows_the_upgrade_and_every_hop(srv: server.ModelServer, web: str,
                                                   kubectl: Kubectl) -> None:
    with srv.model() as cluster:
        start = cluster.trace.mark()
    assert kubectl("exec", web, "--", "sh", "-c", "exit 2").returncode == 2
    with srv.model() as cluster:
        msgs = cluster.trace.since(start)
        paths = set(cluster.trace.paths(msgs))
    exec_msgs = [m for m in msgs if m.src == "kubectl" and m.resource == "pods/exec"]
    assert [m.result for m in exec_msgs] == [
        "101 Switching Protocols (v5.channel.k8s.io), exit code 2"]
    assert {"kubectl->kube-apiserver", "kube-apiserver->kubelet", "kubelet->container-runtime",
            "container-runtime->oci-runtime"} <= paths


def test_python_client_exec(srv: server.ModelServer, web: str, kubeconfig: Path) -> None:
    api = k8s_config.new_client_from_config(config_file=str(kubeconfig))
    v1 = k8s_client.CoreV1Api(api)
    out = stream(v1.connect_get_namespaced_pod_exec, web, "default",
                 command=["sh", "-c", "echo $HOSTNAME"], stderr=True, stdin=False,
                 stdout=True, tty=False)
    assert out == "web\n"
    resp = stream(v1.connect_get_namespaced_pod_exec, web, "default",
                  command=["sh", "-c", "exit 5"], stderr=True, stdin=False, stdout=True,
                  tty=False, _preload_content=False)
    resp.run_forever(timeout=2)
    assert resp.returncode == 5
    status = json.loads(resp.read_channel(3) or "{}") if resp.is_open() else None
    assert status is None or status.get("reason") == "NonZeroExitCode"


def test_a_plain_request_without_upgrade_is_refused(srv: server.ModelServer, web: str) -> None:
    from tests.serve.test_server import raw
    code, body = raw(srv, "POST", f"/api/v1/namespaces/default/pods/{web}/exec?command=ls")
    assert (code, body["reason"], body["message"]) == (400, "BadRequest",
                                                       "Upgrade request required")


def test_run_i_attaches_to_the_main_shell_and_returns_its_exit_code(
        srv: server.ModelServer, kubectl: Kubectl) -> None:
    minor = kubectl("version", "--client", "-o", "json").stdout.split('"minor": "')[1][:2]
    name = f"shell-{minor}"
    out = kubectl("run", name, "-i", "--rm", "--restart=Never", "--image=busybox:1.37", "--",
                  "sh", stdin="echo hello from $HOSTNAME\nexit 0\n")
    assert out.returncode == 0, out.stderr
    assert f"hello from {name}\n" in out.stdout and f'pod "{name}" deleted' in out.stdout
    failed = kubectl("run", name + "-x", "-i", "--restart=Never", "--image=busybox:1.37", "--",
                     "sh", stdin="echo bye\nexit 2\n")
    assert failed.returncode == 2 and "bye\n" in failed.stdout
    with srv.model() as cluster:
        pod = cluster.apiserver.cached("pods", "default", name + "-x")
    # the shell was the container's main process: its exit ended the container
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    assert kubectl("logs", name + "-x").stdout.splitlines()[1:] == [
        "bye", f"{name}-x: exited with code 2"]


# -- interactive sessions, driven through a pseudo-terminal as a learner types ------------------
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def spawn(kubectl: Kubectl, *args: str, rows: int = 24, cols: int = 80) -> Any:
    """The real kubectl on a pseudo-terminal of ``rows`` x ``cols`` (pexpect)."""
    import pexpect

    return pexpect.spawn(kubectl.binary, list(args), env=kubectl.env,  # type: ignore[attr-defined]
                         dimensions=(rows, cols), timeout=20)


def minor(kubectl: Kubectl) -> str:
    return str(kubectl("version", "--client", "-o", "json").stdout.split('"minor": "')[1][:2])


def test_exec_it_sh_is_a_terminal_session(srv: server.ModelServer, web: str,
                                          kubectl: Kubectl) -> None:
    import pexpect

    child = spawn(kubectl, "exec", "-it", web, "--", "sh", rows=33, cols=101)
    child.expect_exact("/ # ")  # ash's prompt: stdin is a terminal
    child.send("echo hello $MODE\r")  # Enter sends \r; the container's pty echoes
    child.expect_exact("/ # ")
    assert child.before == b"echo hello $MODE\r\nhello test\r\n"
    child.send("stty size\r")  # the size kubectl sent on the resize channel
    child.expect_exact("/ # ")
    assert child.before == b"stty size\r\n33 101\r\n"
    child.setwinsize(40, 120)  # SIGWINCH: kubectl sends the new size
    time.sleep(0.3)
    child.send("stty size\r")
    child.expect_exact("/ # ")
    assert child.before == b"stty size\r\n40 120\r\n"
    # the ServiceAccount admission plugin's volume, mounted by the kubelet
    child.send(f"cat {SA_DIR}/namespace; echo; ls {SA_DIR}\r")
    child.expect_exact("/ # ")
    # ls on a terminal: columns, as wide as the longest name and two spaces
    assert child.before.split(b"\r\n")[1:-1] == [b"default", b"ca.crt     namespace  token"]
    child.send("ech\x7fho bye\x03")  # DEL rubs out, ^C drops the line: a new prompt
    child.expect_exact("/ # ")
    assert child.before == b"ech\b \bho bye^C\r\n"
    child.send("exit 3\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    assert child.before == b"exit 3\r\ncommand terminated with exit code 3\r\n"


def test_ctrl_d_ends_a_terminal_session_with_the_last_status(web: str, kubectl: Kubectl) -> None:
    import pexpect

    child = spawn(kubectl, "exec", "-it", web, "--", "sh")
    child.expect_exact("/ # ")
    child.send("false\r")
    child.expect_exact("/ # ")
    child.send("\x04")  # ^D at an empty line: end of input
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1


def test_exec_i_runs_each_line_before_stdin_closes(srv: server.ModelServer, web: str,
                                                  kubectl: Kubectl) -> None:
    import pexpect

    child = spawn(kubectl, "exec", "-i", web, "--", "sh")  # no -t: no prompt, no echo
    child.sendline("echo one; hostname")
    child.expect_exact("one\r\nweb\r\n")  # answered while stdin is still open
    with srv.model() as cluster:
        kubelet = cluster.components["kubelet/" + _node(cluster, web)]
        running = [c for c in kubelet.runtime.containers.values()  # type: ignore[attr-defined]
                   if c.name == "app" and c.state == "CONTAINER_RUNNING"]
    assert running  # the container still runs, and so does the session's shell
    child.sendline("exit 6")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 6
    child = spawn(kubectl, "exec", "-i", web, "--", "sh")
    child.sendline("true")
    child.sendeof()  # ^D on kubectl's own terminal: kubectl closes stdin (v5's close)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_run_it_rm_attaches_to_the_main_shell_on_its_terminal(srv: server.ModelServer,
                                                               kubectl: Kubectl) -> None:
    import pexpect

    name = f"term-{minor(kubectl)}"
    child = spawn(kubectl, "run", name, "-it", "--rm", "--restart=Never",
                  "--image=busybox:1.37", "--", "sh")
    child.expect_exact("If you don't see a command prompt, try pressing enter.")
    child.send("\r")
    child.expect_exact("/ # ")
    child.send("echo $HOSTNAME\r")
    child.expect_exact("/ # ")
    assert child.before == f"echo $HOSTNAME\r\n{name}\r\n".encode()
    child.send("exit 5\r")
    child.expect(pexpect.EOF, timeout=40)
    child.close()
    assert child.exitstatus == 5  # the container's exit code (kubectl waits for the pod)
    assert f'pod "{name}" deleted'.encode() in child.before
    assert phase(srv, name) == ""


def test_attach_it_joins_a_running_main_shell(srv: server.ModelServer,
                                              kubectl: Kubectl) -> None:
    import pexpect

    name = f"tty-{minor(kubectl)}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"restartPolicy": "Never", "containers": [{
               "name": "sh", "image": "busybox:1.37", "command": ["sh"],
               "stdin": True, "tty": True}]}}
    with srv.model() as cluster:
        cluster.admin().create(pod)
    wait_for(lambda: phase(srv, name) == "Running")
    child = spawn(kubectl, "attach", "-it", name)
    child.expect_exact("If you don't see a command prompt, try pressing enter.")
    child.send("\r")
    child.expect_exact("/ # ")
    child.send("export\r")  # not one of the image's applets
    child.expect_exact("/ # ")
    assert b"sh: export: not found" in child.before
    child.send("exit 0\r")
    child.expect(pexpect.EOF, timeout=40)
    child.close()
    assert child.exitstatus == 0
    wait_for(lambda: phase(srv, name) == "Succeeded")


def test_the_service_account_admission_plugin_runs_in_serve(srv: server.ModelServer,
                                                            kubectl: Kubectl) -> None:
    """kubeadm's apiserver runs the ServiceAccount admission plugin: a pod naming an account
    that does not exist is refused with upstream's message and not stored."""
    name = f"ghost-sa-{minor(kubectl)}"
    out = kubectl("run", name, "--image=busybox:1.37", "--restart=Never",
                  '--overrides={"spec": {"serviceAccountName": "ghost"}}')
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f'Error from server (Forbidden): pods "{name}" is forbidden: error looking up service '
        'account default/ghost: serviceaccount "ghost" not found')
    assert phase(srv, name) == ""
    with srv.model() as cluster:
        roots = [cm["metadata"]["namespace"] for cm in cluster.apiserver.cached_objects(
            "configmaps") if cm["metadata"]["name"] == "kube-root-ca.crt"]
    assert {"default", "kube-node-lease", "kube-public", "kube-system"} <= set(roots)
