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

Simplified: the model is synchronous, so ``sleep`` inside ``exec`` returns at once (its
seconds are counted in :attr:`Result.slept`, the clock does not move); a script runs once its
standard input is closed, not line by line as it arrives.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from k8sbook.node import tar_applet

#: the applets the model's image has (``/bin/<name>``)
BINARIES = ("cat", "echo", "env", "exit", "false", "hostname", "ls", "nc", "printenv", "sh",
            "sleep", "tar", "test", "true", "wget")

#: ``dial(host, port, path) -> (status or None when refused, body)``
Dialer = Callable[[str, int, str], tuple[int | None, str]]


@dataclass
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


@dataclass
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


def _script(text: str, proc: Process, out: Output, slept: list[float]) -> int:
    lexer = shlex.shlex(text.replace("\n", " ; "), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    words = list(lexer)
    last, op = 0, ";"
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
    return tar_applet.Files(proc.files, proc.write, proc.paths)


def _dial(proc: Process, host: str, port: int, path: str) -> tuple[int | None, str]:
    if proc.dial is None:
        return None, ""
    return proc.dial(host, port, path)
