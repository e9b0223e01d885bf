"""How the kubelet reads a container's log file for ``pods/log``.

Mirrors ``pkg/kubelet/kuberuntime/logs`` (``logs.go``, v1.35.0). The runtime's shim writes
each line in the CRI logging format (``<RFC3339Nano time> <stream> <P|F> <content>``,
``k8s.io/cri-api`` ``logging.md``); ``ReadLogs`` parses the lines back (``parseCRILog``) and
applies the ``PodLogOptions`` the apiserver passed on as query parameters:

* ``tailLines``: start that many lines from the end (``tail.FindTailLineStartIndex``);
* ``sinceSeconds`` / ``sinceTime``: skip lines written before then (the kubelet turns
  ``sinceSeconds`` into a time: now minus the seconds);
* ``limitBytes``: stop after that many bytes of output;
* ``timestamps``: put each line's time, ``RFC3339Nano``, and a space before it;
* ``follow``: keep the stream open and send lines as they are written until the container
  stops: at the end of the file the kubelet waits for the file to change and checks every
  ``stateCheckPeriod`` (5 s) whether the container still runs (a CRI ``ContainerStatus``),
  ending the stream once it does not.

``previous`` reads the previous instance's file (``<container>/<restartCount - 1>.log``);
without one the kubelet answers ``previous terminated container "app" in pod "web" not found``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from k8sbook.core.clock import Clock

#: ``logs.go``: ``stateCheckPeriod = 5 * time.Second``
STATE_CHECK_PERIOD = 5.0


@dataclass(frozen=True)
class LogOptions:
    """``PodLogOptions`` as ``NewLogOptions`` keeps them (``since`` is a virtual time)."""

    tail: int | None = None
    limit_bytes: int | None = None
    since: float | None = None
    timestamps: bool = False
    follow: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any], clock: Clock) -> LogOptions:
        since = None
        if params.get("sinceSeconds") is not None:
            since = clock.now() - int(params["sinceSeconds"])
        elif params.get("sinceTime"):
            since = Clock.parse(str(params["sinceTime"]))
        tail = params.get("tailLines")
        limit = params.get("limitBytes")
        return cls(int(tail) if tail is not None and int(tail) >= 0 else None,
                   int(limit) if limit is not None else None, since,
                   _true(params.get("timestamps")), _true(params.get("follow")))


def _true(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def parse_cri_log(line: str) -> tuple[str, str, str]:
    """``parseCRILog``: (time, stream, content) of one line; a line that is not in the
    format is taken whole as stdout content."""
    parts = line.split(" ", 3)
    if len(parts) < 4 or parts[1] not in ("stdout", "stderr"):
        return "", "stdout", line
    return parts[0], parts[1], parts[3]


class LogReader:
    """One ``ReadLogs`` call: :meth:`read` gives what is in the file now; with ``follow``,
    :meth:`more` gives what was written since and whether the stream has ended."""

    def __init__(self, read_file: Callable[[], str], opts: LogOptions,
                 running: Callable[[], bool], clock: Clock) -> None:
        self.read_file, self.opts, self.running, self.clock = read_file, opts, running, clock
        self.lines_seen = 0
        self.bytes_left = opts.limit_bytes
        self.next_check = clock.now() + STATE_CHECK_PERIOD
        self.done = False

    def _render(self, lines: list[str]) -> str:
        out: list[str] = []
        for line in lines:
            stamp, _stream, content = parse_cri_log(line)
            if self.opts.since is not None and stamp and Clock.parse(stamp) < self.opts.since:
                continue
            text = (f"{stamp} " if self.opts.timestamps and stamp else "") + content + "\n"
            if self.bytes_left is not None:
                text = text[:self.bytes_left]
                self.bytes_left -= len(text)
            out.append(text)
            if self.bytes_left is not None and self.bytes_left <= 0:
                self.done = True
                break
        return "".join(out)

    def _lines(self) -> list[str]:
        return self.read_file().splitlines()

    def read(self) -> str:
        lines = self._lines()
        self.lines_seen = len(lines)
        if self.opts.tail is not None:
            lines = lines[len(lines) - self.opts.tail:] if self.opts.tail else []
        return self._render(lines)

    def more(self) -> tuple[str, bool]:
        """New lines since the last call; True once the stream ends (the limit reached, or
        the container found not running at a state check with nothing left to read)."""
        if self.done:
            return "", True
        lines = self._lines()
        new, self.lines_seen = lines[self.lines_seen:], len(lines)
        text = self._render(new)
        if not new and self.clock.now() >= self.next_check:
            self.next_check = self.clock.now() + STATE_CHECK_PERIOD
            if not self.running():
                self.done = True
        return text, self.done


def previous_not_found(container: str, pod: str) -> str:
    return f'previous terminated container "{container}" in pod "{pod}" not found'
