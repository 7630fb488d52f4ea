"""Waking idle workers when work arrives: PostgreSQL LISTEN/NOTIFY, or a nudge in-process.

Whoever queues messages calls `wake(connection)` inside its transaction;
PostgreSQL delivers the NOTIFY on commit to every listening node, so an idle
node picks a new alert up at once and its idle polling may back off. On
SQLite `wake` does nothing: there the workers keep polling, and the daemon
nudges them itself when an alert comes in through its control socket.

This module is the one place that uses psycopg directly (`Connection.notifies`,
psycopg >= 3.2).
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Connection, Engine, func, select

log = logging.getLogger("gatewayd.wakeup")

CHANNEL = "gatewayd_queue"
LISTEN_TIMEOUT = 1.0      # seconds between looks at the stop flag while listening
RECONNECT_AFTER = 2.0     # seconds after losing the listening connection


def wake(c: Connection) -> None:
    """Tell listening nodes, when C's transaction commits, that there is new work."""
    if c.dialect.name == "postgresql":
        c.execute(select(func.pg_notify(CHANNEL, "")))


class Wakeup:
    """Idle workers wait here until something is queued, a timeout, or stop."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self.listening = False     # True while a LISTEN connection delivers notifications

    @property
    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Wait up to TIMEOUT unless woken after generation SEEN (read before the last look at the
        queue, so a notification that came during that look is not lost); True when woken."""
        with self._cond:
            return self._cond.wait_for(lambda: self._generation != seen, timeout)


class Listener:
    """A thread holding a LISTEN connection to PostgreSQL and waking WAKEUP on each notification."""

    def __init__(self, engine: Engine, wakeup: Wakeup):
        self.engine = engine
        self.wakeup = wakeup
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return
        self._thread = threading.Thread(target=self._run, name="listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(LISTEN_TIMEOUT + 2)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:
                log.error("lost the LISTEN connection (%s); idle polling only until it is back", exc)
            self.wakeup.listening = False
            self._stop.wait(RECONNECT_AFTER)

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        pg: Any = raw.driver_connection       # psycopg's own connection (LISTEN, notifies)
        raw.detach()                          # ours for good: never handed back to the pool
        try:
            pg.autocommit = True
            pg.execute(f"LISTEN {CHANNEL}")
            self.wakeup.listening = True
            self.wakeup.notify()              # whatever came while nobody listened
            while not self._stop.is_set():
                for _ in pg.notifies(timeout=LISTEN_TIMEOUT):
                    self.wakeup.notify()
        finally:
            pg.close()
