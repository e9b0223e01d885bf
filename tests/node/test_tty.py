"""The container's pseudo-terminal: n_tty's canonical mode with a new pty's termios."""

from k8sbook.node.tty import Event, Terminal


def test_typed_keys_are_echoed_and_handed_over_a_line_at_a_time():
    t = Terminal()
    assert t.input("echo hi") == ("echo hi", [])  # nothing reaches the process yet
    echo, events = t.input("\r")  # Enter: ICRNL makes it a new line, echoed as \r\n
    assert (echo, events) == ("\r\n", [Event("line", "echo hi\n")])


def test_erase_kill_and_control_characters():
    t = Terminal()
    echo, _ = t.input("lx\x7fs\x08\x08ls")  # DEL and ^H rub out one character each
    assert echo == "lx\b \bs\b \b\b \bls"
    assert t.input("\r")[1] == [Event("line", "ls\n")]
    echo, events = t.input("abc\x15")  # ^U kills the line
    assert (echo, events) == ("abc" + "\b \b" * 3, [])
    echo, events = t.input("\x1b[A\r")  # ECHOCTL: an arrow key shows as ^[[A
    assert echo == "^[[A\r\n" and events == [Event("line", "\x1b[A\n")]


def test_interrupt_and_end_of_file():
    t = Terminal()
    echo, events = t.input("sleep 9\x03")
    assert (echo, events) == ("sleep 9^C", [Event("intr")])
    assert t.input("\x04") == ("", [Event("eof")])  # ^D at the start of a line: EOF
    assert t.input("part\x04") == ("part", [Event("line", "part")])  # else: push the line


def test_window_size_and_output_translation():
    t = Terminal()
    assert t.winsize() == (0, 0)
    t.resize(120, 40)  # Width, Height
    assert t.winsize() == (40, 120)
    assert Terminal.output("a\nb\r\n") == "a\r\nb\r\n"  # ONLCR, once
