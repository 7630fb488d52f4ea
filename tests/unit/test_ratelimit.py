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


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        TokenBucket(0)
