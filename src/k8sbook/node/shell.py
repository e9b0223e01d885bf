"""The commands a modelled container can run: a tiny BusyBox ``sh``.

Mirrors what ``runc exec`` starts in a container built from a small image (BusyBox's ``sh``
and applets, ``busybox/shell/ash.c`` and ``coreutils``): the process sees the container's
files (what the runtime mounted: ``/etc/resolv.conf``, ``/etc/hostname``, ``/etc/hosts``, the
service-account token and other volume files) and its environment (what the kubelet put in
``CreateContainer``: the container's ``env`` and ``KUBERNETES_SERVICE_HOST``/``_PORT``).

Commands: ``echo [-n]``, ``cat [FILE|-]...`` (no file, or ``-``: standard input), ``env``,
``printenv [NAME]``, ``hostname``, ``true``, ``false``, ``exit [N]``, ``sleep N``,
``test -d|-e|-f PATH``, ``ls [PATH]``, ``tar cf - PATH...`` and ``tar -xmf - [-C DIR]`` (what
``kubectl cp`` runs, :mod:`tar_applet`), ``nc -z HOST PORT`` and ``wget -qO- URL``
(these two open a connection from the pod's network namespace), ``sh -c SCRIPT`` and ``sh``
reading its script from standard input, where a script is commands joined by ``;``, ``&&``,
``||`` or new lines, with ``$NAME``, ``${NAME}`` and ``$?`` expanded (quotes group words;
single quotes do not stop expansion, a simplification).

Errors are BusyBox's: ``cat: can't open 'x': No such file or directory`` (exit 1) and, in a
script, ``sh: foo: not found`` (exit 127). A command that is not a known binary, run directly
by ``exec`` (not through ``sh``), fails in the OCI runtime as runc reports it: ``OCI runtime
exec failed: exec failed: unable to start container process: exec: "foo": executable file
not found in $PATH: unknown``, exit code 126 (what ``kubectl exec`` prints as ``command
terminated with exit code 126``).

Standard input is what the caller wrote before closing it (``run(argv, proc, stdin)``);
standard output and standard error are kept apart (:attr:`Result.stdout`,
:attr:`Result.stderr`, what ``kubectl exec`` gets on channels 1 and 2) and together in the order
written (:attr:`Result.output`, what ``ExecSync`` callers such as probes read). Data is text; bytes
that are not UTF-8 (a tar archive) travel as ``surrogateescape`` characters, so they come back
out unchanged. Files a process writes go where :attr:`Process.write` puts them (the runtime:
the container's writable layer, or a writable mount).

A shell that reads its script from standard input (``sh`` with no ``-c``) can also run line
by line as the input arrives (:class:`Interactive`: what ``kubectl exec -i ... -- sh`` and an
attach to a main ``sh`` drive): each complete line (a line with an unclosed quote waits for
the next, with the ``PS2`` prompt ``"> "``) runs at once, ``$?`` carries over, ``exit N`` ends
it with ``N``, and the end of input with the last status. When its standard input is a
terminal it is interactive, as ash is: it prints its prompt, BusyBox's default ``PS1``
``"\\w \\$ "`` for root in ``/``, that is ``"/ # "``, before each line, a new prompt after an
interrupt (^C), and ``stty size`` prints the terminal's rows and columns.

Simplified: the model is synchronous, so ``sleep`` inside ``exec`` returns at once (its
seconds are counted in :attr:`Result.slept`, the clock does not move); commands inside a
script read no standard input (``cat`` with no file in ``sh -c`` or at the prompt reads
nothing); there is no working directory (``cd``) and the prompt is always ``"/ # "``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from k8sbook.node import tar_applet

#: the applets the model's image has (``/bin/<name>``)
BINARIES = ("cat", "echo", "env", "exit", "false", "hostname", "ls", "nc", "printenv", "sh",
            "sleep", "stty", "tar", "test", "true", "wget")
#: ash's prompts for root in ``/`` (``PS1`` ``"\w \$ "``, ``PS2`` ``"> "``)
PS1, PS2 = "/ # ", "> "

#: ``dial(host, port, path) -> (status or None when refused, body)``
Dialer = Callable[[str, int, str], tuple[int | None, str]]


@dataclass(slots=True)
class Process:
    """What a process in the container sees."""

    files: Callable[[str], str | None]
    env: dict[str, str] = field(default_factory=dict)
    hostname: str = ""
    dial: Dialer | None = None
    #: ``write(path, text)``: False when the path is read-only (None: nothing is writable)
    write: Callable[[str, str], bool] | None = None
    #: every path the process can see (for ``ls`` and ``tar`` of a directory)
    paths: Callable[[], list[str]] | None = None
    #: the terminal's (rows, columns) when standard input is one (None: not a terminal)
    winsize: Callable[[], tuple[int, int]] | None = None


@dataclass(slots=True)
class Result:
    exit_code: int
    #: standard output and standard error, interleaved as written
    output: str
    slept: float = 0.0
    stdout: str = ""
    stderr: str = ""


class Output:
    """What a process writes: ``append``/``extend`` to standard output, ``err`` to standard
    error, both kept in order."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, str]] = []

    def append(self, text: str) -> None:
        self.chunks.append((1, text))

    def extend(self, texts: Iterable[str]) -> None:
        for t in texts:
            self.append(t)

    def err(self, text: str) -> None:
        self.chunks.append((2, text))

    def result(self, code: int, slept: float) -> Result:
        return Result(code, "".join(t for _, t in self.chunks), slept,
                      "".join(t for fd, t in self.chunks if fd == 1),
                      "".join(t for fd, t in self.chunks if fd == 2))


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def not_found_in_path(name: str) -> str:
    """runc's error for a binary that is not in the image."""
    return ("OCI runtime exec failed: exec failed: unable to start container process: "
            f'exec: "{name}": executable file not found in $PATH: unknown')


