"""Interactive exec and attach sessions on the runtime's streaming server
(node/containerd_streaming.py), opened through the kubelet's server as the apiserver opens
them: the streams flow as they are written."""

from urllib.parse import urlencode

from k8sbook.api import objects
from k8sbook.apiserver.kubelet_client import KUBELET_CLIENT_CERT
from tests.node.conftest import run_pod

SUCCESS = {"metadata": {}, "status": "Success"}


def open_session(k, path, tty=False, stdin=True, **query):
    q = urlencode([("input", "1"), ("output", "1"), *(("tty", "1") for _ in [1] if tty),
                   *query.items()])
    code, body = k.server.handle("POST", f"{path}?{q}", KUBELET_CLIENT_CERT, {},
                                 body={"session": {"stdin": stdin, "tty": tty}})
    assert code == 200, body
    session = body["session"]
    session.start()
    return session


def text(session):
    return [(ch, data.decode()) for ch, data in session.read()]


def test_exec_sh_runs_each_line_as_it_arrives(node_a):
    c, k = node_a
    run_pod(c)
    s = open_session(k, "/exec/default/web/app", command="sh")
    assert text(s) == [] and not s.done  # no terminal: no prompt
    s.write(b"echo one\n")
    assert text(s) == [(1, "one\n")] and not s.done  # before stdin is closed
    s.write(b"cat /nope\n")
    assert text(s) == [(2, "cat: can't open '/nope': No such file or directory\n")]
    s.close_stdin()  # EOF: the shell exits with the last status
    assert s.status["reason"] == "NonZeroExitCode" and \
        s.status["details"]["causes"] == [{"reason": "ExitCode", "message": "1"}]


def test_exec_with_a_terminal_echoes_prompts_and_sizes(node_a):
    c, k = node_a
    run_pod(c)
    s = open_session(k, "/exec/default/web/app", tty=True, command="sh")
    s.resize(100, 30)
    assert text(s) == [(1, "/ # ")]
    s.write(b"stty size\r")
    assert text(s) == [(1, "stty size\r\n"), (1, "30 100\r\n"), (1, "/ # ")]
    s.write(b"exit 3\r")
    assert s.status["message"] == ("command terminated with non-zero exit code: error "
                                   "executing command [sh], exit code 3")
    # ^D at an empty prompt ends the shell with the last status
    s = open_session(k, "/exec/default/web/app", tty=True, command="sh")
    s.write(b"true\r\x04")
    assert s.status == SUCCESS


def test_commands_that_do_not_read_stdin_run_at_once_and_a_killed_container_ends_them(node_a):
    c, k = node_a
    run_pod(c)
    s = open_session(k, "/exec/default/web/app", tty=True, command="hostname")
    assert text(s) == [(1, "web\r\n")] and s.status == SUCCESS  # stdin never closed
    s = open_session(k, "/exec/default/web/app", command="cat")  # reads stdin to its end
    s.write(b"a\n")
    s.write(b"b\n")
    assert text(s) == [] and not s.done
    s.close_stdin()
    assert text(s) == [(1, "a\nb\n")] and s.status == SUCCESS
    s = open_session(k, "/exec/default/web/app", command="sh")
    c.admin().delete("pods", "web", "default", grace_period_seconds=0)
    c.run_for(2)
    text(s)
    assert s.status["details"]["causes"] == [{"reason": "ExitCode", "message": "137"}]


def test_attach_with_a_terminal_feeds_the_main_shell_and_its_exit_ends_the_container(node_a):
    c, k = node_a
    pod = objects.pod("shell", node_name="node-a",
                      containers=[objects.container("app", "busybox:1.36")])
    pod["spec"]["containers"][0].update(command=["sh"], stdin=True, stdinOnce=True, tty=True)
    pod["spec"]["restartPolicy"] = "Never"
    c.admin().create(pod)
    c.run_for(2)
    rec = k.record("default", "shell")
    # the prompt the shell printed at start went to the log, before anyone attached
    assert k.read_container_log(rec, "app").splitlines()[-1].endswith("stdout F / # ")
    s = open_session(k, "/attach/default/shell/app", tty=True)  # tty: the container's
    assert text(s) == []
    s.write(b"\r")
    assert text(s) == [(1, "\r\n"), (1, "/ # ")]
    s.write(b"echo $HOSTNAME; exit 5\r")
    assert [t for _, t in text(s)][-1] == "shell\r\n" and s.status == SUCCESS
    c.run_for(2)
    status = c.admin().get("pods", "shell", "default")["status"]["containerStatuses"][0]
    assert status["state"]["terminated"]["exitCode"] == 5


def test_without_stdin_once_closing_stdin_only_detaches(node_a):
    c, k = node_a
    pod = objects.pod("keep", node_name="node-a",
                      containers=[objects.container("app", "busybox:1.36")])
    pod["spec"]["containers"][0].update(command=["sh"], stdin=True)  # no stdinOnce
    pod["spec"]["restartPolicy"] = "Never"
    c.admin().create(pod)
    c.run_for(2)
    first = open_session(k, "/attach/default/keep/app")
    first.write(b"false\n")
    first.close_stdin()
    assert first.status == SUCCESS  # the client detached ...
    c.run_for(2)
    status = c.admin().get("pods", "keep", "default")["status"]["containerStatuses"][0]
    assert "running" in status["state"]  # ... and the shell still runs
    second = open_session(k, "/attach/default/keep/app")
    second.write(b"echo $?\nexit 2\n")  # the same shell: $? is still false's
    assert text(second) == [(1, "1\n")]
    c.run_for(2)
    status = c.admin().get("pods", "keep", "default")["status"]["containerStatuses"][0]
    assert status["state"]["terminated"]["exitCode"] == 2
