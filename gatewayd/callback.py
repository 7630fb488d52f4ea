"""The voice channel's desk: calls and keys coming in, written before they are answered.

A member who missed a call phones the box (the dialplan's [bin-callback]
context). The caller is identified by caller ID: a member hears the alerts of
their networks from the last `callback_hours`, newest first; anyone else hears
one neutral sentence and nothing else. Every callback is written (audit log,
and a row per alert heard, which the alert's page and report show) before
anything is played; a 1 is written before the caller is thanked for it.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta

from .channels.base import CallbackItem, CallbackPlan, KeyPress
from .config import AsteriskConfig
from .inbound import ReplyKind
from .phone import normalise, redact
from .store import Store

log = logging.getLogger("gatewayd.callback")

# E.164 allows at most 15 digits. A caller ID that is not shaped like a number (forged by a
# trunk, or fields glued onto it) is treated as withheld, so it can never name a member.
_PLAUSIBLE_NUMBER = re.compile(r"\+?[0-9]{3,15}")


class CallbackDesk:
    """Implements channels.base.CallDesk over the store."""

    def __init__(self, store: Store, cfg: AsteriskConfig):
        self.store = store
        self.cfg = cfg

    def key_pressed(self, press: KeyPress) -> None:
        # The caller ID comes as the trunk gives it (0470..., 0032...): the same E.164 form
        # `callback` recognised the member by, or the 1 would match nothing and be lost.
        press = replace(press, number=normalise(press.number)) if press.number else press
        self.store.record_key_press(press, ReplyKind.ACK.value)
        log.info("key %s from %s written (%s)", press.digit, redact(press.number),
                 f"message {press.message_id}" if press.message_id is not None else f"alert {press.alert_id}")

    def callback(self, device: str, number: str, at: datetime) -> CallbackPlan:
        plausible = _PLAUSIBLE_NUMBER.fullmatch((number or "").replace(" ", ""))
        number = normalise(number) if plausible else ""
        member = self.store.member_by_number(number) if number else None
        if member is None or not member.active:
            self.store.record_callback(device, number or "unknown", None, [], at, ReplyKind.CALLBACK.value)
            log.info("callback line: a call from %s, not a member: neutral sentence only", redact(number or "unknown"))
            return CallbackPlan(member=False, language=self.cfg.callback_language)
        alerts = self.store.callback_alerts(member.id, at - timedelta(hours=self.cfg.callback_hours))
        self.store.record_callback(device, number, member.id, [a[0] for a in alerts], at, ReplyKind.CALLBACK.value)
        log.info("callback line: member %d called; %d alert(s) to read", member.id, len(alerts))
        return CallbackPlan(member=True, language=member.language, hours=self.cfg.callback_hours,
                            items=tuple(CallbackItem(alert_id, text) for alert_id, text, _cat, _at in alerts))
