"""Calls coming in (voice): key presses on alert calls and the callback line, where a member hears their alerts.

Each is written before the caller is thanked or told anything; the inbox rows they
leave are marked handled (nobody has to act on them) and put the call on the alert's page.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from .. import reasons
from ..model import (
    Alert,
    AlertState,
    AuditAction,
    AuditEntry,
    InboundMessage,
    Member,
    Message,
    MessageState,
    alert_network,
    utcnow,
)
from ..outcomes import ChannelKind, KeyPress
from ..phone import redact
from .base import StoreBase

# handled_by of the inbox rows the voice channel's callers leave (they need no one to handle them).
BY_CALLBACK_LINE, BY_CALLBACK_KEY, BY_CALL_KEY = "callback line", "callback line key", "alert call key"


class CallsStore(StoreBase):
    """The callback line and keys pressed on calls."""

    def callbacks_of(self, alert_id: int) -> list[dict[str, Any]]:
        """Who heard this alert on the callback line, when, and whether they pressed 1."""
        with self.engine.connect() as c:
            rows = c.execute(select(InboundMessage.number, InboundMessage.received_at, InboundMessage.handled_by)
                             .where(InboundMessage.alert_id == alert_id,
                                    InboundMessage.handled_by.in_((BY_CALLBACK_LINE, BY_CALLBACK_KEY)))
                             .order_by(InboundMessage.received_at, InboundMessage.id)).all()
        out: list[dict[str, Any]] = []
        for r in rows:
            if r.handled_by == BY_CALLBACK_LINE:
                out.append({"number": r.number, "at": r.received_at, "confirmed": False})
                continue
            match = next((o for o in reversed(out) if o["number"] == r.number), None)
            if match is not None:
                match["confirmed"] = True
        return out

    def callback_alerts(self, member_id: int, since: datetime) -> list[tuple[int, str, str, datetime]]:
        """(alert id, text in the member's language, category, created) of the alerts of the member's
        networks since SINCE, newest first: what the callback line reads. No drills, nothing cancelled,
        waiting for approval or corrected (the correction is read instead)."""
        with self.session() as s:
            member = s.get(Member, member_id)
            nets = [n.id for n in member.networks] if member is not None else []
            if member is None or not nets:
                return []
            rows = s.execute(select(Alert).join(alert_network, alert_network.c.alert_id == Alert.id)
                             .where(alert_network.c.network_id.in_(nets), Alert.created_at >= since,
                                    Alert.drill.is_(False), Alert.superseded_by.is_(None),
                                    Alert.state.in_((AlertState.ACTIVE.value, AlertState.DONE.value)))
                             .distinct().order_by(Alert.created_at.desc(), Alert.id.desc())).scalars().all()
            return [(a.id, self._message_text(a, ChannelKind.VOICE, member.language, a.created_at), a.category,
                     a.created_at) for a in rows]

    def record_callback(self, device: str, number: str, member_id: int | None, alert_ids: list[int],
                        at: datetime, kind: str) -> None:
        """A call to the box, in one transaction: the audit entry and, per alert it hears, an inbox row
        (handled: nothing to do) that puts the callback on the alert's page. A stranger's number is
        kept redacted."""
        shown = number if member_id is not None else redact(number)
        with self.session.begin() as s:
            s.add(AuditEntry(actor=f"callback:{shown}", action=AuditAction.CALLBACK.value, at=at,
                             detail={"member_id": member_id, "alerts": list(alert_ids), "device": device}))
            heard: list[int | None] = list(alert_ids) or [None]     # no alert: still one row for the call
            for alert_id in heard:
                s.add(InboundMessage(device=device, number=shown, text="called the callback line", kind=kind,
                                     received_at=at, member_id=member_id, alert_id=alert_id, handled=True,
                                     handled_by=BY_CALLBACK_LINE))

    def record_key_press(self, press: KeyPress, kind: str) -> None:
        """A 1 pressed on a call, written before the caller is thanked. On an alert call the inbox row
        is the record (the call's outcome follows when it ends); on the callback line it also
        acknowledges the member's message of that alert, whatever became of it."""
        with self.session.begin() as s:
            member = s.scalar(select(Member).where(Member.phone == press.number))
            alert_id = press.alert_id
            if press.message_id is not None:
                alert_id = s.scalar(select(Message.alert_id).where(Message.id == press.message_id))
                text = f"key {press.digit} during the alert call"
            else:
                text = f"key {press.digit} on the callback line"
                s.add(AuditEntry(actor=f"callback:{press.number}", action=AuditAction.CALLBACK_CONFIRM.value,
                                 at=press.at,
                                 detail={"alert_id": alert_id, "member_id": member.id if member else None}))
                s.execute(update(Message).where(
                    Message.alert_id == alert_id, Message.number == press.number,
                    Message.state.in_((MessageState.SENT.value, MessageState.DELIVERED.value,
                                       MessageState.VOICEMAIL.value, MessageState.RETRY.value)))
                    .values(state=MessageState.ACKNOWLEDGED.value, updated_at=utcnow(),
                            reason=reasons.CONFIRMED_ON_CALLBACK))
            s.add(InboundMessage(device=press.device, number=press.number, text=text, kind=kind, received_at=press.at,
                                 member_id=member.id if member else None, alert_id=alert_id, handled=True,
                                 handled_by=BY_CALL_KEY if press.message_id is not None else BY_CALLBACK_KEY))

