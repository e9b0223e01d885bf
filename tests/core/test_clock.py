"""Virtual time (``k8sbook.core.clock``): timestamps as the API writes them."""

from datetime import UTC, datetime, timedelta

from k8sbook.core.clock import EPOCH, Clock


def plain_timestamp(t: float) -> str:
    return (EPOCH + timedelta(seconds=int(t))).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_timestamp_keeps_the_last_seconds_text_and_never_a_stale_one():
    clock = Clock()
    seen = []
    for t in [0, 0.2, 0.999, 1.0, 1.5, 59.9, 60, 3600.5, 3600.7, 10, 86400 * 400 + 0.1]:
        if t >= clock.now():
            clock.run_until(t)
        seen.append((clock.timestamp(), plain_timestamp(clock.now())))
        seen.append((clock.timestamp(t), plain_timestamp(t)))  # an explicit instant
        seen.append((clock.timestamp(t + 1.25), plain_timestamp(t + 1.25)))
    assert all(mine == plain for mine, plain in seen)
    assert Clock(start=-0.5).timestamp() == "2026-01-01T00:00:00Z"  # int() truncates, as before
    assert Clock.parse(Clock().timestamp(42.9)) == 42.0
    assert datetime(2026, 1, 1, tzinfo=UTC) == EPOCH


def test_micro_timestamp_keeps_the_last_instants_text():
    clock = Clock()
    for t in [0.0, 0.0, 0.1234564, 0.1234565, 0.1234565, 1, 1.0, 2.5e-7, 3600.000001]:
        assert clock.micro_timestamp(t) == \
            (EPOCH + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    clock.run_until(7.25)
    assert clock.micro_timestamp() == "2026-01-01T00:00:07.250000Z" == clock.micro_timestamp()
