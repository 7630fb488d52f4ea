"""Escalation: the member's other channel when the first went unconfirmed in time.

Per category (`[dispatch] escalate_after_minutes_<category>`, 0 = off): that
long after an alert was written, a member whose SMS is not `delivered` gets a
call, and a member whose call is not `acknowledged` gets an SMS — if their
number can take one (a mobile). Members who already have both channels for the
alert (sms+voice) are never escalated, and nobody is escalated twice: the
escalated message is the member's second channel. A cancelled, corrected or
expired alert escalates nothing; cancelling or correcting it also cancels the
escalated messages still waiting. Run from the dispatcher's housekeeping.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .channels.base import ChannelKind
from .config import DispatchConfig
from .errors import InputError
from .model import Category
from .phone import parse_phone
from .store import Store

log = logging.getLogger("gatewayd.escalation")


def escalate_after(policy: DispatchConfig, category: str) -> timedelta | None:
    """How long CATEGORY waits before escalating, or None when it never does."""
    minutes = getattr(policy, f"escalate_after_minutes_{category}", 0.0)
    return timedelta(minutes=minutes) if minutes > 0 else None


def other_channel(channel: str, number: str) -> str | None:
    """The channel an unconfirmed message escalates to, or None (a landline cannot take an SMS)."""
    if channel == ChannelKind.SMS.value:
        return ChannelKind.VOICE.value
    try:
        mobile = parse_phone(number).mobile
    except InputError:
        return None
    return ChannelKind.SMS.value if mobile else None


def escalate_due(store: Store, policy: DispatchConfig, now: datetime) -> int:
    """Queue the other channel for every unconfirmed member of every alert past its escalation time."""
    queued = 0
    for category in Category:
        after = escalate_after(policy, category.value)
        if after is None:
            continue
        for alert_id in store.escalation_due(category.value, now - after, now):
            targets = [(member_id, number, other, lang)
                       for member_id, number, channel, lang in store.unconfirmed(alert_id)
                       if (other := other_channel(channel, number)) is not None]
            if targets:
                n = store.queue_escalation(alert_id, targets, now)
                if n:
                    log.info("alert %d: %d member(s) unconfirmed after %s; their other channel is queued",
                             alert_id, n, after)
                queued += n
    return queued


@dataclass(frozen=True)
class EscalationPlan:
    """What the escalation policy may add to an alert, for the preview and the alert page."""

    minutes: float
    calls: int      # members who would be called if their SMS is not delivered in time
    sms: int        # members who would get an SMS if their call is not acknowledged in time


def plan(policy: DispatchConfig, category: str, rows: list[dict[str, Any]]) -> EscalationPlan | None:
    """From the message rows an alert makes (Store.planned_messages), the most escalation can add."""
    after = escalate_after(policy, category)
    if after is None:
        return None
    channels: dict[int, set[str]] = {}
    for r in rows:
        channels.setdefault(r["member_id"], set()).add(r["channel"])
    single = [r for r in rows if len(channels[r["member_id"]]) == 1]
    calls = sum(1 for r in single if r["channel"] == ChannelKind.SMS.value)
    sms = sum(1 for r in single if r["channel"] == ChannelKind.VOICE.value
              and other_channel(r["channel"], r["number"]) is not None)
    return EscalationPlan(after.total_seconds() / 60, calls, sms)
