"""Token bucket arithmetic, on a clock the test controls."""
from __future__ import annotations

import pytest

from gatewayd.ratelimit import TokenBucket


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_starts_with_one_token_then_refills_at_the_rate():
    clock = Clock()
    b = TokenBucket(60, clock=clock)          # one a second
    assert b.try_take() and not b.try_take()
    assert b.wait_time() == pytest.approx(1.0)
    clock.t = 0.5
    assert b.wait_time() == pytest.approx(0.5)
    clock.t = 1.0
    assert b.try_take()


def test_burst_caps_saved_tokens():
    clock = Clock()
    b = TokenBucket(60, burst=3, clock=clock)
    clock.t = 100.0
    assert [b.try_take() for _ in range(4)] == [True, True, True, False]


def test_take_beyond_empty_delays_the_next():
    clock = Clock()
    b = TokenBucket(120, clock=clock)         # two a second
    b.take()
    b.take()
    assert b.wait_time() == pytest.approx(1.0)


def test_sustained_rate_over_a_minute():
    clock = Clock()
    b = TokenBucket(20, clock=clock)          # a modem's 20 SMS a minute
    sent = 0
    while clock.t < 60.0:
        if b.try_take():
            sent += 1
        clock.t += 0.01
    assert sent in (20, 21)                   # the initial token plus one every 3 s


def test_take_when_is_one_step_for_many_workers():
    """Eight workers on one bucket: each token goes to one of them, never to two."""
    import threading
    import time
    b = TokenBucket(600)                      # one every 0.1 s
    stop, starts, lock = threading.Event(), [], threading.Lock()

    def worker():
        for _ in range(3):
            def work():
                with lock:
                    starts.append(time.monotonic())
                return True
            b.take_when(work, stop)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    starts.sort()
    assert len(starts) == 24
    assert min(b - a for a, b in zip(starts, starts[1:])) >= 0.05


def test_take_when_leaves_the_token_when_there_is_nothing_to_send():
    clock = Clock()
    b = TokenBucket(60, clock=clock)
    import threading
    assert b.take_when(lambda: None, threading.Event()) is None
    assert b.wait_time() == 0.0


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        TokenBucket(0)
