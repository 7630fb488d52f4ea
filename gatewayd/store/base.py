"""What every part of the store shares: the engine, its sessions, the dispatch policy.

The rest of the program reads through `reading()` / `connection()` (read-only by
convention: nothing there commits) and writes only through the store's methods,
so each rule about what may be written is checked in one place.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session

from ..config import DispatchConfig
from ..db import session_factory
from ..model import Alert, AuditAction, AuditEntry, Category, MessageState, Network

QUEUED, RETRY, SENDING = MessageState.QUEUED.value, MessageState.RETRY.value, MessageState.SENDING.value
WAITING = (QUEUED, RETRY)                  # not yet handed to a device
PENDING = (QUEUED, RETRY, SENDING)         # the alert is not over while one of these remains
# A member "has" an alert once its message is out (or on its way out).
RECEIVED_STATES = (SENDING, MessageState.SENT.value, MessageState.DELIVERED.value, MessageState.ACKNOWLEDGED.value)
# The message went out (a correction or a reply can refer to it).
OUT_STATES = (MessageState.SENT.value, MessageState.DELIVERED.value, MessageState.ACKNOWLEDGED.value)
# A message "reached" its member when it is on their phone: an SMS sent or delivered, a call heard
# or a short message left on their answering machine (the status page's messages and members figures).
REACHED_STATES = OUT_STATES + (MessageState.VOICEMAIL.value,)


def new_message_row(*, alert_id: int | None, member_id: int | None, number: str, channel: str, language: str,
                    text: str, priority: int, now: datetime) -> dict[str, Any]:
    """The one shape of a freshly queued message (alert messages, corrections, system messages)."""
    return {"alert_id": alert_id, "member_id": member_id, "number": number, "channel": channel,
            "language": language, "text": text, "priority": priority, "state": QUEUED, "not_before": now,
            "attempts": 0, "created_at": now, "updated_at": now, "segments": 0, "possible_duplicate": False,
            "reason": ""}


SYSTEM_PRIORITY = Category.URGENT.priority     # opt-out confirmations, keeper alerts: never behind an alert
OPT_OUT_LOCK = 0x6777_0001   # PostgreSQL advisory lock key: queueing for members vs opting out


class StoreBase:
    """The engine and session factory every store part works over."""

    def __init__(self, engine: Engine, policy: DispatchConfig | None = None):
        self.engine = engine
        self.policy = policy or DispatchConfig()
        self.session = session_factory(engine)
        self._pg = engine.dialect.name == "postgresql"

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for view queries: objects stay readable after it closes; nothing is committed."""
        with self.session() as s:
            yield s

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection for view queries (counts, rows); nothing is committed."""
        with self.engine.connect() as c:
            yield c

    if TYPE_CHECKING:
        # Parts of the store that others build on (the Store class has them all).
        def network(self, s: Session, name: str) -> Network: ...
        def devices(self) -> list[dict[str, Any]]: ...
        def queue_depth(self, now: datetime | None = None) -> dict[str, Any]: ...
        def callbacks_of(self, alert_id: int) -> list[dict[str, Any]]: ...
        def _message_text(self, alert: Alert, channel: str, lang: str, now: datetime) -> str: ...

    def _lock_opt_outs(self, s: Session, exclusive: bool) -> None:
        """PostgreSQL: queueing for members (shared) and opting out (exclusive) exclude each other,
        so a STOP committed while an alert is being queued still cancels that member's row, and
        an alert queued while a STOP commits reads the member as opted out. SQLite takes its
        write lock at the first write of either and needs nothing more."""
        if self._pg:
            fn = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
            s.execute(select(fn(OPT_OUT_LOCK)))

    def check_schema(self) -> None:
        """Refuse a database whose schema is missing or older than this code (GatewaydError: run init-db)."""
        from ..db import check_schema
        check_schema(self.engine)

    def audit(self, actor: str, action: AuditAction, detail: dict[str, Any] | None = None, ip: str = "") -> None:
        """Record who did what; ACTION is one spelling for the CLI, the page and the API."""
        with self.session.begin() as s:
            s.add(AuditEntry(actor=actor, action=AuditAction(action).value, detail=detail or {}, ip=ip))
