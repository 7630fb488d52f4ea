"""The dispatch loop: drains the queue through the devices, crash-safe.

One worker thread per device slot (a modem has one, Asterisk `max_calls`).
A worker waits for its device's rate-limit token, claims the next message
(priority, round-robin, FIFO: see Store.claim), sends it and records the
outcome. A housekeeping thread expires, finishes alerts, applies delivery
reports and replies, and writes device state. Every state lives in the
database, so a kill -9 loses nothing: see Store.recover_inflight.
"""
from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, cast

from .channels.base import Channel, ChannelError
from .config import DispatchConfig
from .escalation import escalate_due
from .inbound import handle_reply
from .model import MessageState, ReceivedKind
from .outcomes import (
    ChannelEvent,
    Delivery,
    DeliveryReport,
    DeviceEvent,
    DeviceHealth,
    DeviceState,
    InboundText,
    Outcome,
    OutcomeKind,
)
from .phone import redact
from .quota import QuotaTracker
from .ratelimit import TokenBucket
from .schedule import in_quiet_hours
from .store import Claimed, LostClaim, Store
from .wakeup import Wakeup

if TYPE_CHECKING:
    from .nodes import NodeLease

log = logging.getLogger("gatewayd.dispatch")

REPORT_PATIENCE = 120.0      # seconds an unmatched delivery report waits for its message
HOUSEKEEPING_PERIOD = 0.25
REOPEN_PERIOD = 30.0         # seconds between tries to open a device that failed to open
MAX_DEVICE_PAUSE = 60.0      # seconds, longest pause of a device that keeps failing mid-send
RECORD_PATIENCE_ON_STOP = 30.0
MAX_SEND_SECONDS = 900.0     # a single send (a long voice call read twice) may take this long
ESCALATION_PERIOD = 2.0      # seconds between escalation passes (policies are in minutes)
DEFAULT_SEND_SECONDS = 90.0  # the longest send of a device that does not say (Channel.max_send_seconds)


@dataclass
class DeviceStats:
    sent: int = 0
    failed: int = 0


@dataclass
class WorkerBeat:
    """What a worker last did, for the watchdog: a send may take long, a loop may not stall."""

    last_alive: float = field(default_factory=time.monotonic)
    sending_since: float | None = None


class Step(enum.Enum):
    IDLE = "idle"
    SENT = "sent"
    DEVICE_FAILED = "device_failed"


