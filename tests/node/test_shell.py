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


def test_an_interactive_shell_runs_each_line_as_it_arrives():
    from k8sbook.node.shell import Interactive

    sh = Interactive(proc(winsize=lambda: (40, 120)), interactive=True)
    assert sh.take() == [(2, "/ # ")]  # ash writes its prompt to stderr
    sh.feed("echo $A")
    assert sh.take() == []  # not a whole line yet
    sh.feed("\nfalse\necho $?\n")
    assert sh.take() == [(1, "1\n"), (2, "/ # "), (2, "/ # "), (1, "1\n"), (2, "/ # ")]
    sh.feed("echo 'one\n")  # an open quote: the command goes on, with PS2
    assert sh.take() == [(2, "> ")]
    sh.feed("two'\nstty size\n")
    assert sh.take() == [(1, "one\ntwo\n"), (2, "/ # "), (1, "40 120\n"), (2, "/ # ")]
    sh.interrupt()
    assert sh.take() == [(2, "\n"), (2, "/ # ")] and sh.last == 130
    sh.feed("exit 4\necho never\n")
    assert sh.exit_code == 4 and sh.take() == []


def test_without_a_terminal_no_prompt_and_eof_ends_with_the_last_status():
    from k8sbook.node.shell import Interactive, reads_stdin

    sh = Interactive(proc())
    sh.feed("cat /nope\nstty size\necho tail")
    assert sh.take() == [(2, "cat: can't open '/nope': No such file or directory\n"),
                         (2, "stty: standard input: Not a tty\n")]
    sh.eof()  # the unterminated last line runs, then the shell exits with its status
    assert sh.take() == [(1, "tail\n")] and sh.exit_code == 0
    assert [reads_stdin(a) for a in (["sh"], ["sh", "-c", "cat"], ["cat"], ["cat", "-"],
                                     ["cat", "/etc/hostname"], ["tar", "-xmf", "-"],
                                     ["tar", "cf", "-", "/tmp"], ["ls"])] == \
        [True, False, True, True, False, True, False, False]


def test_new_lines_inside_quotes_stay_in_the_word():
    assert run(["sh", "-c", "echo 'a\nb'\necho c"], proc()).output == "a\nb\nc\n"
    assert run(["sh", "-c", "false &&\necho no\necho $?"], proc()).output == "1\n"
