"""The file applets of the model's BusyBox: ``tar``, ``ls`` and ``test``.

Mirrors BusyBox's ``archival/tar.c``, ``coreutils/ls.c`` and ``coreutils/test.c`` for what
``kubectl cp`` needs: ``kubectl cp`` copies by running ``tar`` in the container over exec
(``k8s.io/kubectl/pkg/cmd/cp``): into a container ``tar -xmf - [-C DIR]`` (with
``--no-same-permissions --no-same-owner``) reading the archive kubectl writes to standard
input, after ``test -d DEST`` to learn whether the destination is a directory; out of a
container ``tar cf - PATH``, whose archive kubectl reads from standard output. The archive is
the POSIX ustar/pax format of Python's :mod:`tarfile` (the standard library's reader and
writer), so what kubectl sends and reads is a real tar stream.

Directories are implicit: a directory exists where a file under it exists (the model keeps
files, not inodes). Member times are 0 (the model's files carry no times), owners root.
Messages are BusyBox's: ``tar: removing leading '/' from member names``,
``ls: /x: No such file or directory``. ``ls`` writes one name a line, or, when its standard
output is a terminal, columns across the terminal's width.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

ENCODING, ERRORS = "utf-8", "surrogateescape"


class Out(Protocol):
    def append(self, text: str) -> None: ...

    def err(self, text: str) -> None: ...


@dataclass(frozen=True)
class Files:
    """A process's view of the files: read one, write one, list all."""

    read: Callable[[str], str | None]
    write: Callable[[str, str], bool] | None = None
    paths: Callable[[], list[str]] | None = None
    #: the terminal's width when standard output is one (0: not a terminal)
    columns: int = 0

    def all(self) -> list[str]:
        return sorted(self.paths()) if self.paths is not None else []

    def is_dir(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return path.rstrip("/") == "" or any(p.startswith(prefix) for p in self.all())

    def under(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return [p for p in self.all() if p.startswith(prefix)]


def _abs(path: str, cwd: str = "/") -> str:
    return posixpath.normpath(posixpath.join(cwd, path))


def run(name: str, args: list[str], files: Files, out: Out, stdin: str) -> int:
    if name == "test":
        return _test(args, files)
    if name == "ls":
        return _ls(args, files, out)
    return _tar(args, files, out, stdin)


def _test(args: list[str], files: Files) -> int:
    if len(args) != 2:
        return 1 if not args else 0  # ``test`` alone is false; ``test STRING`` is true
    op, path = args[0], _abs(args[1])
    is_file = files.read(path) is not None
    is_dir = files.is_dir(path)
    ok = {"-d": is_dir, "-f": is_file, "-e": is_file or is_dir}.get(op, False)
    return 0 if ok else 1


def _ls(args: list[str], files: Files, out: Out) -> int:
    code = 0
    for arg in [a for a in args if not a.startswith("-")] or ["/"]:
        path = _abs(arg)
        if files.read(path) is not None:
            out.append(arg + "\n")
        elif files.is_dir(path):
            base = path.rstrip("/") + "/"
            names = sorted({p[len(base):].split("/", 1)[0] for p in files.under(path)})
            for line in _columns(names, files.columns):
                out.append(line)
        else:
            out.err(f"ls: {arg}: No such file or directory\n")
            code = 1
    return code


def _columns(names: list[str], width: int) -> list[str]:
    """``ls``'s lines: one name a line unless standard output is a terminal; on one, as
    many columns as fit its width, each as wide as the longest name and two spaces, filled
    top to bottom (``display_files`` in ``coreutils/ls.c``)."""
    if not width or not names:
        return [n + "\n" for n in names]
    column = max(len(n) for n in names) + 2
    ncols = max(width // column, 1)
    nrows = -(-len(names) // ncols)
    lines = []
    for row in range(nrows):
        cells = [names[c * nrows + row] for c in range(ncols) if c * nrows + row < len(names)]
        lines.append("".join(n.ljust(column) for n in cells[:-1]) + cells[-1] + "\n")
    return lines


def _options(args: list[str]) -> tuple[str, str, str, list[str]]:
    """(mode ``c`` or ``x``, archive file, ``-C`` directory, operands) from BusyBox's
    option forms: ``cf -``, ``-xmf -``, ``--no-same-owner``, ``-C DIR``."""
    mode, archive, directory, operands = "", "", "/", []
    it = iter(args)
    first = True
    for a in it:
        if a.startswith("--"):
            continue  # --no-same-owner, --no-same-permissions: the model has no owners
        if a == "-C":
            directory = next(it, "/")
        elif first or (a.startswith("-") and len(a) > 1):
            for ch in a.lstrip("-"):
                if ch in "cx":
                    mode = ch
                elif ch == "f":
                    archive = next(it, "-")
        else:
            operands.append(a)
        first = False
    return mode, archive, directory, operands


def _tar(args: list[str], files: Files, out: Out, stdin: str) -> int:
    mode, archive, directory, operands = _options(args)
    if archive not in ("", "-"):
        out.err(f"tar: can't open '{archive}': Read-only file system\n")
        return 1
    if mode == "c":
        return _create(operands, files, out, directory)
    if mode == "x":
        return _extract(stdin, files, out, directory)
    out.err("tar: need exactly one of -c, -x or -t\n")
    return 1


def _create(operands: list[str], files: Files, out: Out, cwd: str) -> int:
    buf = io.BytesIO()
    code = 0
    warned = False
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for operand in operands:
            path = _abs(operand, cwd)
            if operand.startswith("/") and not warned:
                out.err("tar: removing leading '/' from member names\n")
                warned = True
            members = [path] if files.read(path) is not None else files.under(path)
            if not members:
                out.err(f"tar: {operand}: No such file or directory\n")
                code = 1
                continue
            for p in members:
                data = (files.read(p) or "").encode(ENCODING, ERRORS)
                info = tarfile.TarInfo(_member(operand, path, p))
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
    out.append(buf.getvalue().decode(ENCODING, ERRORS))
    return code


def _member(operand: str, root: str, path: str) -> str:
    """A member name as tar writes it: the operand as given, less a leading ``/``."""
    return (operand.rstrip("/") + path[len(root):]).lstrip("/")


def _extract(stdin: str, files: Files, out: Out, cwd: str) -> int:
    members: list[tuple[str, bytes]] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(stdin.encode(ENCODING, ERRORS)), mode="r:") as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isfile() else None
                if f is not None:
                    members.append((m.name, f.read()))
    except tarfile.TarError:
        out.err("tar: short read\n")
        return 1
    code = 0
    for name, data in members:
        target = _abs(name, cwd)
        if files.write is None or not files.write(target, data.decode(ENCODING, ERRORS)):
            out.err(f"tar: can't open '{name}': Read-only file system\n")
            code = 1
    return code
