"""An in-process pretend device: for the `make run` demo and dispatch tests only.

It sleeps LATENCY per send and fails a FAILURE_RATE share transiently. Real
hardware goes through channels/modem.py and channels/voice.py.
"""
from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field

from .. import sms
from ..config import EmulatedConfig
from .base import ChannelKind, Delivery, DeliveryReport, DeviceHealth, DeviceState, EventSink, Outcome, OutcomeKind

log = logging.getLogger(__name__)


@dataclass
class SentRecord:
    device: str
    message_id: int
    number: str
    text: str
    at: float


@dataclass
class EmulatedChannel:
    cfg: EmulatedConfig
    seed: int | None = None
    sent: list[SentRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = self.cfg.name
        self.kind = ChannelKind(self.cfg.kind)
        self.rate_per_minute = self.cfg.rate_per_minute
        self.capacity = self.cfg.capacity
        self.max_send_seconds = self.cfg.latency + 1.0
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._ref = 0
        self._sink: EventSink | None = None
        self._health = DeviceHealth(DeviceState.STARTING)
        self._reports: queue.Queue[DeliveryReport | None] = queue.Queue()
        self._reporter: threading.Thread | None = None

    def open(self, sink: EventSink) -> None:
        self._sink = sink
        if self._reporter is None:
            self._reporter = threading.Thread(target=self._report_loop, name=f"reports-{self.name}", daemon=True)
            self._reporter.start()
        self._health = DeviceHealth(DeviceState.UP, signal=20, registered=True,
                                    detail={"model": "emulated", "kind": self.kind.value})

    def send(self, delivery: Delivery) -> Outcome:
        if self.cfg.latency:
            time.sleep(self.cfg.latency)
        with self._lock:
            if self._rng.random() < self.cfg.failure_rate:
                return Outcome.retry("emulated transient failure")
            self._ref = (self._ref + 1) % 256
            ref = self._ref
            if not delivery.drill:
                self.sent.append(SentRecord(self.name, delivery.message_id, delivery.number, delivery.text,
                                            time.monotonic()))
        if self.kind is ChannelKind.VOICE:
            return Outcome(OutcomeKind.DELIVERED, "drill" if delivery.drill else "answered and played")
        if self._sink is not None and not delivery.drill:
            # The network's report comes later and on its own, as a real one does.
            self._reports.put(DeliveryReport(self.name, ref, delivery.number, delivered=True, detail="emulated"))
        # As many parts as a modem would put on the air for this text (so rate limits and quotas count alike).
        parts = sms.plan(delivery.text, smart=True).segments
        return Outcome.sent(reference=ref, segments=parts, detail="drill" if delivery.drill else "")

    def _report_loop(self) -> None:
        while True:
            report = self._reports.get()
            if report is None:
                return
            try:
                sink = self._sink
                assert sink is not None       # reports are only queued once the channel is open
                sink(report)
            except Exception:
                log.exception("emulated %s: could not store a delivery report", self.name)

    def health(self) -> DeviceHealth:
        return self._health

    def close(self) -> None:
        self._health = DeviceHealth(DeviceState.DOWN, last_error="closed")
        if self._reporter is not None:
            self._reports.put(None)
            self._reporter.join(5)
            self._reporter = None
