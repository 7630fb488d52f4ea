"""When is a device down "for the network"? Only its send results say so (issue 12).

Registration answers are evidence, never a gate (see registration.py). A device
whose sends the network refuses NETWORK_FAILURES_DOWN times in a row is down
for the network: its messages go to the other devices, and sending is tried
again after a hold-off that grows while the trouble lasts (10 s, 20 s, ... 5 min)
or at once when the registration newly says registered.
"""
from __future__ import annotations

import time

NETWORK_FAILURES_DOWN = 2                            # consecutive network failures before the device is down
NETWORK_HOLD_START, NETWORK_HOLD_MAX = 10.0, 300.0   # seconds down before sends are tried again


class NetworkWatch:
    def __init__(self, hold: float = NETWORK_HOLD_START):
        self._hold_start = self._hold = hold
        self.failures = 0
        self.down = False
        self.hold = 0.0                   # the hold-off of the current down spell
        self._retry_at = 0.0
        self._registered_at_down: bool | None = None

    def sent(self) -> None:
        """The network took a message, whatever registration said."""
        self.failures = 0
        self._hold = self._hold_start

    def other_failure(self) -> None:
        """Refused for a reason that is not the network's (the recipient, the text)."""
        self.failures = 0

    def network_failure(self, registered: bool | None) -> bool:
        """The network refused a send; True when that makes the device down."""
        self.failures += 1
        if self.failures < NETWORK_FAILURES_DOWN:
            return False
        self.hold = self._hold
        self._hold = min(NETWORK_HOLD_MAX, self._hold * 2)
        self._retry_at = time.monotonic() + self.hold
        self._registered_at_down = registered
        self.down = True
        return True

    def registration(self, registered: bool | None) -> None:
        """New registration evidence: a domain newly registered ends the hold-off now."""
        if self.down and registered is True and self._registered_at_down is not True:
            self._retry_at = 0.0

    def may_try_again(self, registered: bool | None) -> bool:
        self.registration(registered)
        return self.down and time.monotonic() >= self._retry_at

    def try_again(self) -> None:
        """Up again on trial: one more network failure puts it down again."""
        self.down = False
        self.failures = NETWORK_FAILURES_DOWN - 1

    def forget(self) -> None:
        """A port or session problem took over: reconnecting decides."""
        self.down = False
