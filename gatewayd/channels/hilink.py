"""SMS through a Huawei LTE dongle in HiLink mode (`[[hilink]]`), over its web API.

The dongle splits and encodes texts itself; we hand it the text the preview
showed (`sms.plan`, so segments and smart encoding match), then poll
sms/send-status until it names the number as sent or failed. Status reports,
when the dongle is asked for them, land in its inbox as messages of their own
type; they carry no message reference, so each is matched to the oldest send
to that number still waiting for one, under a reference this channel hands
out. Replies are read from the inbox and deleted only after the event sink
returned: the sink writes them ahead (a sink that raises leaves the message on
the dongle for the next look). Signal and service status feed the health;
rate limits and quotas are the dispatcher's, as for AT modems.
"""
from __future__ import annotations

import collections
import logging
import random
import re
import threading
import time
from typing import Any

from .. import sms as smslib
from ..config import HilinkConfig, SmsConfig
from ..phone import normalise, redact
from .base import ChannelKind, Check, Delivery, DeliveryReport, DeviceState, InboundText, Outcome
from .hilink_api import (
    AnswerLost,
    HilinkApi,
    HilinkError,
    HilinkGone,
    LoginLocked,
    LoginRefused,
    Radio,
    Refused,
    Stored,
    StoredKind,
)
from .network_watch import NETWORK_HOLD_START, NetworkWatch
from .registration import Verdict, registered_flag
from .supervised import SupervisedDevice

log = logging.getLogger(__name__)

BACKOFF_START, BACKOFF_MAX = 0.5, 30.0
LOGIN_LOCK_WAIT = 60.0         # seconds between logins while the dongle's login is locked (it unlocks itself)
NUMBER_RE = re.compile(r"\+\d{6,15}")          # E.164, as the store keeps them
# API codes that mean "try again later" rather than "this message is wrong" (HiLink sms API).
BUSY_CODES = {100004: "system busy", 113004: "SMS system busy", 113017: "sending in progress"}


