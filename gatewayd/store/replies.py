"""What comes back: delivery reports, replies, opt-outs and the inbox.

A status report moves a sent message on (delivered / failed); a reply may opt a
member out or in (with a confirmation SMS), acknowledge an alert, and always
lands in the inbox, all in one transaction.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from .. import reasons
from ..errors import NotFound
from ..model import Alert, InboundMessage, Member, Message, MessageState, Node, ReceivedEvent, ReceivedKind, utcnow
from ..outcomes import ChannelKind, DeliveryReport, InboundText
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


HANDLED_BY_THE_BOX = "gatewayd"      # the inbox's "handled by" for replies the box acted on itself


class RepliesStore(StoreBase):
    """Delivery reports, replies and the inbox."""

    def apply_delivery_report(self, report: DeliveryReport, window: timedelta = timedelta(days=3)) -> int | None:
        """Match a status report to the message it is about; returns its id or None.

        The 8-bit reference wraps every 256 sends, so the match is on device,
        reference, number and a time window, newest first.
        """
        return self.apply_delivery_reports([report], window)[0]

    def apply_delivery_reports(self, reports: list[DeliveryReport], window: timedelta = timedelta(days=3),
                               node: str | None = None, received_ids: list[int] | None = None) -> list[int | None]:
        """Apply several reports in one transaction; a matched id or None for each.

        One query per device finds the candidates; matching happens here, newest
        first, each message taken once (two reports with the same reference and
        number go to the two newest such messages); the updates run as one batch.
        NODE: the node whose device got the reports (another node may have a device of the same name).
        RECEIVED_IDS: the reports' write-ahead rows; those matched (or only temporary)
        are marked processed in the same transaction.
        """
        matched: list[int | None] = [None] * len(reports)
        by_device: dict[str, list[int]] = {}
        for i, r in enumerate(reports):
            if r.permanent:
                by_device.setdefault(r.device, []).append(i)
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
            done = [rid for rid, r, m in zip(received_ids or (), reports, matched) if m is not None or not r.permanent]
            if done:
                c.execute(update(ReceivedEvent).where(ReceivedEvent.id.in_(done)).values(processed_at=now))
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
                              reason=reasons.MEMBER_STOPPED))
        return member

    def acknowledge(self, message_id: int) -> None:
        with self.engine.begin() as c:
            c.execute(update(Message).where(Message.id == message_id,
                                            Message.state.in_(_ACKNOWLEDGEABLE))
                      .values(state=MessageState.ACKNOWLEDGED.value, updated_at=utcnow()))

    def file_reply(self, device: str, number: str, text: str, kind: str, at: datetime,
                   member_id: int | None, alert_id: int | None, opt_out: bool | None = None,
                   confirmation: tuple[str, str] | None = None, ack_message_id: int | None = None,
                   received_id: int | None = None) -> int | None:
        """Everything one reply causes, in one transaction: opt-out/in with its confirmation
        SMS, the acknowledgement, and the inbox row. Either all of it happens or none.

        RECEIVED_ID: the write-ahead row this reply came from, marked processed in the same
        transaction; None is returned (and nothing done) when it was processed already.
        """
        now = utcnow()
        with self.session.begin() as s:
            if received_id is not None and not s.execute(
                    update(ReceivedEvent).where(ReceivedEvent.id == received_id, ReceivedEvent.processed_at.is_(None))
                    .values(processed_at=now)).rowcount:  # type: ignore[attr-defined]
                return None
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
            # A reply the box acted on in full (opt-out/in confirmed, receipt recorded) is no work for
            # anyone: it is listed as handled by the box, and only the rest count as unread.
            acted_on = opt_out is not None or ack_message_id is not None
            row = InboundMessage(device=device, number=number, text=text, kind=kind, received_at=at,
                                 member_id=member_id, alert_id=alert_id, handled=acted_on,
                                 handled_by=HANDLED_BY_THE_BOX if acted_on else "")
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

    # ------------------------------------------------------------------ received: written ahead
    def receive(self, event: InboundText | DeliveryReport, node: str = "") -> int | None:
        """Commit what a device received before it is deleted from the SIM (or acknowledged).

        Returns the row's id; None when the same SMS (same `key`) was stored already, as
        after a crash between this commit and the delete. Raises when it cannot be stored:
        the device must then keep it.
        """
        row: dict[str, Any]
        if isinstance(event, DeliveryReport):
            row = {"kind": ReceivedKind.STATUS_REPORT.value, "number": event.number, "reference": event.reference,
                   "delivered": event.delivered, "permanent": event.permanent, "detail": event.detail,
                   "key": None}
        else:
            row = {"kind": ReceivedKind.SMS.value, "number": event.number, "text": event.text,
                   "key": event.key or None}
        row.update(device=event.device, node=node, received_at=event.at)
        with self.engine.begin() as c:
            if row["key"] is not None and c.scalar(select(ReceivedEvent.id).where(ReceivedEvent.key == row["key"])):
                return None
            received_id: int = c.execute(insert(ReceivedEvent).returning(ReceivedEvent.id), [row]).scalar_one()
            return received_id

    def received_todo(self, kind: ReceivedKind, node: str, limit: int = 200
                      ) -> list[tuple[int, InboundText | DeliveryReport]]:
        """(row id, event) of what NODE's devices received of KIND and not yet acted on, oldest
        first. Per node: a status report matches the sends of the node whose device got it.
        Replies (a STOP) also of nodes whose lease ran out: a node that stored one and died
        for good must not leave it unheard; file_reply acts on each once."""
        with self.engine.connect() as c:
            nodes = [node]
            if kind is ReceivedKind.SMS:
                nodes += self._silent_nodes(c)
            rows = c.execute(select(ReceivedEvent).where(ReceivedEvent.processed_at.is_(None),
                                                         ReceivedEvent.kind == kind.value,
                                                         ReceivedEvent.node.in_(nodes))
                             .order_by(ReceivedEvent.processed_at, ReceivedEvent.id).limit(limit)).all()
        out: list[tuple[int, InboundText | DeliveryReport]] = []
        for r in rows:
            if r.kind == ReceivedKind.STATUS_REPORT.value:
                out.append((r.id, DeliveryReport(r.device, r.reference, r.number, r.delivered, r.detail, r.permanent,
                                                 r.received_at)))
            else:
                out.append((r.id, InboundText(r.device, r.number, r.text, r.received_at, r.key or "")))
        return out

    def _silent_nodes(self, c: Connection) -> list[str]:
        """Nodes whose lease ran out, by the database's clock (gatewayd/nodes.py)."""
        now = c.scalar(select(func.now())) if self._pg else utcnow()
        rows = c.execute(select(Node.id, Node.heartbeat_at, Node.lease_seconds)
                         .where(Node.heartbeat_at.is_not(None))).all()
        return [r.id for r in rows if r.heartbeat_at + timedelta(seconds=r.lease_seconds) < now]

    def mark_received(self, ids: list[int], now: datetime | None = None) -> None:
        """Acted on (or given up on): not handed out by received_todo again."""
        if ids:
            with self.engine.begin() as c:
                c.execute(update(ReceivedEvent).where(ReceivedEvent.id.in_(ids), ReceivedEvent.processed_at.is_(None))
                          .values(processed_at=now or utcnow()))
