"""Self-test: a scheduled proof that the whole path works, SIM to network to phone.

Every `[selftest].every_hours` the daemon texts `to_number` a message holding
a one-time token (and, if `call_number` is set, places a test call). It counts
as passed when the text comes back in (loopback: `to_number` is another of
the box's own SIMs, so the token arrives as an inbound SMS) or the network
reports it delivered, and the call (if any) was answered; as failed when
`wait_minutes` pass first. The result is kept in the `setting` table under
`selftest:<node>`, where the keeper reads it and tells the technical contact.
"""
from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .config import SelfTestConfig
from .model import MessageState, utcnow
from .outcomes import ChannelKind
from .phone import parse_phone
from .store import Store

log = logging.getLogger("gatewayd.selftest")

TOKEN_PREFIX = "gatewayd self-test"
OK_STATES = {MessageState.DELIVERED.value, MessageState.ACKNOWLEDGED.value}
BAD_STATES = {MessageState.FAILED.value, MessageState.EXPIRED.value, MessageState.CANCELLED.value}


@dataclass(frozen=True)
class SelfTestResult:
    ok: bool
    detail: str
    at: datetime


def is_selftest_text(text: str) -> bool:
    return text.strip().lower().startswith(TOKEN_PREFIX)


class SelfTest:
    """Starts a proof when one is due and judges the running one; see the module docstring."""

    def __init__(self, cfg: SelfTestConfig, store: Store, node: str):
        self.cfg = cfg
        self.store = store
        self.key = f"selftest:{node}"[:80]
        self.sms_to = parse_phone(cfg.to_number, field="[selftest].to_number").e164 if cfg.to_number else ""
        self.call_to = parse_phone(cfg.call_number, field="[selftest].call_number").e164 if cfg.call_number else ""

    @property
    def enabled(self) -> bool:
        return self.cfg.every_hours > 0 and bool(self.sms_to or self.call_to)

    def state(self) -> dict[str, Any]:
        return self.store.get_setting(self.key)

    def tick(self, now: datetime | None = None) -> SelfTestResult | None:
        """Judge the running test, or start one when due. Returns a result when one was decided."""
        now = now or utcnow()
        st = self.state()
        if st.get("running"):
            return self._judge(st, now)
        last = datetime.fromisoformat(st["started_at"]) if st.get("started_at") else None
        if self.enabled and (last is None or now - last >= timedelta(hours=self.cfg.every_hours)):
            self.start(now)
        return None

    def start(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or utcnow()
        token = f"{TOKEN_PREFIX} {secrets.token_hex(4)}"
        st = {**self.state(), "running": True, "started_at": now.isoformat(), "token": token,
              "sms_id": None, "call_id": None}
        if self.sms_to:
            st["sms_id"] = self.store.enqueue_system_sms(self.sms_to, token)
        if self.call_to:
            st["call_id"] = self.store.enqueue_system_sms(self.call_to, token, channel=ChannelKind.VOICE.value)
        self.store.put_setting(self.key, st)
        log.info("self-test started")
        return st

    def _judge(self, st: dict[str, Any], now: datetime) -> SelfTestResult | None:
        started = datetime.fromisoformat(st["started_at"])
        problems, pending = [], False
        if st.get("sms_id"):
            state, reason = self.store.message_state(st["sms_id"]) or ("missing", "")
            came_back = self.store.inbound_since(started, st["token"])
            if not (came_back or state in OK_STATES):
                if state in BAD_STATES:
                    problems.append(f"test SMS {state}: {reason}")
                else:
                    pending = True
        if st.get("call_id"):
            state, reason = self.store.message_state(st["call_id"]) or ("missing", "")
            if state in BAD_STATES:
                problems.append(f"test call {state}: {reason}")
            elif state not in OK_STATES:
                pending = True
        if pending and not problems and now - started < timedelta(minutes=self.cfg.wait_minutes):
            return None
        if pending and not problems:
            problems.append(f"no proof within {self.cfg.wait_minutes:g} min (SMS neither delivered nor "
                            "received back, or call not answered)")
        result = SelfTestResult(not problems, "; ".join(problems) or "passed", now)
        self.store.put_setting(self.key, {**st, "running": False, "ok": result.ok, "detail": result.detail,
                                          "finished_at": now.isoformat()})
        (log.info if result.ok else log.error)("self-test %s: %s", "passed" if result.ok else "FAILED",
                                               result.detail)
        return result


def failed_selftest(store: Store, node: str) -> str:
    """The last self-test's failure, for the keeper; '' when it passed or never ran."""
    st = store.get_setting(f"selftest:{node}"[:80])
    return "" if st.get("ok", True) else f"self-test failed: {st.get('detail', '')}"


def start_selftest(cfg: SelfTestConfig, store: Store, node: str, stop: threading.Event,
                   period: float = 30.0) -> threading.Thread | None:
    """Run the self-test schedule on its own thread; None when not configured."""
    test = SelfTest(cfg, store, node)
    if not test.enabled:
        return None

    def loop() -> None:
        while not stop.wait(period):
            try:
                test.tick()
            except Exception:
                log.exception("self-test check failed; trying again in %.0f s", period)

    t = threading.Thread(target=loop, name="selftest", daemon=True)
    t.start()
    return t
