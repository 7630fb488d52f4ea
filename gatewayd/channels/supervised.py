"""What device channels with a supervisor thread share (AT modems, HiLink dongles).

The supervisor owns (re)connecting; `open` starts it and waits for its first
try; health changes go out as DeviceEvent when the state or the error changed.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from .base import ChannelError, ChannelEvent, DeviceEvent, DeviceHealth, DeviceState, EventSink

log = logging.getLogger(__name__)


class SupervisedDevice:
    label = "device"          # "modem", "hilink": in messages, logs and thread names
    name: str

    def _init_supervision(self) -> None:
        self._health = DeviceHealth(DeviceState.STARTING)
        self._health_lock = threading.Lock()
        self._sink: EventSink | None = None
        self._stop = threading.Event()
        self._first_try = threading.Event()
        self._supervisor: threading.Thread | None = None

    def _supervise(self) -> None:
        raise NotImplementedError

    def _open_wait(self) -> float:
        """Seconds `open` waits for the first connection attempt."""
        return 5.0

    def _emit(self, event: ChannelEvent) -> None:
        if self._sink is None:
            return
        try:
            self._sink(event)
        except Exception:
            log.exception("%s %s: event sink failed on %s", self.label, self.name, type(event).__name__)

    def open(self, sink: EventSink) -> None:
        """Start the supervisor; return once the device is up, else raise ChannelError.

        The supervisor keeps trying in the background (unless a person must act
        first, e.g. a rejected PIN or password), so a later open() or a
        plugged-in device brings the channel up.
        """
        self._sink = sink
        if self._supervisor is None:
            self._stop.clear()
            self._first_try.clear()
            self._supervisor = threading.Thread(target=self._supervise, name=f"{self.label}-{self.name}",
                                                daemon=True)
            self._supervisor.start()
        self._first_try.wait(self._open_wait())
        h = self.health()
        if h.state is not DeviceState.UP:
            raise ChannelError(f"{self.label} {self.name}: {h.last_error or 'not up yet'}")

    def health(self) -> DeviceHealth:
        h = self._health
        return dataclasses.replace(h, detail=dict(h.detail))

    def _set_health(self, **changes: Any) -> None:
        # Called from the supervisor, the sending thread and a reader thread: one at a time.
        with self._health_lock:
            old = self._health
            new = dataclasses.replace(old, **changes)
            self._health = new
        if new.state is not old.state or new.last_error != old.last_error:
            log.info("%s %s: %s%s", self.label, self.name, new.state.value,
                     f" ({new.last_error})" if new.last_error else "")
            self._emit(DeviceEvent(self.name, self.health()))