def run(argv: list[str], proc: Process, stdin: str = "") -> Result:
    """Run ``argv`` as ``exec`` would (no shell unless ``argv`` is ``sh``), with ``stdin``."""
    if not argv:
        msg = not_found_in_path("") + "\n"
        return Result(126, msg, stderr=msg)
    name = argv[0].rsplit("/", 1)[-1]
    if name not in BINARIES:
        msg = not_found_in_path(argv[0]) + "\n"
        return Result(126, msg, stderr=msg)
    out = Output()
    slept = [0.0]
    try:
        code = _command(argv, proc, out, slept, last=0, stdin=stdin)
    except _Exit as e:
        code = e.code
    return out.result(code, slept[0])


def _expand(word: str, proc: Process, last: int) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group(1) or m.group(2)
        return str(last) if key == "?" else proc.env.get(key, "")
    return re.sub(r"\$\{(\w+)\}|\$(\w+|\?)", sub, word)


#: the shells of the model's images
SHELLS = ("sh", "ash", "bash")


def reads_script(command: list[str]) -> bool:
    """Whether ``command`` is a shell that reads its script from stdin (no ``-c``)."""
    return bool(command) and command[0].rsplit("/", 1)[-1] in SHELLS and "-c" not in command


def reads_stdin(argv: list[str]) -> bool:
    """Whether ``argv`` reads its standard input: ``sh`` with no ``-c`` (its script), ``cat``
    with no file or ``-``, ``tar`` extracting from ``-f -``. Other commands never read it, so
    a session runs them at once, whatever its stdin."""
    if not argv:
        return False
    name, args = argv[0].rsplit("/", 1)[-1], argv[1:]
    if name == "sh":
        return "-c" not in args
    if name == "cat":
        return not args or "-" in args
    return name == "tar" and bool(args) and "x" in args[0] and "-" in args[1:]


class Interactive:
    """``sh`` reading its script from standard input as the input arrives (see the module's
    docstring). :meth:`feed` takes what arrived, :meth:`interrupt` is a SIGINT, :meth:`eof`
    the end of input; :meth:`take` returns what the shell wrote since the last call, as
    (stream, text) pairs (1 stdout, 2 stderr); :attr:`exit_code` is set once it has ended."""

    def __init__(self, proc: Process, *, interactive: bool = False) -> None:
        self.proc = proc
        self.interactive = interactive
        self.out = Output()
        self.pending = ""  # the partial line not yet ended by a newline
        self.buffered = ""  # complete lines of a command still open (an unclosed quote)
        self.last = 0
        self.exit_code: int | None = None
        self.slept = 0.0
        self._prompt()

    def _prompt(self) -> None:
        if self.interactive and self.exit_code is None:
            self.out.err(PS2 if self.buffered else PS1)  # ash writes its prompt to stderr

    def feed(self, text: str) -> None:
        self.pending += text
        while "\n" in self.pending and self.exit_code is None:
            line, self.pending = self.pending.split("\n", 1)
            self._line(line + "\n")

    def _line(self, line: str) -> None:
        text = self.buffered + line
        try:
            shlex.split(text)
        except ValueError:  # "No closing quotation": the command goes on on the next line
            self.buffered = text
            self._prompt()
            return
        self.buffered = ""
        slept = [0.0]
        try:
            self.last = _script(text, self.proc, self.out, slept, self.last)
        except _Exit as e:
            self.exit_code = e.code
        self.slept += slept[0]
        self._prompt()

    def interrupt(self) -> None:
        """SIGINT at the prompt: the line is dropped, ``$?`` is 130, a new prompt."""
        if self.exit_code is None:
            self.pending = self.buffered = ""
            self.last = 130
            if self.interactive:
                self.out.err("\n")
            self._prompt()

    def eof(self) -> None:
        """The end of standard input: a last unterminated line runs, then the shell exits
        with the last status."""
        if self.exit_code is None and (self.pending or self.buffered):
            rest, self.pending = self.pending, ""
            self._line(rest)
        if self.exit_code is None:
            self.exit_code = self.last

    def take(self) -> list[tuple[int, str]]:
        chunks, self.out.chunks = self.out.chunks, []
        return chunks


