"""The container's command interpreter (node/shell.py)."""

from k8sbook.node.shell import Process, run

FILES = {"/etc/hostname": "web\n", "/etc/resolv.conf": "nameserver 10.96.0.10\n"}


def proc(**kw):
    return Process(files=FILES.get, env={"A": "1", "HOSTNAME": "web"}, hostname="web", **kw)


def test_commands_and_scripts():
    assert run(["echo", "hi", "there"], proc()).output == "hi there\n"
    assert run(["cat", "/etc/hostname", "/etc/resolv.conf"], proc()).output == \
        "web\nnameserver 10.96.0.10\n"
    r = run(["sh", "-c", "echo hi; exit 3"], proc())
    assert (r.output, r.exit_code) == ("hi\n", 3)
    r = run(["sh", "-c", "false && echo no || echo yes; echo $A ${HOSTNAME} $?"], proc())
    assert (r.output, r.exit_code) == ("yes\n1 web 0\n", 0)
    assert run(["sh", "-c", "sleep 5; exit 1"], proc()).slept == 5
    assert run(["env"], proc()).output == "A=1\nHOSTNAME=web\n"
    assert run(["printenv", "A", "B"], proc()).exit_code == 1


def test_errors_are_busybox_and_runc_words():
    r = run(["cat", "/nope"], proc())
    assert (r.output, r.exit_code) == ("cat: can't open '/nope': No such file or directory\n", 1)
    r = run(["sh", "-c", "ps aux"], proc())
    assert (r.output, r.exit_code) == ("sh: ps: not found\n", 127)
    r = run(["ps"], proc())
    assert r.exit_code == 126 and 'exec: "ps": executable file not found in $PATH' in r.output


def test_network_commands_use_the_dialer():
    calls = []

    def dial(host, port, path):
        calls.append((host, port, path))
        return (200, "web") if port == 8080 else (None, "")
    p = proc(dial=dial)
    assert run(["wget", "-qO-", "http://10.244.0.2:8080/x"], p).output == "web"
    assert run(["nc", "-z", "localhost", "9090"], p).exit_code == 1
    assert calls == [("10.244.0.2", 8080, "/x"), ("localhost", 9090, "/")]


def test_stdin_and_the_two_output_streams():
    r = run(["cat"], proc(), stdin="typed\n")
    assert (r.stdout, r.stderr, r.exit_code) == ("typed\n", "", 0)
    r = run(["sh"], proc(), stdin="echo one\ncat /nope\necho two\n")
    assert r.stdout == "one\ntwo\n"
    assert r.stderr == "cat: can't open '/nope': No such file or directory\n"
    assert r.output == "one\n" + r.stderr + "two\n"  # interleaved as written
