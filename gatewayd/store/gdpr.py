"""Personal data (GDPR / AVG): what gatewayd holds about a person, erasure, retention.

* `export_member` gathers everything held about one phone number: the member
  record and networks, every message addressed to the number (text, states,
  times), every attempt, every reply received from it, and the audit entries
  about the member.
* `erase_member` deletes the member and blanks the number and text of every
  message and reply linked to them; delivery records stay as anonymous rows so
  alert counts are unchanged. Messages still waiting are cancelled. On SQLite
  the erasing connection uses `secure_delete` and the WAL is checkpointed, so
  the number does not linger in free pages of the database file (backups made
  earlier still hold it until they are rotated away).
* `purge` is retention: delivery records and replies older than
  `[retention].days` lose their text and number, keeping their state, so the
  counts per alert and per day survive.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, or_, select, update

from .. import reasons
from ..errors import NotFound
from ..model import (
    Attempt,
    AuditAction,
    AuditEntry,
    InboundMessage,
    Member,
    Message,
    MessageState,
    member_network,
    utcnow,
)
from ..phone import parse_phone
from .base import StoreBase as Store

# Every audit action about a member (AuditAction.MEMBER_*), whoever wrote it: CLI and page spell them alike.
_MEMBER_ACTIONS = "member.%"

ERASED = ""                      # what an erased or purged number / text becomes
WAITING = (MessageState.QUEUED.value, MessageState.RETRY.value)
# States a message never leaves again: only those are purged.
FINAL = tuple(s.value for s in MessageState if s not in (MessageState.QUEUED, MessageState.RETRY,
                                                          MessageState.SENDING))
PURGE_BATCH = 500                # rows per transaction: the daemon's workers wait at most one batch


@dataclass(frozen=True)
class EraseReport:
    member_id: int | None
    messages: int                # delivery records anonymised
    cancelled: int               # messages that were still waiting
    replies: int                 # inbound messages anonymised

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PurgeReport:
    before: datetime
    messages: int
    replies: int

    def as_dict(self) -> dict[str, Any]:
        return {"before": self.before.isoformat(), "messages": self.messages, "replies": self.replies}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _row(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for f in fields:
        v = getattr(obj, f)
        out[f] = _iso(v) if isinstance(v, datetime) else v
    return out


_MEMBER_FIELDS = ("id", "name", "phone", "channel", "language", "consent_at", "opted_out", "opted_out_at",
                  "active", "created_at")
_MESSAGE_FIELDS = ("id", "alert_id", "channel", "language", "text", "state", "attempts", "device", "reason",
                   "possible_duplicate", "created_at", "sent_at", "delivered_at")
_ATTEMPT_FIELDS = ("message_id", "device", "started_at", "ended_at", "result", "error")
_REPLY_FIELDS = ("id", "device", "text", "kind", "alert_id", "received_at", "handled", "handled_by")
_AUDIT_FIELDS = ("at", "actor", "action", "detail", "ip")


def _audit_about(entries: Iterable[AuditEntry], member_id: int | None) -> list[AuditEntry]:
    """Audit entries whose detail names MEMBER_ID (detail is JSON; filtered here to stay portable)."""
    if member_id is None:
        return []
    return [e for e in entries if isinstance(e.detail, dict) and e.detail.get("member_id") == member_id]


def export_member(store: Store, number: str, now: datetime | None = None) -> dict[str, Any]:
    """Everything gatewayd holds about NUMBER, as JSON-ready data; NotFound when it holds nothing."""
    e164 = parse_phone(number).e164
    with store.session() as s:
        member = s.scalar(select(Member).where(Member.phone == e164))
        mid = member.id if member else None
        linked = [Message.number == e164] + ([Message.member_id == mid] if mid else [])
        messages = s.scalars(select(Message).where(or_(*linked)).order_by(Message.id)).all()
        attempts = s.scalars(select(Attempt).where(Attempt.message_id.in_([m.id for m in messages]))
                             .order_by(Attempt.id)).all() if messages else []
        reply_link = [InboundMessage.number == e164] + ([InboundMessage.member_id == mid] if mid else [])
        replies = s.scalars(select(InboundMessage).where(or_(*reply_link)).order_by(InboundMessage.id)).all()
        audit = _audit_about(s.scalars(select(AuditEntry).where(AuditEntry.action.like(_MEMBER_ACTIONS))
                                       .order_by(AuditEntry.id)), mid)
        if member is None and not messages and not replies:
            raise NotFound("person with number", e164)
        return {
            "number": e164,
            "exported_at": (now or utcnow()).isoformat(),
            "member": None if member is None else {**_row(member, _MEMBER_FIELDS),
                                                   "networks": sorted(n.name for n in member.networks)},
            "messages": [_row(m, _MESSAGE_FIELDS) for m in messages],
            "attempts": [_row(a, _ATTEMPT_FIELDS) for a in attempts],
            "replies": [_row(r, _REPLY_FIELDS) for r in replies],
            "audit": [_row(e, _AUDIT_FIELDS) for e in audit],
        }


def erase_member(store: Store, number: str, actor: str = "cli") -> EraseReport:
    """Delete the member with NUMBER and blank their number and texts everywhere; counts are kept."""
    e164 = parse_phone(number).e164
    engine = store.engine
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            c.exec_driver_sql("PRAGMA secure_delete=ON")
        mid = c.scalar(select(Member.id).where(Member.phone == e164))
        linked = or_(Message.number == e164, *([Message.member_id == mid] if mid else []))
        cancelled = c.execute(update(Message).where(linked, Message.state.in_(WAITING))
                              .values(state=MessageState.CANCELLED.value, reason=reasons.MEMBER_ERASED,
                                      updated_at=utcnow())).rowcount
        # Error texts from devices and the network may quote the number.
        ids = select(Message.id).where(linked).scalar_subquery()
        quoted = f"%{_national(e164)}%"
        c.execute(update(Attempt).where(Attempt.message_id.in_(ids), Attempt.error.like(quoted)).values(error=""))
        c.execute(update(Message).where(linked, Message.reason.like(quoted)).values(reason=reasons.ERASED))
        messages = c.execute(update(Message).where(linked)
                             .values(number=ERASED, text=ERASED, member_id=None)).rowcount
        reply_link = or_(InboundMessage.number == e164, *([InboundMessage.member_id == mid] if mid else []))
        replies = c.execute(update(InboundMessage).where(reply_link)
                            .values(number=ERASED, text=ERASED, member_id=None)).rowcount
        if mid is not None:
            c.execute(delete(member_network).where(member_network.c.member_id == mid))
            c.execute(delete(Member).where(Member.id == mid))
        if mid is None and not messages and not replies:
            raise NotFound("person with number", e164)
    _checkpoint(store)
    report = EraseReport(mid, messages, cancelled, replies)
    # The audit says that someone was erased, not who: the number is gone.
    store.audit(actor, AuditAction.MEMBER_ERASE, report.as_dict())
    return report


def _national(e164: str) -> str:
    """The national significant number (470123456 for +32470123456): found in any notation's digits."""
    import phonenumbers
    return str(phonenumbers.parse(e164).national_number)


