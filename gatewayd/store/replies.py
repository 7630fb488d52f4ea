"""What comes back: delivery reports, replies, opt-outs and the inbox.

A status report moves a sent message on (delivered / failed); a reply may opt a
member out or in (with a confirmation SMS), acknowledge an alert, and always
lands in the inbox, all in one transaction.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..model import Alert, InboundMessage, Member, Message, MessageState, utcnow
from ..outcomes import ChannelKind, DeliveryReport
from ..phone import normalise
from ..wakeup import wake
from .base import OUT_STATES, SYSTEM_PRIORITY, WAITING, StoreBase, new_message_row

_REPORT_DELIVERED = (update(Message).where(Message.id == bindparam("message"))
                     .values(state=MessageState.DELIVERED.value, delivered_at=bindparam("at"),
                             updated_at=bindparam("now")))
_REPORT_FAILED = (update(Message).where(Message.id == bindparam("message"))
                  .values(state=MessageState.FAILED.value, reason=bindparam("reason"), updated_at=bindparam("now")))
_ACKNOWLEDGEABLE = (MessageState.SENT.value, MessageState.DELIVERED.value)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class RepliesStore(StoreBase):
    """Delivery reports, replies and the inbox."""

    def apply_delivery_report(self, report: DeliveryReport, window: timedelta = timedelta(days=3)) -> int | None:
        """Match a status report to the message it is about; returns its id or None.

        The 8-bit reference wraps every 256 sends, so the match is on device,
        reference, number and a time window, newest first.
        """
        return self.apply_delivery_reports([report], window)[0]

    def apply_delivery_reports(self, reports: list[DeliveryReport], window: timedelta = timedelta(days=3),
                               node: str | None = None) -> list[int | None]:
        """Apply several reports in one transaction; a matched id or None for each.

        One query per device finds the candidates; matching happens here, newest
        first, each message taken once (two reports with the same reference and
        number go to the two newest such messages); the updates run as one batch.
        NODE: the node whose device got the reports (another node may have a device of the same name).
        """
        matched: list[int | None] = [None] * len(reports)
        by_device: dict[str, list[int]] = {}
        for i, r in enumerate(reports):
            if r.permanent:
                by_device.setdefault(r.device, []).append(i)
        if not by_device:
            return matched
        now = utcnow()
        with self.engine.connect() as c:
            for device, idx in by_device.items():
                self._match_reports(c, device, [reports[i] for i in idx], window, idx, matched, node)
            delivered = [{"message": m, "at": reports[i].at, "now": now}
                         for i, m in enumerate(matched) if m is not None and reports[i].delivered]
            failed = [{"message": m, "reason": f"network report: {reports[i].detail}", "now": now}
                      for i, m in enumerate(matched) if m is not None and not reports[i].delivered]
            if delivered:
                c.execute(_REPORT_DELIVERED, delivered)
            if failed:
                c.execute(_REPORT_FAILED, failed)
            c.commit()
        return matched

    def _match_reports(self, c: Connection, device: str, reps: list[DeliveryReport], window: timedelta,
                       idx: list[int], matched: list[int | None], node: str | None = None) -> None:
        since = min(r.at for r in reps) - window
        q = select(Message.id, Message.reference, Message.number, Message.sent_at).where(
            Message.device == device, Message.reference.in_({r.reference for r in reps}),
            Message.state == MessageState.SENT.value, Message.sent_at >= since)
        rows = c.execute(q if node is None else q.where(Message.node == node)).all()
        candidates: dict[tuple[int, str], list[Any]] = {}
        for row in sorted(rows, key=lambda r: (r.sent_at, r.id), reverse=True):
            candidates.setdefault((row.reference, row.number), []).append(row)
        for i, r in zip(idx, reps):
            number = r.number if _E164.match(r.number) else normalise(r.number)
            pool = candidates.get((r.reference, number), [])
            pick = next((row for row in pool if row.sent_at >= r.at - window), None)
            if pick is not None:
                pool.remove(pick)
                matched[i] = pick.id

    def latest_alert_to(self, number: str, within: timedelta = timedelta(days=2)) -> tuple[int, int] | None:
        """(alert id, message id) of the newest alert message that reached NUMBER."""
        since = utcnow() - within
        with self.engine.connect() as c:
            row = c.execute(select(Message.alert_id, Message.id).where(
                Message.number == number,
                Message.alert_id.in_(select(Alert.id).where(Alert.drill.is_(False))),   # drills never reached them
                Message.state.in_(OUT_STATES),
                Message.sent_at >= since).order_by(Message.sent_at.desc(), Message.id.desc()).limit(1)).first()
        return (row.alert_id, row.id) if row else None

    def set_opt_out(self, number: str, opted_out: bool) -> Member | None:
        """Opt a number out (cancelling alert messages still waiting for it) or back in."""
        with self.session.begin() as s:
            return self._set_opt_out(s, number, opted_out)

    def _set_opt_out(self, s: Session, number: str, opted_out: bool) -> Member | None:
        self._lock_opt_outs(s, exclusive=True)
        member = s.scalar(select(Member).where(Member.phone == number))
        if member is None:
            return None
        member.opted_out = opted_out
        member.opted_out_at = utcnow() if opted_out else None
        if opted_out:
            s.execute(update(Message).where(Message.number == number, Message.alert_id.is_not(None),
                                            Message.state.in_(WAITING))
                      .values(state=MessageState.CANCELLED.value, updated_at=utcnow(),
                              reason="the member replied STOP"))
        return member

    def acknowledge(self, message_id: int) -> None:
        with self.engine.begin() as c:
            c.execute(update(Message).where(Message.id == message_id,
                                            Message.state.in_(_ACKNOWLEDGEABLE))
                      .values(state=MessageState.ACKNOWLEDGED.value, updated_at=utcnow()))

    def file_reply(self, device: str, number: str, text: str, kind: str, at: datetime,
                   member_id: int | None, alert_id: int | None, opt_out: bool | None = None,
                   confirmation: tuple[str, str] | None = None, ack_message_id: int | None = None) -> int:
        """Everything one reply causes, in one transaction: opt-out/in with its confirmation
        SMS, the acknowledgement, and the inbox row. Either all of it happens or none."""
        now = utcnow()
        with self.session.begin() as s:
            if opt_out is not None:
                self._set_opt_out(s, number, opt_out)
            if confirmation is not None:
                s.execute(insert(Message), [new_message_row(
                    alert_id=None, member_id=member_id, number=number, channel=ChannelKind.SMS.value,
                    language=confirmation[1], text=confirmation[0], priority=SYSTEM_PRIORITY, now=now)])
                wake(s.connection())
            if ack_message_id is not None:
                s.execute(update(Message).where(Message.id == ack_message_id,
                                                Message.state.in_(_ACKNOWLEDGEABLE))
                          .values(state=MessageState.ACKNOWLEDGED.value, updated_at=now))
            row = InboundMessage(device=device, number=number, text=text, kind=kind, received_at=at,
                                 member_id=member_id, alert_id=alert_id)
            s.add(row)
        return row.id

    def record_inbound(self, device: str, number: str, text: str, kind: str, at: datetime,
                       member_id: int | None, alert_id: int | None) -> int:
        with self.session.begin() as s:
            row = InboundMessage(device=device, number=number, text=text, kind=kind, received_at=at,
                                 member_id=member_id, alert_id=alert_id)
            s.add(row)
        return row.id

    def inbound_since(self, since: datetime, contains: str) -> bool:
        """Has a text containing CONTAINS been received since SINCE?"""
        with self.engine.connect() as c:
            return c.scalar(select(InboundMessage.id).where(InboundMessage.received_at >= since,
                                                            InboundMessage.text.contains(contains))
                            .limit(1)) is not None

    def mark_handled(self, inbound_id: int, actor: str, handled: bool = True) -> None:
        """Someone read (and dealt with) a reply, or reopened it."""
        with self.session.begin() as s:
            msg = s.get(InboundMessage, inbound_id)
            if msg is None:
                raise NotFound("message", inbound_id)
            msg.handled, msg.handled_by = handled, actor if handled else ""
