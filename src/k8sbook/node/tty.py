"""The pseudo-terminal of a container process started with ``tty: true``.

Mirrors what runc allocates for such a process (a pty whose master containerd's shim holds,
``runc create --console-socket``; CRI ``Exec``/``Attach`` with ``tty``) and the Linux line
discipline between the two ends (``drivers/tty/n_tty.c``) with the termios a new pty has
(``tty_std_termios``): ``ICANON`` (input is handed to the process a line at a time), ``ECHO``,
``ECHOE``, ``ECHOCTL`` and ``ECHOK`` (what is typed is echoed, erased characters are rubbed
out with ``\\b \\b``, control characters echo as ``^X``), ``ICRNL`` (the Enter key's ``\\r``
becomes ``\\n``), ``ONLCR`` (the process's ``\\n`` goes out as ``\\r\\n``) and ``ISIG``, with
``VINTR`` ^C (SIGINT to the foreground process), ``VEOF`` ^D (at the start of a line: end of
file; otherwise: hand over the line so far), ``VERASE`` ^? (DEL, what a terminal's
Backspace sends; ^H too) and ``VKILL`` ^U. Its window size starts at 0 rows and 0 columns and
is set by ``TIOCSWINSZ``, what containerd's ``ResizePty`` does when the client sends a size
on the resize stream.

Because the client's terminal is in raw mode while ``kubectl exec -t`` runs
(``term.TTY.Safe``), every key reaches this line discipline, which does the echo and the line
editing, as it would for a local shell. Simplified: no other termios settings can be
changed (``stty`` shows only ``size``) and job control (^Z) is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INTR, EOF, ERASE, BACKSPACE, KILL = "\x03", "\x04", "\x7f", "\x08", "\x15"


@dataclass
class Event:
    """What the line discipline hands the process: a ``line`` (ending in ``\\n``, or not
    when ^D pushed it), ``eof`` or ``intr``."""

    kind: str
    text: str = ""


@dataclass
class Terminal:
    """One pty: :meth:`input` is what the client typed (it returns the echo and the events
    for the process), :meth:`output` what the process wrote (returned as the client sees it),
    :meth:`resize` the window size."""

    rows: int = 0
    cols: int = 0
    line: list[str] = field(default_factory=list)

    def resize(self, width: int, height: int) -> None:
        """``TIOCSWINSZ`` (``Width``/``Height`` of the resize stream: columns, rows)."""
        self.cols, self.rows = width, height

    def winsize(self) -> tuple[int, int]:
        return self.rows, self.cols

    def input(self, data: str) -> tuple[str, list[Event]]:
        echo: list[str] = []
        events: list[Event] = []
        for ch in data.replace("\r", "\n"):  # ICRNL
            if ch == "\n":
                echo.append("\r\n")
                events.append(Event("line", "".join(self.line) + "\n"))
                self.line.clear()
            elif ch == INTR:
                echo.append("^C")
                self.line.clear()
                events.append(Event("intr"))
            elif ch == EOF:
                if self.line:
                    events.append(Event("line", "".join(self.line)))
                    self.line.clear()
                else:
                    events.append(Event("eof"))
            elif ch in (ERASE, BACKSPACE):
                if self.line:
                    self.line.pop()
                    echo.append("\b \b")
            elif ch == KILL:
                echo.append("\b \b" * len(self.line))
                self.line.clear()
            elif ch < " ":
                echo.append("^" + chr(ord(ch) + 64))  # ECHOCTL
                self.line.append(ch)
            else:
                echo.append(ch)
                self.line.append(ch)
        return "".join(echo), events

    @staticmethod
    def output(text: str) -> str:
        """ONLCR: what the process writes, as it reaches the master side."""
        return text.replace("\r\n", "\n").replace("\n", "\r\n")
