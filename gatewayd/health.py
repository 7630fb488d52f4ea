"""systemd notification (READY, WATCHDOG, STATUS) and the daemon's health view."""
from __future__ import annotations

import os

import sdnotify


class Notifier:
    """Talks to systemd over $NOTIFY_SOCKET; does nothing when there is none."""

    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._n = sdnotify.SystemdNotifier() if self.enabled else None

    def _send(self, line: str) -> None:
        if self._n is not None:
            self._n.notify(line)

    def ready(self, status: str = "") -> None:
        self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        self._send(f"STATUS={text}")

    def stopping(self, may_take: float = 0.0) -> None:
        """STOPPING=1; with MAY_TAKE, systemd's stop timeout is extended to that many seconds
        (EXTEND_TIMEOUT_USEC), so a call in flight is not cut off by TimeoutStopSec."""
        self._send("STOPPING=1" + (f"\nEXTEND_TIMEOUT_USEC={int(may_take * 1e6)}" if may_take > 0 else ""))


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec (from $WATCHDOG_USEC), or None when not watched."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit():
        return None
    return int(usec) / 1e6 / 2


def stuck_after(default: float = 120.0) -> float:
    """Seconds the dispatch housekeeping may go without completing a pass before the heartbeat stops.

    systemd's WatchdogSec when watched (so a hung loop is killed within about
    two WatchdogSec), else DEFAULT (only logged then).
    """
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return default
    return int(usec) / 1e6
