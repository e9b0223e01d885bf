"""The kubelet's log reader (node/kubelet/logs.py): PodLogOptions over a CRI log file."""

from k8sbook.core.clock import Clock
from k8sbook.node.kubelet.logs import LogOptions, LogReader, parse_cri_log


def file_of(clock: Clock, lines: list[tuple[float, str]]) -> str:
    return "".join(f"{clock.nano_timestamp(t)} stdout F {text}\n" for t, text in lines)


def test_parse_cri_log_and_nano_timestamps():
    clock = Clock()
    assert clock.nano_timestamp(1.5) == "2026-01-01T00:00:01.5Z"
    assert clock.nano_timestamp(2.0) == "2026-01-01T00:00:02Z"
    assert parse_cri_log("2026-01-01T00:00:01.5Z stderr F oops") == (
        "2026-01-01T00:00:01.5Z", "stderr", "oops")
    assert Clock.parse("2026-01-01T00:00:01.123456789Z") == 1.123456


def test_tail_since_limit_bytes_and_timestamps():
    clock = Clock()
    text = file_of(clock, [(1, "one"), (5, "two"), (9, "three")])
    clock.run_until(10)

    def read(**params: object) -> str:
        return LogReader(lambda: text, LogOptions.from_params(params, clock),
                         lambda: True, clock).read()
    assert read() == "one\ntwo\nthree\n"
    assert read(tailLines=2) == "two\nthree\n"
    assert read(tailLines=0) == ""
    assert read(sinceSeconds=6) == "two\nthree\n"
    assert read(sinceTime="2026-01-01T00:00:09Z") == "three\n"
    assert read(limitBytes=6) == "one\ntw"
    assert read(timestamps=True, tailLines=1) == "2026-01-01T00:00:09Z three\n"


def test_follow_sends_new_lines_until_the_container_stops():
    clock = Clock()
    lines = [(0.0, "started")]
    running = [True]
    reader = LogReader(lambda: file_of(clock, lines), LogOptions(follow=True),
                       lambda: running[0], clock)
    assert reader.read() == "started\n"
    clock.run_until(1)
    lines.append((1.0, "working"))
    assert reader.more() == ("working\n", False)
    running[0] = False
    clock.run_until(3)
    assert reader.more() == ("", False)  # the next state check is 5 s after the start
    clock.run_until(5)
    assert reader.more() == ("", True)
