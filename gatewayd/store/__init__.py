"""The only data layer: every write gatewayd makes (daemon, CLI, page, API) goes through `Store`.

Cut by what it is, one module each, over one engine and session factory (base.py):

    queue.py      enqueue, claim, complete, recover, expire: the hot path and the state machine
    alerts.py     validate, enqueue, approve, correct, cancel, report, estimate
    templates.py  the alert templates (seeded by init-db, edited on the page)
    people.py     networks, members, CSV import, users, logins, API tokens
    gdpr.py       a person's data: export, erase; retention purge
    throttle.py   login attempts counted per account, address and both
    replies.py    delivery reports, replies, opt-outs, the inbox
    calls.py      calls coming in: keys pressed, the callback line
    devices.py    device state and counters, settings

Views that only read (the page's lists, the API's lookups) use `Store.reading()` or
`Store.connection()` and never commit.
"""
from __future__ import annotations

from .alerts import (
    ALERT_CHANNELS,
    CATEGORIES,
    LANGUAGES,
    MAX_TEXT,
    AlertRequest,
    AlertStore,
    EnqueueResult,
    Estimate,
    category_of,
)
from .base import OUT_STATES, PENDING, REACHED_STATES, RECEIVED_STATES, WAITING, StoreBase
from .calls import CallsStore
from .devices import DeviceStore
from .people import (
    FOREIGN_NUMBER,
    MEMBER_CHANNELS,
    SHARED_MEMBER,
    STOP_IS_FINAL,
    ImportFailed,
    ImportRow,
    PeopleStore,
    RowError,
    csv_separator,
    foreign_row_error,
    record_line,
    token_hash,
)
from .queue import SYSTEM_CHECK_PERIOD, Claimed, LostClaim, QueueStore, RecoveryReport
from .replies import RepliesStore
from .templates import DEFAULT_TEMPLATES, TemplateStore


class Store(QueueStore, AlertStore, TemplateStore, PeopleStore, RepliesStore, CallsStore, DeviceStore):
    """All reads and writes gatewayd does, over one SQLAlchemy engine (see the module list above)."""


__all__ = ["ALERT_CHANNELS", "CATEGORIES", "DEFAULT_TEMPLATES", "FOREIGN_NUMBER", "LANGUAGES", "MAX_TEXT",
           "MEMBER_CHANNELS", "OUT_STATES", "PENDING", "REACHED_STATES", "RECEIVED_STATES", "SHARED_MEMBER",
           "STOP_IS_FINAL", "SYSTEM_CHECK_PERIOD", "WAITING", "AlertRequest", "Claimed", "EnqueueResult", "Estimate",
           "ImportFailed", "ImportRow", "RowError", "LostClaim", "RecoveryReport", "Store", "StoreBase", "category_of",
           "csv_separator", "foreign_row_error", "record_line", "token_hash"]