def _checkpoint(store: Store) -> None:
    """SQLite: move the WAL into the database and truncate it, so erased content leaves the -wal file."""
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def purge(store: Store, days: int, now: datetime | None = None) -> PurgeReport:
    """Blank text and number of finished messages and replies older than DAYS (0: keep everything)."""
    now = now or utcnow()
    before = now - timedelta(days=days)
    if days <= 0:
        return PurgeReport(before, 0, 0)
    old_messages = select(Message.id).where(Message.created_at < before, Message.state.in_(FINAL),
                                            or_(Message.number != ERASED, Message.text != ERASED))
    messages = _in_batches(store, old_messages, Message, {"number": ERASED, "text": ERASED})
    old_replies = select(InboundMessage.id).where(InboundMessage.received_at < before,
                                                  or_(InboundMessage.number != ERASED,
                                                      InboundMessage.text != ERASED))
    replies = _in_batches(store, old_replies, InboundMessage, {"number": ERASED, "text": ERASED})
    _checkpoint(store)
    return PurgeReport(before, messages, replies)


def _in_batches(store: Store, ids_query: Select[Any], table: Any, values: dict[str, Any]) -> int:
    """Update the rows IDS_QUERY selects, PURGE_BATCH at a time, each batch its own short transaction."""
    total = 0
    while True:
        with store.engine.begin() as c:
            if store.engine.dialect.name == "sqlite":
                c.exec_driver_sql("PRAGMA secure_delete=ON")
            ids = c.scalars(ids_query.limit(PURGE_BATCH)).all()
            if not ids:
                return total
            total += c.execute(update(table).where(table.id.in_(ids)).values(**values)).rowcount
