"""SQLAlchemy ORM: the persistent domain.

The state machine of a Message lives in store/queue.py; this module only says what
is stored. Times are UTC, timezone-aware.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# The domain vocabulary lives in gatewayd.vocabulary (no SQLAlchemy, so the CLI's fast path can
# use it); it is re-exported here, where the stored model is.
from .outcomes import DeviceState
from .vocabulary import (
    DONE_STATES,
    TERMINAL_STATES,
    AlertChannel,
    AlertState,
    AuditAction,
    Category,
    FormProblem,
    Language,
    MemberChannel,
    MessageState,
    NodeState,
    ReceivedKind,
    Role,
    RowProblem,
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    pass


member_network = Table(
    "member_network", Base.metadata,
    Column("member_id", ForeignKey("member.id", ondelete="CASCADE"), primary_key=True),
    Column("network_id", ForeignKey("network.id", ondelete="CASCADE"), primary_key=True),
)

alert_network = Table(
    "alert_network", Base.metadata,
    Column("alert_id", ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True),
    Column("network_id", ForeignKey("network.id", ondelete="CASCADE"), primary_key=True),
)

user_network = Table(
    "user_network", Base.metadata,
    Column("user_id", ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
    Column("network_id", ForeignKey("network.id", ondelete="CASCADE"), primary_key=True),
)


class Network(Base):
    """A BIN (or BIN-Z for businesses)."""

    __tablename__ = "network"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    zone: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    members: Mapped[list["Member"]] = relationship(secondary=member_network, back_populates="networks")


class Member(Base):
    __tablename__ = "member"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(20), unique=True)          # E.164
    channel: Mapped[str] = mapped_column(String(16), default=MemberChannel.SMS.value)     # sms | voice | sms+voice
    language: Mapped[str] = mapped_column(String(2), default="nl")
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    networks: Mapped[list[Network]] = relationship(secondary=member_network, back_populates="members")


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))                       # Role
    zone: Mapped[str] = mapped_column(String(120), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Sessions carry the version they were opened under; bumping it (logout, password,
    # role or deactivation, "log out everywhere") ends every session of this user at once.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    networks: Mapped[list[Network]] = relationship(secondary=user_network)


class Alert(Base):
    __tablename__ = "alert"
    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(16))                   # Category
    priority: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)                             # default text
    texts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)             # per language
    channel_mode: Mapped[str] = mapped_column(String(16), default=AlertChannel.MEMBER.value)  # sms | voice | member
    author: Mapped[str] = mapped_column(String(80), default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("alert.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(20), default=AlertState.ACTIVE.value)
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A correction replaces this alert: it went to those who had the original, the rest was cancelled.
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("alert.id"), nullable=True)
    # A correction names the alert it corrects; unique, so the database itself refuses a
    # second correction of one alert, however the requests interleave.
    corrects: Mapped[int | None] = mapped_column(ForeignKey("alert.id"), nullable=True, unique=True)
    # Four-eyes: who approved an alert whose category needs a second person.
    approved_by: Mapped[str] = mapped_column(String(80), default="")
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Round-robin across alerts of equal priority: the alert served longest ago goes next.
    last_served: Mapped[float] = mapped_column(Float, default=0.0)
    networks: Mapped[list[Network]] = relationship(secondary=alert_network)

    __table_args__ = (Index("ix_alert_state_priority", "state", "priority", "last_served"),)


class Message(Base):
    """One recipient x one channel of an alert."""

    __tablename__ = "message"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), nullable=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id", ondelete="SET NULL"), nullable=True)
    number: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(8))                     # ChannelKind
    language: Mapped[str] = mapped_column(String(2), default="nl")
    text: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=MessageState.QUEUED.value)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Two budgets: the recipient's tries (busy, no answer, rejected) and the devices'
    # failures (port gone, timeout, Asterisk down). One never uses up the other.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    device_failures: Mapped[int] = mapped_column(Integer, default=0)
    device: Mapped[str | None] = mapped_column(String(80), nullable=True)
    node: Mapped[str | None] = mapped_column(String(80), nullable=True)
    reference: Mapped[int | None] = mapped_column(Integer, nullable=True)   # SMS TP-MR
    segments: Mapped[int] = mapped_column(Integer, default=0)
    possible_duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    # Queued by the escalation policy: the member's other channel, after the first went unconfirmed.
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        # The claim walks this index: per owner and channel, queued and due retries in
        # (not_before, id) order, so rows backing off are skipped by a range, not read.
        Index("ix_message_claim", "alert_id", "channel", "state", "not_before", "id"),
        Index("ix_message_state", "state", "channel"),
        Index("ix_message_report", "device", "reference", "number"),
        Index("ix_message_number", "number"),
    )


class Attempt(Base):
    """One try at sending a message through one device."""

    __tablename__ = "attempt"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"), index=True)
    device: Mapped[str] = mapped_column(String(80))
    node: Mapped[str] = mapped_column(String(80), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    result: Mapped[str | None] = mapped_column(String(20), nullable=True)   # OutcomeKind or "interrupted"
    error: Mapped[str] = mapped_column(Text, default="")


class AuditEntry(Base):
    __tablename__ = "audit_entry"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")


class InboundMessage(Base):
    __tablename__ = "inbound_message"
    id: Mapped[int] = mapped_column(primary_key=True)
    device: Mapped[str] = mapped_column(String(80))
    number: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))                       # stop | start | ack | report
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id", ondelete="SET NULL"), nullable=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alert.id", ondelete="SET NULL"), nullable=True)
    handled: Mapped[bool] = mapped_column(Boolean, default=False)
    handled_by: Mapped[str] = mapped_column(String(80), default="")


class ReceivedEvent(Base):
    """What a device received, written ahead: committed before the SIM copy is deleted
    (or the network acknowledged), acted on afterwards. A crash leaves it here or on the SIM."""

    __tablename__ = "received_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    device: Mapped[str] = mapped_column(String(80))
    node: Mapped[str] = mapped_column(String(80), default="")           # whose device: names repeat across nodes
    kind: Mapped[str] = mapped_column(String(16))                       # ReceivedKind
    number: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text, default="")
    reference: Mapped[int | None] = mapped_column(Integer, nullable=True)   # status report: TP-MR
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    permanent: Mapped[bool] = mapped_column(Boolean, default=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The same SMS read twice (a crash between commit and delete) is stored once.
    key: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_received_event_todo", "processed_at", "id"),)


class Node(Base):
    """A gateway (`gatewayd run`) sharing the queue: its id, its lease, where it runs.

    The id is made once per box (gatewayd/nodes.py) and never derived from the host
    name. `heartbeat_at` is the database's clock: boxes' clocks need not agree.
    """

    __tablename__ = "node"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="")          # a label for people
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Others wait this long after the last heartbeat before they take its sends over.
    lease_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Device(Base):
    """Last known state of a device of one node, written by its daemon, read by status and the page.

    Keyed by node and name: two gateways may both call their modem `modem1`."""

    __tablename__ = "device"
    node: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default=DeviceState.STARTING.value)
    signal: Mapped[int | None] = mapped_column(Integer, nullable=True)
    registered: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Setting(Base):
    """Small key/value state kept across restarts (e.g. the daemon's heartbeat)."""

    __tablename__ = "setting"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# ---------------------------------------------------------------------- web (police page)
class ApiToken(Base):
    """A token another system uses on the HTTP API. Only its SHA-256 is stored:
    the token is 32 random bytes, so a slow hash adds nothing but latency."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12), default="")          # shown to tell tokens apart
    zone: Mapped[str] = mapped_column(String(120), default="")           # "" = every network
    created_by: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoginThrottle(Base):
    """Login attempts per account, address or both (store/throttle.py); a lock when there were too many."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)     # "ua:user|ip", "a:ip", "u:user", "k:user|ip"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertTemplate(Base):
    """A common BIN alert (burglary, missing person ...) with its text per language."""

    __tablename__ = "alert_template"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(16), default=Category.URGENT.value)
    texts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)              # nl/fr/de/en -> text
    position: Mapped[int] = mapped_column(Integer, default=0)
    updated_by: Mapped[str] = mapped_column(String(80), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


__all__ = ["Alert", "AlertChannel", "AlertState", "AlertTemplate", "ApiToken", "Attempt", "AuditAction",
           "AuditEntry", "Base", "Category", "DONE_STATES", "Device", "FormProblem", "InboundMessage", "Language",
           "LoginThrottle",
           "Member", "MemberChannel", "Message", "MessageState", "Network", "Node", "NodeState", "ReceivedEvent",
           "ReceivedKind", "Role", "RowProblem", "Setting", "TERMINAL_STATES", "UTCDateTime", "User",
           "alert_network", "member_network", "user_network", "utcnow"]
