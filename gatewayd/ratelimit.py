"""Token bucket: a device's sustained send rate with a small burst."""
from __future__ import annotations

import threading
import time
from typing import Callable


class TokenBucket:
    """RATE_PER_MINUTE tokens refill continuously up to BURST; one send takes one token."""

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

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
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