class HilinkChannel(SupervisedDevice):
    label = "hilink"
    kind = ChannelKind.SMS
    capacity = 1

    def __init__(self, cfg: HilinkConfig, sms: SmsConfig, network_hold: float = NETWORK_HOLD_START,
                 login_lock_wait: float = LOGIN_LOCK_WAIT):
        self.cfg = cfg
        self.sms = sms
        self.name = cfg.name
        self.rate_per_minute = cfg.sms_per_minute
        self._api = HilinkApi(cfg.url, cfg.username, cfg.password, cfg.timeout)
        self._io = threading.Lock()                 # one API conversation at a time
        self._init_supervision()
        self._ref = random.randrange(256)
        self._awaiting: dict[str, collections.deque[int]] = {}   # number -> references awaiting a report
        self._login_refused = False
        self._login_locked = False
        self._login_lock_wait = login_lock_wait
        self._handed: set[Stored] = set()          # given to the sink, not yet deleted from the dongle
        self._network = NetworkWatch(network_hold)

    # ------------------------------------------------------------ protocol

    def _open_wait(self) -> float:
        return max(5.0, self.cfg.timeout * 3)

    def close(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=self.cfg.timeout * 3 + 5)
            self._supervisor = None
        with self._io:
            self._api.close()

    def send(self, delivery: Delivery) -> Outcome:
        """Send DELIVERY through the dongle; never raises."""
        if self._health.state is not DeviceState.UP:
            return Outcome.device_down(f"hilink {self.name} is down: {self._health.last_error or 'not connected'}")
        if not NUMBER_RE.fullmatch(delivery.number):
            return Outcome.failed(f"number {redact(delivery.number)} is not an international number (+ and digits)")
        plan = smslib.plan(delivery.text, self.sms.smart_encoding)
        if plan.segments > self.sms.max_segments:
            return Outcome.failed(f"text needs {plan.segments} SMS, more than max_segments = "
                                  f"{self.sms.max_segments}; shorten it")
        if delivery.drill:
            return Outcome.sent(segments=plan.segments, detail="drill")
        with self._io:
            return self._transmit(delivery.number, plan)

    # ------------------------------------------------------------ sending

    def _transmit(self, number: str, plan: smslib.SmsPlan) -> Outcome:
        try:
            self._api.send(number, plan.text_to_send, ucs2=plan.encoding == "ucs2")
        except Refused as exc:
            return Outcome.retry(f"{exc}" + (f": {BUSY_CODES[exc.code]}" if exc.code in BUSY_CODES else ""))
        except HilinkGone as exc:
            self._went_down(str(exc))
            return Outcome.device_down(str(exc), maybe_sent=isinstance(exc, AnswerLost))
        try:
            result = self._api.wait_sent(number, self.cfg.send_timeout, busy=BUSY_CODES)
        except HilinkError as exc:
            # The dongle took the text: a retry could send it twice.
            self._went_down(str(exc))
            return Outcome.device_down(str(exc) + " (may have been sent)", maybe_sent=True)
        if result is None:
            why = f"hilink {self.name}: the dongle did not report the send within {self.cfg.send_timeout:g} s"
            self._went_down(why)
            return Outcome.device_down(why + " (may have been sent)", maybe_sent=True)
        if not result:
            words = f"hilink {self.name}: the dongle reports the send failed"
            if self._health.registered is True:
                # send-status names no reason: with service available, blame the recipient (an AT
                # modem's bare ERROR while registered counts the same way).
                self._network.other_failure()
                return Outcome.retry(words + " (the dongle reports service available)")
            return self._network_refused(words)
        self._network.sent()
        self._ref = (self._ref + 1) % 256
        if self.cfg.delivery_reports:
            self._awaiting.setdefault(number, collections.deque(maxlen=64)).append(self._ref)
        log.debug("hilink %s: sent to %s, %d part(s), ref %d", self.name, redact(number), plan.segments, self._ref)
        return Outcome.sent(reference=self._ref, segments=plan.segments)

    # ------------------------------------------------------------ state

    def _network_refused(self, words: str) -> Outcome:
        """Retry; after NETWORK_FAILURES_DOWN in a row the dongle is down for the network (see network_watch)."""
        if not self._network.network_failure(self._health.registered):
            return Outcome.retry(words)
        self._set_health(state=DeviceState.DOWN, last_error=f"no network: {self._network.failures} sends in a row "
                                                            f"failed ({words}); tried again in "
                                                            f"{self._network.hold:g} s")
        return Outcome.device_down(words)

    def _went_down(self, why: str) -> None:
        self._network.forget()
        self._set_health(state=DeviceState.DOWN, last_error=why)

    def _radio_health(self, radio: Radio) -> dict[str, Any]:
        return dict(signal=radio.signal, registered=registered_flag(radio.network),
                    detail={"model": "HiLink", "url": self.cfg.url, "operator": radio.operator,
                            "network": radio.network.value,
                            "registration": {"service": radio.service, **({"technology": radio.technology}
                                                                          if radio.technology else {})}})

    # ------------------------------------------------------------ supervisor

    def _supervise(self) -> None:
        backoff = BACKOFF_START
        last_look = 0.0
        while not self._stop.is_set():
            if self._network.down:
                if time.monotonic() - last_look >= self.cfg.poll_interval:
                    last_look = time.monotonic()
                    self._look()
                    if self._network.may_try_again(self._health.registered):
                        self._network.try_again()
                        self._set_health(state=DeviceState.UP, last_error="")
                self._stop.wait(min(0.2, self.cfg.poll_interval))
                continue
            if self._health.state is not DeviceState.UP:
                if self._login_refused:
                    self._stop.wait(5.0)      # needs a person: a retry could lock the dongle's login
                elif self._connect():
                    backoff, last_look = BACKOFF_START, time.monotonic()
                elif self._login_locked:
                    self._stop.wait(self._login_lock_wait)   # each try while locked may extend the lock
                else:
                    self._stop.wait(backoff)
                    backoff = min(BACKOFF_MAX, backoff * 2)
                continue
            if time.monotonic() - last_look >= self.cfg.poll_interval:
                last_look = time.monotonic()
                self._look()
            self._stop.wait(min(0.2, self.cfg.poll_interval))

    def _connect(self) -> bool:
        with self._io:
            self._login_locked = False
            try:
                self._api.connect()
                if self.cfg.delivery_reports and not self._api.enable_reports():
                    log.warning("hilink %s: the dongle refuses status reports: no delivery reports", self.name)
                radio = self._api.radio()
            except LoginLocked as exc:
                self._login_locked = True
                return self._failed(str(exc))
            except LoginRefused as exc:
                self._login_refused = True
                return self._failed(str(exc))
            except HilinkError as exc:
                return self._failed(str(exc))
            except Exception as exc:      # a bug here must not kill the supervisor
                log.exception("hilink %s: set-up failed", self.name)
                return self._failed(f"internal error during set-up: {exc!r}")
            self._network.forget()
            self._set_health(state=DeviceState.UP, last_error="", **self._radio_health(radio))
        self._first_try.set()
        self._look()
        return True

    def _failed(self, why: str) -> bool:
        self._api.close()
        self._set_health(state=DeviceState.DOWN, last_error=why)
        self._first_try.set()
        return False

    def _look(self) -> None:
        """Health from the radio, then the inbox: replies and status reports, each written ahead."""
        with self._io:
            try:
                self._set_health(**self._radio_health(self._api.radio()))
                inbox = self._api.inbox()
                self._handed &= set(inbox)           # gone from the dongle: nothing left to delete
                for msg in inbox:
                    if not self._take(msg):
                        break
            except HilinkError as exc:
                self._went_down(str(exc))

    def _take(self, msg: Stored) -> bool:
        """Hand MSG to the sink; delete it from the dongle only once the sink returned. False: stop.
        A message already handed over whose delete failed is only deleted again, never handed twice."""
        if msg not in self._handed:
            event = self._event_for(msg)
            if event is not None:
                try:
                    if self._sink is not None:
                        self._sink(event)
                except Exception:
                    log.exception("hilink %s: could not store message %d; it stays on the dongle", self.name,
                                  msg.index)
                    return False
                if isinstance(event, DeliveryReport):
                    self._awaiting[event.number].popleft()   # matched for good only once stored
            self._handed.add(msg)
        try:
            self._api.delete(msg.index)
        except Refused as exc:
            log.warning("hilink %s: message %d is stored but the dongle did not delete it (%s); tried again on "
                        "the next look", self.name, msg.index, exc)
            return True
        self._handed.discard(msg)
        return True

    def _event_for(self, msg: Stored) -> InboundText | DeliveryReport | None:
        number = normalise(msg.number) if msg.number else msg.number
        if msg.kind is StoredKind.TEXT:
            return InboundText(self.name, number, msg.text)
        waiting = self._awaiting.get(number)
        if not waiting:
            log.warning("hilink %s: status report for %s matches no send awaiting one", self.name, redact(number))
            return None
        return DeliveryReport(self.name, waiting[0], number, msg.kind is StoredKind.DELIVERED, msg.kind.value)


def doctor(cfg: HilinkConfig) -> list[Check]:
    """Log in once and say what the dongle reports (the web login, service, signal, operator)."""
    what = f"hilink {cfg.name}"
    api = HilinkApi(cfg.url, cfg.username, cfg.password, cfg.timeout)
    try:
        api.connect()
        radio = api.radio()
    except HilinkError as exc:
        return [Check(False, f"{what} login", str(exc))]
    finally:
        api.close()
    checks = [Check(True, f"{what} login", f"logged in to {cfg.url} as {cfg.username}")]
    sig = "unknown" if radio.signal is None else f"{radio.signal}/31"
    checks.append(Check(radio.signal is None or radio.signal >= 10, f"{what} signal", sig))
    checks.append(Check(radio.network is not Verdict.NOT_REGISTERED, f"{what} network",
                        f"{radio.service}{', ' + radio.technology if radio.technology else ''}, "
                        f"operator {radio.operator or '?'}"))
    return checks