class Dispatcher:
    """Runs the workers for CHANNELS over STORE until stop()."""

    def __init__(self, policy: DispatchConfig, store: Store, channels: list[Channel], node: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 quota: QuotaTracker | None = None, lease: "NodeLease | None" = None,
                 wakeup: Wakeup | None = None):
        self.policy = policy
        # Several nodes: claim only while this node's lease holds (gatewayd/nodes.py).
        self.lease = lease
        self.wakeup = wakeup or Wakeup()
        self.quota = quota
        self.store = store
        self.channels = list(channels)
        self.node = node
        self.clock = clock
        self._stop = threading.Event()
        self._events: queue.Queue[ChannelEvent] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stats = {ch.name: DeviceStats() for ch in self.channels}
        self._beats: dict[str, WorkerBeat] = {}
        self._flushed = {ch.name: (0, 0) for ch in self.channels}
        # Burst 1: a device with several slots still starts one send per token interval
        # (with burst = slots, 4 calls left at the same instant every few seconds).
        self._buckets = {ch.name: TokenBucket(ch.rate_per_minute) for ch in self.channels}
        self._opened: dict[str, bool] = {}
        self._open_tried: dict[str, float] = {}
        self._housekeeping_alive = time.monotonic()
        # End of the last housekeeping pass that completed: a pass blocked on the
        # database (or failing every time) must stop the watchdog heartbeat.
        self._housekeeping_ok = time.monotonic()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Resolve what a previous run left in flight, open the devices, start the workers."""
        report = self.store.recover_inflight(self.node, self.policy.inflight_policy, self.clock())
        if report.resent or report.failed:
            log.warning("found %d message(s) in flight from an earlier run: %d queued again "
                        "(flagged possible_duplicate), %d failed", report.resent + report.failed,
                        report.resent, report.failed)
        # A device no longer configured would stay "down" in status, /healthz and /metrics forever.
        gone = self.store.forget_devices(self.node, {ch.name for ch in self.channels})
        if gone:
            log.info("forgot device(s) no longer in the config: %s", ", ".join(gone))
        for ch in self.channels:
            self._open(ch)
        for ch in self.channels:
            for slot in range(max(1, ch.capacity)):
                self._spawn(f"worker-{ch.name}-{slot}", self._worker, ch)
        self._spawn("housekeeping", self._housekeeping)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _open(self, ch: Channel) -> None:
        self._open_tried[ch.name] = time.monotonic()
        try:
            ch.open(self._on_event)
        except ChannelError as exc:
            # The device stays down; its worker keeps trying to open it.
            log.error("device %s: %s", ch.name, exc)
            self._record(ch, DeviceHealth(DeviceState.DOWN, last_error=str(exc)))
            return
        except Exception as exc:  # a channel bug must not stop the other devices
            log.exception("device %s failed to open", ch.name)
            self._record(ch, DeviceHealth(DeviceState.DOWN, last_error=f"internal error: {exc!r}"))
            return
        self._opened[ch.name] = True
        self._record(ch, ch.health())

    def stop_wait(self) -> tuple[float, str]:
        """(seconds, device): how long stopping may wait for the sends in flight, the longest a
        single send may take on any device (a voice call: ring, answer, the message read twice)."""
        longest = max(self.channels, key=lambda ch: getattr(ch, "max_send_seconds", DEFAULT_SEND_SECONDS),
                      default=None)
        if longest is None:
            return RECORD_PATIENCE_ON_STOP, ""
        return getattr(longest, "max_send_seconds", DEFAULT_SEND_SECONDS) + RECORD_PATIENCE_ON_STOP, longest.name

    def stop(self, timeout: float | None = None) -> None:
        """Finish the sends in flight, leave the rest queued, close the devices.

        TIMEOUT: how long to wait for the sends in flight; by default as long as the longest
        send may take (see stop_wait), so a call in progress ends and is recorded, not left
        `sending` for the next start to resolve.
        """
        self._stop.set()
        self.wakeup.notify()
        if timeout is None:
            timeout, device = self.stop_wait()
            if any(b.sending_since is not None for b in list(self._beats.values())):
                log.info("stopping: waiting up to %.0f s for the sends in flight (the longest a send on %s "
                         "may take, max call seconds included)", timeout, device)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        self._drain_events()
        for ch in self.channels:
            try:
                ch.close()
            except Exception:
                log.exception("device %s did not close cleanly", ch.name)
        self._flush_devices()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued, retrying or sending; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.store.has_pending():
                return True
            time.sleep(0.05)
        return False

    def healthy(self, stuck_after: float = 120.0, housekeeping_after: float | None = None) -> bool:
        """False when housekeeping has not completed a pass for HOUSEKEEPING_AFTER seconds (default
        STUCK_AFTER), or a worker has not moved for STUCK_AFTER seconds (a voice call may take minutes)."""
        now = time.monotonic()
        if now - self._housekeeping_ok > (stuck_after if housekeeping_after is None else housekeeping_after):
            return False
        return all(now - b.sending_since <= MAX_SEND_SECONDS if b.sending_since is not None
                   else now - b.last_alive <= stuck_after for b in list(self._beats.values()))

    # ------------------------------------------------------------------ workers
    def _worker(self, ch: Channel) -> None:
        bucket, stats = self._buckets[ch.name], self._stats[ch.name]
        beat = self._beats[threading.current_thread().name] = WorkerBeat()
        pause = 0.0           # grows while the device keeps failing mid-send (a circuit breaker)
        idle = 0              # idle looks in a row: polling backs off while NOTIFY can wake us
        while not self._stop.is_set():
            beat.last_alive = time.monotonic()
            seen = self.wakeup.generation
            if not self._opened.get(ch.name):
                # open() failed; channels recover from unplugs themselves, but a
                # device that never opened is retried from here.
                if time.monotonic() - self._open_tried.get(ch.name, 0.0) >= REOPEN_PERIOD:
                    self._open(ch)
                self._stop.wait(0.5)
                continue
            if ch.health().state is not DeviceState.UP:
                self._stop.wait(0.2)
                continue
            try:
                step = self._step(ch, bucket, stats, beat)
            except Exception:
                # Database trouble or a bug: log it, wait, go on. Nothing is lost:
                # the message is still in the database in whatever state it reached.
                log.exception("worker %s: dispatch step failed", ch.name)
                self._stop.wait(1.0)
                continue
            if step is Step.IDLE:
                idle += 1
                self.wakeup.wait(seen, self._idle_wait(idle))
                continue
            idle = 0
            if step is Step.DEVICE_FAILED:
                # The device failed although it says it is up (e.g. Asterisk refusing
                # calls): stop hammering it; the other devices take the work meanwhile.
                pause = min(MAX_DEVICE_PAUSE, max(1.0, pause * 2))
                log.warning("device %s failed mid-send; pausing it for %.0f s", ch.name, pause)
                self._stop.wait(pause)
            else:
                pause = 0.0

    def _idle_wait(self, idle: int) -> float:
        """The poll interval; doubling while idle up to idle_poll_max when notifications wake us."""
        poll = self.policy.poll_interval
        if not self.wakeup.listening:
            return poll
        return float(max(poll, min(self.policy.idle_poll_max, poll * 2 ** min(idle, 16))))

    def _step(self, ch: Channel, bucket: TokenBucket, stats: DeviceStats, beat: "WorkerBeat") -> "Step":
        """Wait for the device's token, claim, send and record one message."""
        claimed = bucket.take_when(lambda: self._claim(ch), self._stop)
        if claimed is None:
            return Step.IDLE
        if self.lease is not None and not self.lease.held():
            # The lease lapsed while claiming: sending now could overlap another node's takeover.
            self._give_back(claimed, ch)
            return Step.IDLE
        now = self.clock()
        if self.lease is not None and self.lease.shared and not self._still_ours(claimed, ch):
            return Step.IDLE
        beat.sending_since = time.monotonic()
        try:
            outcome = self._send(ch, claimed.delivery)
        finally:
            beat.sending_since = None
        # The token paid for one SMS; a long text went out as several, and a SIM's rate limit (the
        # operator's fair use) counts each one: the device's next send waits for the rest.
        bucket.charge(outcome.segments - 1)
        state = self._record_outcome(claimed, ch, outcome)
        if state is None:
            return Step.SENT
        if outcome.kind in (OutcomeKind.SENT, OutcomeKind.DELIVERED, OutcomeKind.ACKNOWLEDGED, OutcomeKind.VOICEMAIL):
            stats.sent += 1
            if self.quota is not None and not claimed.delivery.drill:
                self.quota.record(ch.name, claimed.delivery.number, outcome.segments, now)
        else:
            stats.failed += 1
        if log.isEnabledFor(logging.INFO):
            log.info("message %d to %s via %s: %s%s", claimed.message_id, redact(claimed.delivery.number),
                     ch.name, state, f" ({outcome.detail})" if outcome.detail and state != MessageState.SENT else "")
        if outcome.kind is OutcomeKind.DEVICE_DOWN:
            self._record(ch, ch.health())
            return Step.DEVICE_FAILED
        return Step.SENT

    def _claim(self, ch: Channel) -> Claimed | None:
        """The next message for CH, or None (nothing due, quiet hours, the SIM's quota spent, the node's
        lease not renewed: cut off from the database, another node may take its work over)."""
        if self.lease is not None and not self.lease.held():
            return None
        now = self.clock()
        prevention_ok = not in_quiet_hours(now, self.policy.quiet_hours, self.policy.timezone)
        urgent_only = False
        if self.quota is not None and not self.quota.allows(ch.name, now):
            if not self.quota.urgent_may_exceed:
                return None           # this SIM is at its fair-use limit: the others carry the work
            urgent_only = True
        return self.store.claim(ch.kind.value, ch.name, self.node, now, prevention_ok, urgent_only)

    def _record_outcome(self, claimed: Claimed, ch: Channel, outcome: Outcome) -> str | None:
        """Record what the device did, however long the database takes: the message has
        left (or not) and only the database can say so. None when it cannot be recorded."""
        delay, deadline = 0.5, None
        while True:
            try:
                return self.store.complete(claimed, ch.name, outcome, self.clock())
            except LostClaim as exc:
                log.warning("%s; its outcome (%s) is not recorded", exc, outcome.kind.value)
                return None
            except Exception:
                log.exception("could not record the outcome of message %d; trying again in %.1f s",
                              claimed.message_id, delay)
            if self._stop.is_set():
                deadline = deadline or time.monotonic() + RECORD_PATIENCE_ON_STOP
                if time.monotonic() > deadline:
                    log.error("giving up recording message %d; the next start resolves it as in flight",
                              claimed.message_id)
                    return None
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _still_ours(self, claimed: Claimed, ch: Channel) -> bool:
        """Fencing, checked in the database just before the send: a node frozen (SIGSTOP, VM pause)
        after its claim may resume with a renewed lease after another node took the message over;
        held() alone cannot tell. Taken over: give it up silently, the taker sends it."""
        try:
            if self.store.still_claimed(claimed, ch.name):
                return True
        except Exception as exc:   # the database is away: not sending is safe; hand it back once it returns
            log.warning("could not check message %d is still ours before sending (%s); not sending it",
                        claimed.message_id, exc)
            self._record_outcome(claimed, ch, Outcome.device_down("claim could not be checked before sending; "
                                                                  "not sent"))
            return False
        log.warning("message %d was taken over by another node before it was sent; not sending it",
                    claimed.message_id)
        return False

    def _give_back(self, claimed: Claimed, ch: Channel) -> None:
        try:
            self.store.complete(claimed, ch.name, Outcome.device_down("node lease lapsed before sending; not sent"),
                                self.clock())
        except Exception as exc:   # taken over meanwhile, or the database is away: a takeover resolves it
            log.warning("could not give message %d back after the lease lapsed: %s", claimed.message_id, exc)

    def _send(self, ch: Channel, delivery: Delivery) -> Outcome:
        try:
            return ch.send(delivery)
        except Exception as exc:
            # A channel must not raise; if it does, treat it as a transient failure so
            # the message's retry budget bounds the damage.
            log.exception("device %s raised while sending", ch.name)
            return Outcome.retry(f"internal error in {ch.name}: {exc!r}")

    # ------------------------------------------------------------------ housekeeping
    def _housekeeping(self) -> None:
        last_expiry = last_flush = last_escalation = 0.0
        while not self._stop.is_set():
            self._housekeeping_alive = time.monotonic()
            try:
                self._drain_events()
                self._process_received()
                now_m = time.monotonic()
                if now_m - last_expiry >= 1.0:
                    self.store.expire_due(self.clock())
                    self.store.sweep_withdrawn(self.clock())
                    if now_m - last_escalation >= ESCALATION_PERIOD:
                        escalate_due(self.store, self.policy, self.clock())
                        last_escalation = now_m
                    self.store.finish_alerts(self.clock())
                    last_expiry = now_m
                if now_m - last_flush >= 2.0:
                    self._flush_devices()
                    last_flush = now_m
                self._housekeeping_ok = time.monotonic()
            except Exception:
                log.exception("housekeeping failed; will try again")
            self._stop.wait(HOUSEKEEPING_PERIOD)

    def _on_event(self, event: ChannelEvent) -> None:
        """The channels' event sink. What came in is committed here, on the device's own thread,
        before the device deletes it from the SIM (write-ahead: a crash leaves it on the SIM
        or in the database); raising tells the device to keep it. Device states are queued."""
        if isinstance(event, (InboundText, DeliveryReport)):
            self.store.receive(event, self.node)
        else:
            self._events.put(event)

    def _drain_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            try:
                self._handle(event)
            except Exception:
                log.exception("could not handle a %s", type(event).__name__)

    def _process_received(self) -> None:
        """Act on what was received and stored: replies one transaction each, status reports
        together. Each row is marked processed with its effects; a failure leaves it for the
        next pass, a report that matches nothing for REPORT_PATIENCE is let go."""
        for received_id, event in self.store.received_todo(ReceivedKind.SMS, self.node):
            try:
                handle_reply(self.store, cast(InboundText, event), received_id)   # kind SMS: a reply
            except Exception:
                log.exception("could not act on reply %d; will try again", received_id)
        todo = self.store.received_todo(ReceivedKind.STATUS_REPORT, self.node, limit=1000)
        if not todo:
            return
        ids, reports = [i for i, _ in todo], [cast(DeliveryReport, r) for _, r in todo]
        matched = self.store.apply_delivery_reports(reports, received_ids=ids, node=self.node)
        now = self.clock()
        stale = [i for i, r, m in zip(ids, reports, matched)
                 if m is None and (now - r.at).total_seconds() > REPORT_PATIENCE]
        if stale:
            log.warning("%d delivery report(s) matched no message within %.0f s", len(stale), REPORT_PATIENCE)
            self.store.mark_received(stale)

    def _handle(self, event: ChannelEvent) -> None:
        if isinstance(event, DeviceEvent):
            ch = next((c for c in self.channels if c.name == event.device), None)
            if ch is not None:
                self._record(ch, event.health)
            log.info("device %s is %s%s", event.device, event.health.state.value,
                     f": {event.health.last_error}" if event.health.last_error else "")

    def _record(self, ch: Channel, health: DeviceHealth) -> None:
        try:
            self.store.record_device(ch.name, ch.kind.value, self.node, health)
        except Exception:
            log.exception("could not record the state of %s", ch.name)

    def _flush_devices(self) -> None:
        for ch in self.channels:
            stats = self._stats[ch.name]
            sent0, failed0 = self._flushed[ch.name]
            health = ch.health()
            if self.quota is not None and ch.name in self.quota.limits:
                health = replace(health, detail={**health.detail, "quota": self.quota.snapshot(ch.name, self.clock())})
            self.store.record_device(ch.name, ch.kind.value, self.node, health,
                                     sent=stats.sent - sent0, failed=stats.failed - failed0)
            self._flushed[ch.name] = (stats.sent, stats.failed)