def _operator(word: str) -> str:
    """A run of operator characters as the lexer gives it: a new line ends a command as
    ``;`` does, and after ``&&`` or ``||`` it only continues the line."""
    if not word or not set(word) <= set(";&|\n"):
        return word
    core = word.replace("\n", "")
    return core or ";"


def _script(text: str, proc: Process, out: Output, slept: list[float], last: int = 0) -> int:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|\n")
    lexer.whitespace = " \t\r"  # a new line is an operator (inside quotes: part of a word)
    lexer.whitespace_split = True
    words = [_operator(w) for w in lexer]
    op = ";"
    cmd: list[str] = []
    for w in [*words, ";"]:
        if w in (";", "&&", "||"):
            if cmd:
                run_it = op == ";" or (op == "&&" and last == 0) or (op == "||" and last != 0)
                if run_it:
                    argv = [_expand(x, proc, last) for x in cmd]
                    if argv[0].rsplit("/", 1)[-1] not in BINARIES:
                        out.err(f"sh: {argv[0]}: not found\n")
                        last = 127
                    else:
                        last = _command(argv, proc, out, slept, last)
            cmd, op = [], w
        else:
            cmd.append(w)
    return last


def _command(argv: list[str], proc: Process, out: Output, slept: list[float],
             last: int, stdin: str = "") -> int:
    name, args = argv[0].rsplit("/", 1)[-1], argv[1:]
    if name == "sh":
        if len(args) >= 2 and args[0] == "-c":
            return _script(args[1], proc, out, slept)
        return _script(stdin, proc, out, slept)  # the script is read from standard input
    if name in ("tar", "ls", "test"):
        return tar_applet.run(name, args, files_of(proc), out, stdin)
    if name == "echo":
        newline = not (args and args[0] == "-n")
        out.append(" ".join(args[0 if newline else 1:]) + ("\n" if newline else ""))
        return 0
    if name == "cat":
        code = 0
        for path in args or ["-"]:
            text = stdin if path == "-" else proc.files(path)
            if text is None:
                out.err(f"cat: can't open '{path}': No such file or directory\n")
                code = 1
            else:
                out.append(text)
        return code
    if name == "env":
        out.extend(f"{k}={v}\n" for k, v in sorted(proc.env.items()))
        return 0
    if name == "printenv":
        if not args:
            out.extend(f"{k}={v}\n" for k, v in sorted(proc.env.items()))
            return 0
        found = [proc.env[a] for a in args if a in proc.env]
        out.extend(f"{v}\n" for v in found)
        return 0 if len(found) == len(args) else 1
    if name == "hostname":
        out.append(proc.hostname + "\n")
        return 0
    if name in ("true", "false"):
        return 0 if name == "true" else 1
    if name == "stty":
        if proc.winsize is None:
            out.err("stty: standard input: Not a tty\n")
            return 1
        if args == ["size"]:
            rows, cols = proc.winsize()
            out.append(f"{rows} {cols}\n")
            return 0
        out.err(f"stty: invalid argument '{' '.join(args)}'\n")
        return 1
    if name == "exit":
        raise _Exit(int(args[0]) if args else last)
    if name == "sleep":
        slept[0] += float(args[0]) if args else 0.0
        return 0
    if name == "nc":
        target = [a for a in args if not a.startswith("-")][:2]
        status, _ = _dial(proc, target[0], int(target[1]), "/")
        return 0 if status is not None else 1
    # wget -qO- URL
    url = args[-1] if args else ""
    m = re.match(r"^(?:http://)?([^/:]+)(?::(\d+))?(/.*)?$", url)
    if not m:
        out.err(f"wget: bad address '{url}'\n")
        return 1
    host, port, path = m.group(1), int(m.group(2) or 80), m.group(3) or "/"
    status, body = _dial(proc, host, port, path)
    if status is None:
        out.err(f"wget: can't connect to remote host ({host}): Connection refused\n")
        return 1
    if status >= 400:
        out.err(f"wget: server returned error: HTTP/1.1 {status}\n")
        return 1
    out.append(body)
    return 0


def files_of(proc: Process) -> tar_applet.Files:
    """The process's view of the file system, for the file applets."""
    width = (proc.winsize()[1] or 80) if proc.winsize is not None else 0  # 80: no size yet
    return tar_applet.Files(proc.files, proc.write, proc.paths, width)


def _dial(proc: Process, host: str, port: int, path: str) -> tuple[int | None, str]:
    if proc.dial is None:
        return None, ""
    return proc.dial(host, port, path)
