"""The node lifecycle controller's per-zone queue (nodelifecycle/scheduler/rate_limited_queue)."""

from k8sbook.controlplane.controllers.rate_limited_queue import RateLimitedTimedQueue


def test_unique_rate_limited_and_swappable():
    now = [0.0]
    q = RateLimitedTimedQueue(0.1, lambda: now[0])
    assert q.add("a") and q.add("b") and not q.add("a")
    done: list[tuple[float, str]] = []
    q.try_process(lambda n: (done.append((now[0], n)) or True, 0.0))
    assert done == [(0.0, "a")]  # one token
    now[0] = 10.0
    q.try_process(lambda n: (done.append((now[0], n)) or True, 0.0))
    assert done[-1] == (10.0, "b") and len(q) == 0
    assert not q.add("a")  # processed nodes stay in the set until removed
    assert q.remove("a") and q.add("a")
    q.swap_limiter(0.0)  # never
    now[0] = 1000.0
    q.try_process(lambda n: (done.append((now[0], n)) or True, 0.0))
    assert done[-1] == (10.0, "b")
    q.swap_limiter(0.01)  # the old limiter was empty: the new one starts empty too
    q.try_process(lambda n: (done.append((now[0], n)) or True, 0.0))
    assert done[-1] == (10.0, "b")
    now[0] = 1100.0
    q.try_process(lambda n: (done.append((now[0], n)) or True, 0.0))
    assert done[-1] == (1100.0, "a")
