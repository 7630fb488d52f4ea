"""Token bucket: a device's sustained send rate, smooth across the device's workers."""
from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")

# A worker that wakes late for its token (timer slack, a busy machine) keeps up to this
# much of a token as credit, so lateness does not lower the sustained rate; small enough
# that two sends never start within three quarters of an interval.
CATCH_UP = 0.25


class TokenBucket:
    """RATE_PER_MINUTE tokens refill continuously up to BURST; one send takes one token.

    BURST is how many sends may start at one instant after a quiet spell (1: never
    two at once). A device with several slots (Asterisk's max_calls) has one bucket
    for all its workers: `take_when` waits for the token and takes it as one step, so
    two workers can never both see the same token and send together.
    """

    def __init__(self, rate_per_minute: float, burst: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be above 0")
        self.rate = rate_per_minute / 60.0
        self.burst = max(1.0, burst)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()
        # Held from the wait for a token to its take: one worker at a time in that step.
        self._gate = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst + CATCH_UP, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self) -> float:
        """Seconds until a token is available (0 when one is)."""
        with self._lock:
            self._refill()
            return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate

    def try_take(self) -> bool:
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def take(self) -> None:
        """Take a token even if none is left: the next wait grows accordingly."""
        with self._lock:
            self._refill()
            self._tokens -= 1.0

    def charge(self, tokens: float) -> None:
        """Take TOKENS more after the fact (a send that turned out to be several SMS): the next wait grows."""
        if tokens > 0:
            with self._lock:
                self._refill()
                self._tokens -= tokens

    def take_when(self, work: Callable[[], T | None], stop: threading.Event) -> T | None:
        """Wait for a token, run WORK, and take the token if WORK found something to send.

        One worker at a time: the others wait at the gate, so the next one starts its
        wait only after this one took (or left) the token. None when STOP was set first.
        """
        with self._gate:
            while (wait := self.wait_time()) > 0:
                if stop.wait(min(wait, 1.0)):
                    return None
            if stop.is_set():
                return None
            found = work()
            if found is not None:
                self.take()
            return found
