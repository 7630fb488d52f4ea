"""Queue operations and the message state machine: the one place that knows both.

    queued ──claim──▶ sending ──▶ sent ──report──▶ delivered
      ▲   ▲             │  │        └─reply "OK"─▶ acknowledged
      │   └─retry◀──────┘  ├──▶ delivered / acknowledged (voice)
      │   (after backoff)  └──▶ failed (reason)
      └── device down (failover to another device)
    queued / retry ──▶ expired (alert expired) | cancelled

Every transition is one committed transaction; every try has an Attempt row.
The hot path (claim / complete) uses Core statements: it must cost far less than
a modem's second per SMS.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import io
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, bindparam, delete, func, insert, literal, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update

from .channels.base import (ChannelKind, Delivery, DeliveryReport, DeviceHealth, InboundText, KeyPress, Outcome,
                            OutcomeKind)
from .config import DispatchConfig
from .db import session_factory
from .errors import InputError, NotFound
from .model import (Alert, AlertState, Attempt, AuditAction, AuditEntry, Category, Device, InboundMessage, Member,
                    Message, MessageState, Network, Node, ReceivedEvent, ReceivedKind, Role, RowProblem, Setting, User,
                    member_network, utcnow)
from .phone import normalise, parse_phone
from .visible import has_visible
from .placeholders import leftover
from .wakeup import wake

Q, S = MessageState.QUEUED.value, MessageState.SENDING.value
PENDING = (MessageState.QUEUED.value, MessageState.RETRY.value, MessageState.SENDING.value)
# A member "has" an alert once its message is out (or on its way out).
RECEIVED_STATES = ("sending", "sent", "delivered", "acknowledged")
LANGUAGES = ("nl", "fr", "de", "en")
MEMBER_CHANNELS = ("sms", "voice", "sms+voice")
ALERT_CHANNELS = ("member", "sms", "voice")
MAX_TEXT = 1000
# Said to whoever is not allowed to see the member behind a number (and nothing more).
FOREIGN_NUMBER = "this number belongs to another network; ask an admin"
# handled_by of the inbox rows the voice channel's callers leave (they need no one to handle them).
BY_CALLBACK_LINE, BY_CALLBACK_KEY, BY_CALL_KEY = "callback line", "callback line key", "alert call key"
OPT_OUT_LOCK = 0x6777_0001   # PostgreSQL advisory lock key: queueing for members vs opting out


@dataclass(frozen=True)
class AlertRequest:
    """What a person asks to send; validated by `Store.enqueue_alert`."""

    networks: tuple[str, ...]
    category: str
    text: str
    texts: dict[str, str] = field(default_factory=dict)   # per language, optional
    channel: str = "member"                                # member | sms | voice
    author: str = "cli"
    parent_id: int | None = None
    drill: bool = False


@dataclass(frozen=True)
class EnqueueResult:
    alert_id: int
    messages: dict[str, int]          # channel -> count
    skipped: dict[str, int]           # reason -> members not addressed


@dataclass(frozen=True)
class Claimed:
    """A message this device now owns (state `sending`)."""

    message_id: int
    attempt_id: int
    alert_id: int | None
    category: str
    attempts: int               # the recipient's tries, this one included
    possible_duplicate: bool
    delivery: Delivery
    device_failures: int = 0    # tries the devices failed before this one
    node: str = ""           # the node that claimed it: device names repeat across nodes


@dataclass(frozen=True)
class RecoveryReport:
    resent: int
    failed: int
    cancelled: int = 0     # the member opted out meanwhile: not resent


@dataclass(frozen=True)
class ImportRow:
    line: int
    name: str
    phone: str        # E.164, what is stored
    channel: str
    lang: str
    typed: str = ""   # the number as the file had it, for the preview


@dataclass(frozen=True)
class RowError:
    """One refused CSV row: PROBLEM + PARAMS for a page to word, REASON in English for the CLI."""
    line: int
    field: str
    problem: RowProblem
    params: dict
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"

    @classmethod
    def of(cls, line: int, exc: InputError) -> RowError:
        return cls(line, exc.field, RowProblem(exc.problem), exc.params, exc.reason)


class LostClaim(RuntimeError):
    """A completed message was no longer ours to record (another node recovered it)."""

    def __init__(self, message_id: int):
        super().__init__(f"message {message_id} was no longer in sending on this device")
        self.message_id = message_id


class ImportFailed(InputError):
    """A CSV import with bad rows; `errors` lists each as 'line N: field: reason'."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        super().__init__("file", f"{len(errors)} bad row(s), nothing imported: " + "; ".join(map(str, errors[:5]))
                         + (" ..." if len(errors) > 5 else ""))


def foreign_row_error(row: ImportRow) -> RowError:
    return RowError(row.line, "phone", RowProblem.FOREIGN_NUMBER, {"number": row.typed or row.phone}, FOREIGN_NUMBER)


def category_of(value: str) -> Category:
    try:
        return Category(value)
    except ValueError:
        raise InputError("category", f"{value!r} is not one of urgent, prevention, feedback") from None


# Hot-path statements, built once: the dispatcher runs them for every message.
def _picks(owner) -> tuple:
    """The next message of one owner (an alert, or none for system messages): a due retry, then the oldest.

    Both walk ix_message_claim (alert_id, channel, state, not_before, id) in index
    order and stop at the first row: a retry still backing off lies beyond the
    `not_before <= now` range and is never read, however many there are.
    """
    channel = Message.channel == bindparam("kind")
    due_retry = (select(Message.id).where(owner, channel, Message.state == MessageState.RETRY.value,
                                          Message.not_before <= bindparam("now"))
                 .order_by(Message.not_before, Message.id).limit(1))
    # Queued rows keep the not_before of their enqueue (a requeue does not move it): FIFO.
    fresh = (select(Message.id).where(owner, channel, Message.state == Q)
             .order_by(Message.not_before, Message.id).limit(1))
    return due_retry, fresh


def _one_pick(picks: tuple) -> tuple:
    """Both picks as one statement (SQLite): saves a round trip on every claim."""
    due_retry, fresh = (p.add_columns(literal(k).label("k")).subquery() for k, p in enumerate(picks))
    both = union_all(select(due_retry.c.id, due_retry.c.k), select(fresh.c.id, fresh.c.k)).subquery()
    return (select(both.c.id).order_by(both.c.k).limit(1),)


_ALERT_PICKS = _picks(Message.alert_id == bindparam("alert"))
_SYSTEM_PICKS = _picks(Message.alert_id.is_(None))
_ALERT_PICK_SQLITE = _one_pick(_ALERT_PICKS)
_SYSTEM_PICK_SQLITE = _one_pick(_SYSTEM_PICKS)
SYSTEM_CHECK_PERIOD = 0.2    # seconds; system messages (opt-out confirmations) wait at most this
# Active alerts with something claimable for this kind of device, in serving order. The
# EXISTS keeps alerts whose messages all wait out a backoff from costing a query each.
# Two EXISTS, each an index seek on (alert_id, channel, state): one with an OR over the
# states would walk past every finished message of the alert first.
_CLAIMABLE = (
    select(Message.id).where(Message.alert_id == Alert.id, Message.channel == bindparam("kind"),
                             Message.state == Q).exists()
    | select(Message.id).where(Message.alert_id == Alert.id, Message.channel == bindparam("kind"),
                               Message.state == MessageState.RETRY.value,
                               Message.not_before <= bindparam("now")).exists())
_ACTIVE_ALERTS = (select(Alert.id, Alert.category, Alert.expires_at, Alert.drill, Alert.priority)
                  .where(Alert.state == AlertState.ACTIVE.value, Alert.superseded_by.is_(None), _CLAIMABLE)
                  .order_by(Alert.priority.desc(), Alert.last_served, Alert.id))
_ACTIVE_ALERTS_NO_PREVENTION = _ACTIVE_ALERTS.where(Alert.category != Category.PREVENTION.value)
_ACTIVE_ALERTS_URGENT = _ACTIVE_ALERTS.where(Alert.category == Category.URGENT.value)
# (state = a OR state = b), not IN: an IN list is re-expanded on every execution.
# A member who said STOP (or was made inactive) is never sent to: the take reports it
# (one primary-key look-up) and the claim cancels that message instead of sending it.
_MEMBER_OUT = select(Member.id).where(Member.id == Message.member_id,
                                      Member.opted_out.is_(True) | Member.active.is_(False)).exists()
# System messages (the STOP confirmation itself) still go.
_MEMBER_BARRED = and_(Message.alert_id.is_not(None), _MEMBER_OUT)
_TAKE = (update(Message).where((Message.state == Q) | (Message.state == MessageState.RETRY.value))
         .values(state=S, device=bindparam("device"), node=bindparam("node"),
                 attempts=Message.attempts + 1, updated_at=bindparam("now"))
         .returning(Message.id, Message.number, Message.text, Message.language, Message.attempts,
                    Message.device_failures, Message.possible_duplicate, Message.alert_id,
                    # Not `alert_id IS NOT NULL AND EXISTS ...`: SQLite 3.40 answers that wrongly
                    # inside RETURNING; the two parts are combined in Python (see _take).
                    _MEMBER_OUT.label("member_out")))
# Pick and take in one statement. PostgreSQL: skipping rows another gateway has locked.
# SQLite: the statement holds the write lock from its start, so no other claimer can
# take the row between the pick and the update.
_TAKE_PICKED = {
    **{pick: _TAKE.where(Message.id == pick.with_for_update(skip_locked=True).scalar_subquery())
       for pick in _ALERT_PICKS + _SYSTEM_PICKS},
    **{pick: _TAKE.where(Message.id == pick.scalar_subquery()) for pick in _ALERT_PICK_SQLITE + _SYSTEM_PICK_SQLITE},
}
_REPORT_DELIVERED = (update(Message).where(Message.id == bindparam("message"))
                     .values(state=MessageState.DELIVERED.value, delivered_at=bindparam("at"),
                             updated_at=bindparam("now")))
_REPORT_FAILED = (update(Message).where(Message.id == bindparam("message"))
                  .values(state=MessageState.FAILED.value, reason=bindparam("reason"), updated_at=bindparam("now")))
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@functools.lru_cache(maxsize=None)
def _finish_statement(columns: frozenset) -> Update:
    """The guarded update that records an outcome, one per set of columns written."""
    return (update(Message).where(Message.id == bindparam("message"), Message.state == S,
                                  Message.device == bindparam("owner"), Message.node == bindparam("owner_node"))
            .values({c: bindparam(f"v_{c}") for c in sorted(columns)}))


_WITHDRAWN = select(Alert.id).where((Alert.state == AlertState.CANCELLED.value) | Alert.superseded_by.is_not(None))
_WAITING = (Q, MessageState.RETRY.value)
_CANCEL_WITHDRAWN_VALUES = dict(state=MessageState.CANCELLED.value, updated_at=bindparam("now"),
                                reason="alert cancelled or corrected while this message was in flight")
# The sweep starts from the (few) withdrawn alerts and seeks each one's waiting rows in
# ix_message_claim (alert, every channel, both waiting states): its cost follows the
# withdrawn alerts, not the size of the queue.
_WITHDRAWN_WAITING = (select(Message.id).where(Message.alert_id.in_(_WITHDRAWN),
                                               Message.channel.in_([k.value for k in ChannelKind]),
                                               Message.state.in_(_WAITING)))
_CANCEL_WITHDRAWN = (update(Message).where(Message.id.in_(_WITHDRAWN_WAITING))
                     .values(**_CANCEL_WITHDRAWN_VALUES))
_CANCEL_IF_WITHDRAWN = (update(Message).where(Message.id == bindparam("message"), Message.state.in_(_WAITING),
                                              Message.alert_id.in_(_WITHDRAWN))
                        .values(**_CANCEL_WITHDRAWN_VALUES))
_BARRED_REASON = "the member opted out (STOP) or was made inactive"
_CANCEL_BARRED = (update(Message).where(Message.id == bindparam("message"), Message.state == S)
                  .values(state=MessageState.CANCELLED.value, device=None, attempts=Message.attempts - 1,
                          updated_at=bindparam("now"), reason=_BARRED_REASON + "; not sent"))
_IS_BARRED = select(_MEMBER_BARRED).where(Message.id == bindparam("message"))
_NEW_ATTEMPT = insert(Attempt).returning(Attempt.id)
_SERVED = update(Alert).where(Alert.id == bindparam("alert")).values(last_served=bindparam("stamp"))
# Fencing (gatewayd/nodes.py): the claim is still this device's, on this node, and its attempt still open.
# A takeover ends the attempt and requeues the message in one transaction, so either test fails after it.
# Two primary-key lookups: the cheapest sure check right before a send.
_STILL_CLAIMED = (select(literal(1)).select_from(Message)
                  .join(Attempt, and_(Attempt.id == bindparam("attempt"), Attempt.message_id == Message.id,
                                      Attempt.ended_at.is_(None)))
                  .where(Message.id == bindparam("message"), Message.state == S,
                         Message.device == bindparam("owner"), Message.node == bindparam("owner_node")))
_END_ATTEMPT = (update(Attempt).where(Attempt.id == bindparam("attempt"))
                .values(ended_at=bindparam("ended_at"), result=bindparam("result"), error=bindparam("error")))


def sender_of(networks) -> str:
    """Who an alert is from, as said first: the first network's police zone, else its name."""
    for net in networks or ():
        if net.zone:
            return net.zone
    return networks[0].name if networks else ""


def _refuse_placeholder(where: str, text: str) -> None:
    """A template's "[straat]" must never reach a member: refuse rather than send it."""
    left = leftover(text)
    if left:
        raise InputError(where, f"still holds the placeholder [{left}]: fill it in (or remove the brackets)")


class Store:
    """All reads and writes gatewayd does, over one SQLAlchemy engine."""

    def __init__(self, engine: Engine, policy: DispatchConfig | None = None):
        self.engine = engine
        self.policy = policy or DispatchConfig()
        self.session = session_factory(engine)
        self._pg = engine.dialect.name == "postgresql"
        # Round-robin stamp: the alert served longest ago has the smallest value.
        self._last_stamp = 0.0
        self._serve_lock = threading.Lock()
        self._next_system_check = 0.0

    # ------------------------------------------------------------------ networks, members, users
    def add_network(self, name: str, zone: str = "") -> Network:
        name = (name or "").strip()
        if not name:
            raise InputError("name", "missing; give the network's name")
        if len(name) > 120:
            raise InputError("name", "longer than 120 characters")
        with self.session.begin() as s:
            if s.scalar(select(Network.id).where(Network.name == name)):
                raise InputError("name", f"a network called {name!r} already exists")
            net = Network(name=name, zone=zone.strip())
            s.add(net)
        return net

    def network(self, s: Session, name: str) -> Network:
        net = s.scalar(select(Network).where(Network.name == name))
        if net is None:
            raise NotFound("network", name)
        return net

    def validate_member(self, phone: str, name: str = "", channel: str | None = None,
                        lang: str = "nl") -> tuple[str, str, str, str]:
        """Check one member's fields; return (e164, name, channel, lang) or raise InputError."""
        number = parse_phone(phone)
        if len(name) > 200:
            raise InputError("name", "longer than 200 characters", RowProblem.NAME_TOO_LONG, {"max": 200})
        lang = (lang or "nl").strip().lower()
        if lang not in LANGUAGES:
            raise InputError("lang", f"{lang!r} is not one of {', '.join(LANGUAGES)}", RowProblem.LANG_UNKNOWN,
                             {"value": lang, "allowed": ", ".join(LANGUAGES)})
        if channel in (None, ""):
            channel = "voice" if number.landline else "sms"
        channel = channel.strip().lower()
        if channel not in MEMBER_CHANNELS:
            raise InputError("channel", f"{channel!r} is not one of {', '.join(MEMBER_CHANNELS)}",
                             RowProblem.CHANNEL_UNKNOWN, {"value": channel, "allowed": ", ".join(MEMBER_CHANNELS)})
        if "sms" in channel and not number.mobile:
            raise InputError("channel", f"{number.e164} is a landline and cannot receive SMS; use voice",
                             RowProblem.LANDLINE_NO_SMS, {"number": phone.strip()})
        return number.e164, name.strip(), channel, lang

    def add_member(self, network: str, phone: str, name: str = "", channel: str | None = None,
                   lang: str = "nl", consent_at: datetime | None = None) -> Member:
        """Add a member to NETWORK; a number already known is linked, not duplicated."""
        e164, name, channel, lang = self.validate_member(phone, name, channel, lang)
        with self.session.begin() as s:
            net = self.network(s, network)
            return self._upsert_member(s, net, e164, name, channel, lang, consent_at or utcnow())

    def _upsert_member(self, s: Session, net: Network, e164: str, name: str, channel: str, lang: str,
                       consent_at: datetime) -> Member:
        member = s.scalar(select(Member).where(Member.phone == e164))
        if member is None:
            member = Member(phone=e164, name=name, channel=channel, language=lang, consent_at=consent_at)
            s.add(member)
        elif net in member.networks:
            raise InputError("phone", f"{e164} is already a member of {net.name!r}")
        member.networks.append(net)
        return member

    def parse_member_csv(self, text: str) -> tuple[list[ImportRow], list[RowError]]:
        """Rows and per-row errors of a CSV with columns name,phone,channel,lang."""
        try:
            return self._parse_member_csv(text)
        except csv.Error as exc:
            raise InputError("file", f"not a readable CSV file: {exc}") from None

    def _parse_member_csv(self, text: str) -> tuple[list[ImportRow], list[RowError]]:
        reader = csv.DictReader(io.StringIO(text))
        cols = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "phone" not in cols:
            raise InputError("file", "no 'phone' column; expected the header name,phone,channel,lang")
        reader.fieldnames = cols
        rows, errors, seen = [], [], {}
        for i, raw in enumerate(reader, start=2):
            get = lambda k: (raw.get(k) or "").strip()  # noqa: E731
            try:
                e164, name, channel, lang = self.validate_member(get("phone"), get("name"),
                                                                 get("channel") or None, get("lang") or "nl")
            except InputError as exc:
                errors.append(RowError.of(i, exc))
                continue
            if e164 in seen:
                errors.append(RowError(i, "phone", RowProblem.PHONE_REPEATED,
                                       {"number": get("phone"), "first": seen[e164]},
                                       f"{e164} repeats line {seen[e164]}"))
                continue
            seen[e164] = i
            rows.append(ImportRow(i, name, e164, channel, lang, get("phone")))
        return rows, errors

    def foreign_rows(self, rows: list[ImportRow], scope: tuple[int, ...] | None) -> list[ImportRow]:
        """The ROWS whose number is a member none of whose networks is in SCOPE (None = all are)."""
        with self.session() as s:
            return self._foreign_rows(s, rows, scope)

    def _foreign_rows(self, s: Session, rows: list[ImportRow], scope: tuple[int, ...] | None) -> list[ImportRow]:
        if scope is None or not rows:
            return []
        phones = [r.phone for r in rows]
        known = set(s.scalars(select(Member.phone).where(Member.phone.in_(phones))))
        visible = set(s.scalars(select(Member.phone).join(member_network, member_network.c.member_id == Member.id)
                                .where(Member.phone.in_(phones), member_network.c.network_id.in_(scope))))
        return [r for r in rows if r.phone in known - visible]

    def import_members(self, network: str, text: str, skip_bad: bool = False,
                       scope: tuple[int, ...] | None = None) -> tuple[int, list[RowError]]:
        """Import a member CSV: all or nothing, unless SKIP_BAD. Returns (imported, errors).

        SCOPE (network ids; None = all) is the importer's: a number of a member outside it is a
        bad row, never attached (that would hand another network's member over).
        """
        rows, errors = self.parse_member_csv(text)
        if errors and not skip_bad:
            raise ImportFailed(errors)
        imported = 0
        with self.session.begin() as s:
            net = self.network(s, network)
            foreign = self._foreign_rows(s, rows, scope)
            errors = errors + [foreign_row_error(r) for r in foreign]
            if foreign and not skip_bad:
                raise ImportFailed(errors)
            skip = {r.line for r in foreign}
            existing = {m.phone: m for m in s.scalars(select(Member).where(Member.phone.in_([r.phone for r in rows])))}
            now = utcnow()
            for r in rows:
                m = existing.get(r.phone)
                if r.line in skip or (m is not None and net in m.networks):
                    continue
                if m is None:
                    m = Member(phone=r.phone, name=r.name, channel=r.channel, language=r.lang, consent_at=now)
                    s.add(m)
                m.networks.append(net)
                imported += 1
        return imported, errors

    def add_user(self, username: str, password: str, role: str, zone: str = "",
                 networks: tuple[str, ...] = ()) -> User:
        username = (username or "").strip()
        if not username or len(username) > 80 or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
            raise InputError("name", "expected 1-80 letters, digits, '.', '-' or '_'")
        try:
            role = Role(role).value
        except ValueError:
            raise InputError("role", f"{role!r} is not one of police, coordinator, admin") from None
        from .passwords import MIN_LENGTH, hash_password
        if len(password or "") < MIN_LENGTH:
            raise InputError("password", f"shorter than {MIN_LENGTH} characters")
        with self.session.begin() as s:
            if s.scalar(select(User.id).where(User.username == username)):
                raise InputError("name", f"a user called {username!r} already exists")
            user = User(username=username, password_hash=hash_password(password), role=role, zone=zone)
            user.networks = [self.network(s, n) for n in networks]
            s.add(user)
        return user

    def audit(self, actor: str, action: str, detail: dict | None = None, ip: str = "") -> None:
        with self.session.begin() as s:
            s.add(AuditEntry(actor=actor, action=action, detail=detail or {}, ip=ip))

    # ------------------------------------------------------------------ alerts
    def expiry_for(self, category: Category) -> timedelta:
        p = self.policy
        minutes = {Category.URGENT: p.expiry_urgent_minutes, Category.FEEDBACK: p.expiry_feedback_minutes,
                   Category.PREVENTION: p.expiry_prevention_minutes}[category]
        return timedelta(minutes=minutes)

    def validate_alert(self, req: AlertRequest) -> Category:
        """The checks enqueue_alert applies, without writing; raises InputError naming the field."""
        cat = category_of(req.category)
        if req.channel not in ALERT_CHANNELS:
            raise InputError("channel", f"{req.channel!r} is not one of {', '.join(ALERT_CHANNELS)}")
        if not (req.text or "").strip():
            raise InputError("text", "empty; an alert needs a text")
        for lang, text in {"": req.text, **req.texts}.items():
            where = f"text[{lang}]" if lang else "text"
            if lang and lang not in LANGUAGES:
                raise InputError("text", f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
            if len(text) > MAX_TEXT:
                raise InputError(where, f"{len(text)} characters; at most {MAX_TEXT}")
            if "\x00" in text:
                raise InputError(where, "contains a NUL character")
            if text.strip() and not has_visible(text):
                raise InputError(where, "only invisible characters (zero-width or format characters); "
                                        "write a text people can read")
            _refuse_placeholder(where, text)
        if not req.networks and req.parent_id is None:
            raise InputError("network", "missing; name at least one network")
        return cat

    def enqueue_alert(self, req: AlertRequest, now: datetime | None = None) -> EnqueueResult:
        """Validate REQ and queue one message per recipient and channel, in one transaction."""
        cat = self.validate_alert(req)
        now = now or utcnow()
        with self.session.begin() as s:
            self._lock_opt_outs(s, exclusive=False)
            parent = None
            if req.parent_id is not None:
                parent = s.get(Alert, req.parent_id)
                if parent is None:
                    raise NotFound("alert", req.parent_id)
            nets = [self.network(s, n) for n in req.networks] if req.networks else list(parent.networks)
            needs_approval = cat.value in self.policy.approval_categories
            alert = Alert(category=cat.value, priority=cat.priority, text=req.text.strip(),
                          texts={k: v.strip() for k, v in req.texts.items() if v.strip()},
                          channel_mode=req.channel, author=req.author, parent_id=req.parent_id,
                          state=(AlertState.PENDING_APPROVAL if needs_approval else AlertState.ACTIVE).value,
                          # Feedback on a drill is a drill: its members never had the original.
                          drill=req.drill or self.policy.drill or bool(parent is not None and parent.drill),
                          created_at=now, expires_at=now + self.expiry_for(cat), networks=nets)
            s.add(alert)
            s.flush()
            recipients = (self._parent_recipients(s, parent.id) if parent is not None and not req.networks
                          else self._network_recipients(s, [n.id for n in nets]))
            rows, counts, skipped = self._message_rows(alert, recipients, req.channel, now)
            if rows:
                s.execute(insert(Message), rows)
                wake(s.connection())
            if not rows:
                alert.state, alert.finished_at = AlertState.DONE.value, now
        return EnqueueResult(alert.id, counts, skipped)

    def planned_messages(self, network_ids: list[int], mode: str, parent_id: int | None = None):
        """(rows, counts per channel, skipped per reason) that enqueue_alert would write, for a preview.
        Same rules as the send, nothing written."""
        with self.session() as s:
            if parent_id is not None and not network_ids:
                recipients = self._parent_recipients(s, parent_id)
            else:
                recipients = self._network_recipients(s, network_ids) if network_ids else []
        preview = Alert(id=0, texts={}, text="", priority=0)
        return self._message_rows(preview, recipients, mode, utcnow())

    def _network_recipients(self, s: Session, network_ids: list[int]) -> list[tuple]:
        q = (select(Member.id, Member.phone, Member.channel, Member.language, Member.opted_out, Member.active)
             .join(member_network, member_network.c.member_id == Member.id)
             .where(member_network.c.network_id.in_(network_ids)).distinct().order_by(Member.id))
        return list(s.execute(q))

    def _parent_recipients(self, s: Session, parent_id: int) -> list[tuple]:
        """The members the parent alert addressed, with their current preferences."""
        ids = select(Message.member_id).where(Message.alert_id == parent_id, Message.member_id.is_not(None))
        q = (select(Member.id, Member.phone, Member.channel, Member.language, Member.opted_out, Member.active)
             .where(Member.id.in_(ids)).order_by(Member.id))
        return list(s.execute(q))

    def _message_rows(self, alert: Alert, recipients, mode: str, now: datetime):
        rows, counts, skipped = [], {"sms": 0, "voice": 0}, {}
        for member_id, phone, pref, lang, opted_out, active in recipients:
            if not active:
                skipped["inactive"] = skipped.get("inactive", 0) + 1
                continue
            if opted_out:
                skipped["opted out"] = skipped.get("opted out", 0) + 1
                continue
            channels = pref.split("+") if mode == "member" else [mode]
            if mode == "sms" and pref == "voice":
                skipped["voice only (landline)"] = skipped.get("voice only (landline)", 0) + 1
                continue
            for ch in channels:
                rows.append(self._row(alert, member_id, phone, ch, lang, now))
                counts[ch] += 1
        return rows, counts, skipped

    def approve_alert(self, alert_id: int, approver: str, now: datetime | None = None) -> None:
        """Four-eyes: a second person releases an alert that waits for approval."""
        now = now or utcnow()
        with self.session.begin() as s:
            alert = s.get(Alert, alert_id)
            if alert is None:
                raise NotFound("alert", alert_id)
            if alert.state != AlertState.PENDING_APPROVAL.value:
                raise InputError("alert", f"alert {alert_id} is {alert.state}, not waiting for approval")
            if not approver or approver == alert.author:
                raise InputError("approver", "the author cannot approve their own alert; "
                                             "a second person must approve it")
            # Expiry counts from when the alert was written: a late approval must not send it late.
            if alert.expires_at <= now:
                raise InputError("alert", f"alert {alert_id} expired at {alert.expires_at:%Y-%m-%d %H:%M} UTC "
                                          "before it was approved; write a new one if it still matters")
            # An alert stored before the refusal existed may still hold "[straat]": never release it.
            for lang, text in {"": alert.text, **(alert.texts or {})}.items():
                _refuse_placeholder(f"text[{lang}]" if lang else "text", text)
            alert.state, alert.approved_by, alert.approved_at = AlertState.ACTIVE.value, approver, now
            wake(s.connection())

    def correct_alert(self, original_id: int, text: str, texts: dict[str, str] | None = None,
                      author: str = "cli", now: datetime | None = None) -> EnqueueResult:
        """Supersede an alert: the correction goes to whoever already had (or is being sent) the
        original, on the same channel; what has not gone yet is cancelled. Both are linked.

        One correction per alert, enforced by the database: the correction row's unique
        `corrects` column refuses a second one however two requests interleave.
        """
        now = now or utcnow()
        texts = texts or {}
        with self.session() as s:
            original = s.get(Alert, original_id)
            if original is None:
                raise NotFound("alert", original_id)
            self.validate_alert(AlertRequest(networks=("-",), category=original.category, text=text,
                                              texts=texts, author=author))
        try:
            return self._correct(original_id, text, texts, author, now)
        except IntegrityError:
            with self.engine.connect() as c:
                by = c.scalar(select(Alert.id).where(Alert.corrects == original_id))
            raise self._already_corrected(original_id, by) from None

    @staticmethod
    def _already_corrected(original_id: int, by: int | None) -> InputError:
        return InputError("alert", f"alert {original_id} was already corrected by alert {by}; correct that one")

    def _correct(self, original_id: int, text: str, texts: dict[str, str], author: str,
                 now: datetime) -> EnqueueResult:
        with self.session.begin() as s:
            self._lock_opt_outs(s, exclusive=False)
            original = s.get(Alert, original_id)
            if original.superseded_by is not None:
                raise self._already_corrected(original_id, original.superseded_by)
            cat = Category(original.category)
            correction = Alert(category=cat.value, priority=cat.priority, text=text.strip(),
                               texts={k: v.strip() for k, v in texts.items() if v.strip()},
                               channel_mode=original.channel_mode, author=author, parent_id=original_id,
                               corrects=original_id, state=AlertState.DONE.value,
                               drill=original.drill or self.policy.drill, created_at=now,
                               expires_at=now + self.expiry_for(cat), finished_at=now,
                               networks=list(original.networks))
            s.add(correction)
            s.flush()      # the unique `corrects` decides here which of two corrections wins
            if not s.execute(update(Alert).where(Alert.id == original_id, Alert.superseded_by.is_(None))
                             .values(superseded_by=correction.id)).rowcount:
                raise self._already_corrected(original_id, None)
            s.execute(update(Message).where(Message.alert_id == original_id,
                                            Message.state.in_((Q, MessageState.RETRY.value)))
                      .values(state=MessageState.CANCELLED.value, updated_at=now,
                              reason="superseded by a correction before it was sent"))
            # Who had (or is being sent) the original and still wants messages.
            reached = s.execute(select(Message.member_id, Message.number, Message.channel, Message.language)
                                .join(Member, Member.id == Message.member_id)
                                .where(Message.alert_id == original_id, Message.state.in_(RECEIVED_STATES),
                                       Member.opted_out.is_(False), Member.active.is_(True))
                                .order_by(Message.id)).all()
            if reached:
                correction.finished_at = None
                correction.state = (AlertState.PENDING_APPROVAL.value if cat.value in self.policy.approval_categories
                                    else AlertState.ACTIVE.value)
            rows = [self._row(correction, member_id, number, channel, lang, now)
                    for member_id, number, channel, lang in reached]
            if rows:
                s.execute(insert(Message), rows)
                wake(s.connection())
            counts = {"sms": sum(r["channel"] == "sms" for r in rows),
                      "voice": sum(r["channel"] == "voice" for r in rows)}
        return EnqueueResult(correction.id, counts, {})

    def _lock_opt_outs(self, s, exclusive: bool) -> None:
        """PostgreSQL: queueing for members (shared) and opting out (exclusive) exclude each other,
        so a STOP committed while an alert is being queued still cancels that member's row, and
        an alert queued while a STOP commits reads the member as opted out. SQLite takes its
        write lock at the first write of either and needs nothing more."""
        if self._pg:
            fn = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
            s.execute(select(fn(OPT_OUT_LOCK)))

    def _row(self, alert: Alert, member_id, number: str, channel: str, lang: str, now: datetime) -> dict:
        return {"alert_id": alert.id, "member_id": member_id, "number": number, "channel": channel,
                "language": lang, "text": self._message_text(alert, channel, lang, now), "priority": alert.priority,
                "state": Q, "not_before": now, "attempts": 0, "created_at": now, "updated_at": now,
                "segments": 0, "possible_duplicate": False, "reason": ""}

    def _message_text(self, alert: Alert, channel: str, lang: str, now: datetime) -> str:
        """The alert's text in LANG; with [dispatch] sender_first, who and when in front (spoken for a call)."""
        text = (alert.texts or {}).get(lang, alert.text)
        if not self.policy.sender_first:
            return text
        from .heading import with_heading
        return with_heading(text, sender_of(alert.networks), alert.created_at or now, lang, self.policy.timezone,
                            spoken=channel == "voice")

    def sender_of_networks(self, network_ids: list[int]) -> str:
        """The sender said first for an alert to these networks (see sender_of)."""
        with self.session() as s:
            return sender_of(list(s.scalars(select(Network).where(Network.id.in_(network_ids)).order_by(Network.id))))

    def alert_report(self, alert_id: int) -> dict:
        """Everything about one alert, per recipient: what went (or, in a drill, would have gone) to whom."""
        status = self.alert_status(alert_id)
        with self.session() as s:
            alert = s.get(Alert, alert_id)
            rows = s.execute(select(Message.number, Message.channel, Message.state, Message.segments,
                                    Message.sent_at, Message.reason, Message.possible_duplicate,
                                    Message.attempts, Message.device_failures, Message.escalated)
                             .where(Message.alert_id == alert_id).order_by(Message.id)).all()
        first = min((r.sent_at for r in rows if r.sent_at), default=None)
        last = max((r.sent_at for r in rows if r.sent_at), default=None)
        status.update({
            "text": alert.text, "author": alert.author, "approved_by": alert.approved_by,
            "parent_id": alert.parent_id, "superseded_by": alert.superseded_by,
            "created_at": alert.created_at.isoformat(),
            "took_seconds": round((last - first).total_seconds(), 1) if first and last else None,
            "recipients": [{"number": r.number, "channel": r.channel, "state": r.state, "segments": r.segments,
                            "sent_at": r.sent_at.isoformat() if r.sent_at else None, "reason": r.reason,
                            "possible_duplicate": r.possible_duplicate,
                            # The two budgets, apart: the reason of a failure says which ran out.
                            "attempts": r.attempts, "device_failures": r.device_failures,
                            "escalated": r.escalated} for r in rows],
            "callbacks": [{**c, "at": c["at"].isoformat()} for c in self.callbacks_of(alert_id)],
        })
        return status

    def callbacks_of(self, alert_id: int) -> list[dict]:
        """Who heard this alert on the callback line, when, and whether they pressed 1."""
        with self.engine.connect() as c:
            rows = c.execute(select(InboundMessage.number, InboundMessage.received_at, InboundMessage.handled_by)
                             .where(InboundMessage.alert_id == alert_id,
                                    InboundMessage.handled_by.in_((BY_CALLBACK_LINE, BY_CALLBACK_KEY)))
                             .order_by(InboundMessage.received_at, InboundMessage.id)).all()
        out: list[dict] = []
        for r in rows:
            if r.handled_by == BY_CALLBACK_LINE:
                out.append({"number": r.number, "at": r.received_at, "confirmed": False})
                continue
            match = next((o for o in reversed(out) if o["number"] == r.number), None)
            if match is not None:
                match["confirmed"] = True
        return out

    def enqueue_system_sms(self, number: str, text: str, language: str = "nl",
                           member_id: int | None = None, channel: str = "sms") -> int:
        """Queue a message that belongs to no alert (opt-out confirmation, keeper alert, self-test)."""
        now = utcnow()
        with self.engine.begin() as c:
            wake(c)
            return c.execute(insert(Message).returning(Message.id), [{
                "alert_id": None, "member_id": member_id, "number": number, "channel": channel,
                "language": language, "text": text, "priority": Category.URGENT.priority, "state": Q,
                "not_before": now, "attempts": 0, "created_at": now, "updated_at": now, "segments": 0,
                "possible_duplicate": False, "reason": ""}]).scalar_one()

    def alert_status(self, alert_id: int) -> dict:
        """{"id", "state", "category", "drill", "messages": {state: count}} for one alert."""
        with self.engine.connect() as c:
            row = c.execute(select(Alert.state, Alert.category, Alert.drill, Alert.expires_at)
                            .where(Alert.id == alert_id)).first()
            if row is None:
                raise NotFound("alert", alert_id)
            counts = dict(c.execute(select(Message.state, func.count()).where(Message.alert_id == alert_id)
                                    .group_by(Message.state)).all())
        return {"id": alert_id, "state": row.state, "category": row.category, "drill": row.drill,
                "expires_at": row.expires_at.isoformat(), "messages": counts}

    def cancel_alert(self, alert_id: int, actor: str = "") -> int:
        """Cancel what has not gone out yet; returns how many messages were cancelled.

        The alert row is written first: a correction or another cancel of the same
        alert waits for this transaction (PostgreSQL row lock, SQLite write lock).
        """
        now = utcnow()
        with self.engine.begin() as c:
            # A done alert is cancelled too: escalation (and a voicemail re-call) would otherwise
            # put it back to active and call its members after the operator withdrew it.
            found = c.execute(update(Alert).where(Alert.id == alert_id, Alert.state.in_(
                (AlertState.ACTIVE.value, AlertState.PENDING_APPROVAL.value, AlertState.DONE.value)))
                .values(state=AlertState.CANCELLED.value, finished_at=now)).rowcount
            if not found and c.scalar(select(Alert.id).where(Alert.id == alert_id)) is None:
                raise NotFound("alert", alert_id)
            return c.execute(update(Message).where(Message.alert_id == alert_id,
                                                   Message.state.in_((Q, MessageState.RETRY.value)))
                             .values(state=MessageState.CANCELLED.value, reason=f"cancelled by {actor}".strip(),
                                     updated_at=now)).rowcount

    # ------------------------------------------------------------------ dispatch: claim
    def _stamp(self) -> float:
        """Wall-clock based, strictly increasing: comparable across processes and gateways."""
        with self._serve_lock:
            self._last_stamp = max(self._last_stamp + 1e-6, time.time())
            return self._last_stamp

    def claim(self, kind: str, device: str, node: str, now: datetime | None = None,
              prevention_allowed: bool = True, urgent_only: bool = False) -> Claimed | None:
        """Take the next message for a device of KIND, or None.

        Order: system messages, then alerts by priority (urgent > feedback >
        prevention), round-robin across alerts of equal priority, FIFO within an
        alert (due retries first). Expired alerts are expired, never sent late.
        URGENT_ONLY: a SIM past its quota that may still carry urgent alerts.
        """
        now = now or utcnow()
        alerts_query = (_ACTIVE_ALERTS_URGENT if urgent_only else
                        _ACTIVE_ALERTS if prevention_allowed else _ACTIVE_ALERTS_NO_PREVENTION)
        with self.engine.connect() as c:
            if time.monotonic() >= self._next_system_check:
                claimed = self._claim_from(c, None, kind, device, node, now, "urgent", False)
                if claimed:
                    return claimed
                self._next_system_check = time.monotonic() + SYSTEM_CHECK_PERIOD
            candidates = c.execute(alerts_query, {"kind": kind, "now": now}).all()
            c.rollback()
            for alert_id, category, expires_at, drill, priority in candidates:
                if expires_at <= now:
                    self.expire_alert(alert_id, now)
                    continue
                # Round-robin only matters against another alert of the same priority.
                rival = any(p == priority and a != alert_id for a, _, _, _, p in candidates)
                claimed = self._claim_from(c, alert_id, kind, device, node, now, category, drill, rival)
                if claimed:
                    return claimed
        return None

    def _claim_from(self, c, alert_id: int | None, kind: str, device: str, node: str, now: datetime,
                    category: str, drill: bool, stamp: bool = False) -> Claimed | None:
        params = {"alert": alert_id, "kind": kind, "now": now}
        if self._pg:
            picks = _SYSTEM_PICKS if alert_id is None else _ALERT_PICKS
        else:
            picks = _SYSTEM_PICK_SQLITE if alert_id is None else _ALERT_PICK_SQLITE
        for pick in picks:
            claimed = self._take(c, _TAKE_PICKED[pick], params, alert_id, device, node, now, category, drill,
                                 stamp)
            if claimed is not None:
                return claimed
        return None

    def _take(self, c, stmt, params, alert_id, device, node, now, category, drill, stamp) -> Claimed | None:
        """queued/retry -> sending, plus an Attempt row, in one transaction.

        A message whose member opted out or was made inactive is cancelled instead,
        and the next one is taken.
        """
        while True:
            try:
                row = c.execute(stmt, {**params, "device": device, "node": node, "now": now}).first()
                if row is None:
                    c.rollback()
                    return None
                if row.alert_id is not None and row.member_out:
                    c.execute(_CANCEL_BARRED, {"message": row.id, "now": now})
                    c.commit()
                    continue
                attempt_id = c.execute(_NEW_ATTEMPT, {"message_id": row.id, "device": device, "node": node,
                                                      "started_at": now, "error": ""}).scalar_one()
                if stamp:
                    c.execute(_SERVED, {"alert": alert_id, "stamp": self._stamp()})
                c.commit()
            except BaseException:
                c.rollback()
                raise
            return Claimed(row.id, attempt_id, alert_id, category, row.attempts, row.possible_duplicate,
                           Delivery(row.id, row.number, row.text, row.language, category, alert_id, bool(drill),
                                    row.attempts),
                           row.device_failures, node)

    def still_claimed(self, claimed: Claimed, device: str) -> bool:
        """Is CLAIMED still this device's own claim (not taken over by another node meanwhile)?"""
        with self.engine.connect() as c:
            return c.scalar(_STILL_CLAIMED, {"attempt": claimed.attempt_id, "message": claimed.message_id,
                                             "owner": device, "owner_node": claimed.node}) is not None

    # ------------------------------------------------------------------ dispatch: outcome
    def max_attempts(self, category: str) -> int:
        p = self.policy
        return {"urgent": p.max_attempts_urgent, "feedback": p.max_attempts_feedback,
                "prevention": p.max_attempts_prevention}.get(category, p.max_attempts_urgent)

    def backoff(self, attempts: int) -> timedelta:
        """Exponential: base, 2*base, 4*base ... capped at backoff_max."""
        p = self.policy
        return timedelta(seconds=min(p.backoff_max, p.backoff_base * 2 ** max(0, attempts - 1)))

    def complete(self, claimed: Claimed, device: str, outcome: Outcome, now: datetime | None = None) -> str:
        """Record OUTCOME of a claimed message; returns the message's new state.

        A member who opted out (or was made inactive) while the try was in flight
        ends `cancelled` whatever the device says; the Attempt row keeps what it said.
        """
        now = now or utcnow()
        k = outcome.kind
        with self.engine.begin() as c:
            if self._barred(c, claimed.message_id):
                values = {"updated_at": now, "state": MessageState.CANCELLED.value,
                          "reason": f"{_BARRED_REASON} while this try was in flight; the device said "
                                    f"{k.value}{': ' + outcome.detail if outcome.detail else ''}"}
            else:
                values = {"updated_at": now, **self._outcome_values(claimed, device, outcome, now)}
            changed = c.execute(_finish_statement(frozenset(values)), {
                **{f"v_{k}": v for k, v in values.items()}, "message": claimed.message_id, "owner": device,
                "owner_node": claimed.node}).rowcount
            c.execute(_END_ATTEMPT, {"attempt": claimed.attempt_id, "ended_at": now, "result": k.value,
                                     "error": "" if k is OutcomeKind.SENT else outcome.detail})
            if values["state"] in (Q, MessageState.RETRY.value):
                if c.execute(_CANCEL_IF_WITHDRAWN, {"message": claimed.message_id, "now": now}).rowcount:
                    values["state"] = MessageState.CANCELLED.value
        if not changed:
            raise LostClaim(claimed.message_id)
        return values["state"]

    def voicemail_recall(self, category: str) -> timedelta | None:
        """How long after a voicemail the member is called again (once), or None for never."""
        p = self.policy
        minutes = {"urgent": p.voicemail_recall_minutes_urgent, "feedback": p.voicemail_recall_minutes_feedback,
                   "prevention": p.voicemail_recall_minutes_prevention}.get(category, 0.0)
        return timedelta(minutes=minutes) if minutes > 0 else None

    def _had_voicemail(self, message_id: int) -> bool:
        with self.engine.connect() as c:
            return c.scalar(select(Attempt.id).where(Attempt.message_id == message_id,
                                                     Attempt.result == OutcomeKind.VOICEMAIL.value).limit(1)) is not None

    def _voicemail_values(self, claimed: Claimed, outcome: Outcome, now: datetime) -> dict:
        """An answering machine took the call: call again once (per category policy), else final."""
        recall = self.voicemail_recall(claimed.category)
        detail = f"voicemail: {outcome.detail}"
        if (recall is not None and claimed.attempts < self.max_attempts(claimed.category)
                and not self._had_voicemail(claimed.message_id)):
            return {"state": MessageState.RETRY.value, "not_before": now + recall, "sent_at": now,
                    "reason": f"{detail}; calling again after {recall.total_seconds() / 60:g} min"}
        return {"state": MessageState.VOICEMAIL.value, "sent_at": now, "reason": detail}

    def _barred(self, c, message_id: int) -> bool:
        """Has this message's member opted out or been made inactive? On PostgreSQL the
        member row is share-locked, so a STOP committing now waits for this transaction."""
        stmt = _IS_BARRED
        if self._pg:
            stmt = (select(Member.opted_out | Member.active.is_(False))
                    .join(Message, and_(Message.member_id == Member.id, Message.alert_id.is_not(None)))
                    .where(Message.id == bindparam("message")).with_for_update(of=Member, read=True))
        return bool(c.scalar(stmt, {"message": message_id}))

    def _outcome_values(self, claimed: Claimed, device: str, outcome: Outcome, now: datetime) -> dict:
        k = outcome.kind
        if k is OutcomeKind.SENT:
            return dict(state=MessageState.SENT.value, sent_at=now, reference=outcome.reference,
                        segments=outcome.segments, reason=outcome.detail)
        if k in (OutcomeKind.DELIVERED, OutcomeKind.ACKNOWLEDGED):
            return dict(state=k.value, sent_at=now, delivered_at=now, reason=outcome.detail)
        if k is OutcomeKind.FAILED:
            return dict(state=MessageState.FAILED.value, reason=outcome.detail)
        if k is OutcomeKind.VOICEMAIL:
            return self._voicemail_values(claimed, outcome, now)
        if k is OutcomeKind.RETRY:
            limit = self.max_attempts(claimed.category)
            if claimed.attempts >= limit:
                # A machine took an earlier call: the member has the short message, which says more than "failed".
                state = MessageState.VOICEMAIL if self._had_voicemail(claimed.message_id) else MessageState.FAILED
                return dict(state=state.value,
                            reason=f"recipient's budget spent: no success after {claimed.attempts} attempts "
                                   f"(max_attempts_{claimed.category} = {limit}); last: {outcome.detail}")
            wait = (timedelta(seconds=outcome.retry_after) if outcome.retry_after is not None
                    else self.backoff(claimed.attempts))
            if outcome.maybe_sent:
                # Part of it went out (a long SMS refused after part 1): the retry sends it whole.
                if claimed.possible_duplicate:
                    return dict(state=MessageState.FAILED.value, reason=f"partly sent twice ({outcome.detail}); "
                                                                        "not sent a third time")
                return dict(state=MessageState.RETRY.value, not_before=now + wait, possible_duplicate=True,
                            reason=outcome.detail)
            return dict(state=MessageState.RETRY.value, not_before=now + wait, reason=outcome.detail)
        return self._requeue_values(claimed, outcome, device)

    def _requeue_values(self, claimed: Claimed, outcome: Outcome, device: str) -> dict:
        """A device failure is not the recipient's: it counts against the devices' own budget
        (max_device_failures), gives the recipient's try back, and another device takes it."""
        failures = claimed.device_failures + 1
        spent = {"attempts": claimed.attempts - 1, "device_failures": failures}
        if outcome.maybe_sent and claimed.possible_duplicate:
            return {**spent, "state": MessageState.FAILED.value,
                    "reason": f"device failed mid-send twice ({outcome.detail}); not resent a third time"}
        limit = self.policy.max_device_failures
        if failures >= limit:
            return {**spent, "state": MessageState.FAILED.value,
                    "reason": f"devices' budget spent: devices failed {failures} times sending it "
                              f"(max_device_failures = {limit}); last: {device}: {outcome.detail}"}
        return {**spent, "state": Q, "device": None,
                "possible_duplicate": claimed.possible_duplicate or outcome.maybe_sent,
                "reason": f"requeued: {device} failed: {outcome.detail}"}

    # ------------------------------------------------------------------ dispatch: recovery, expiry
    def recover_inflight(self, node: str, policy: str = "resend", now: datetime | None = None,
                         conn=None, why: str = "the daemon stopped") -> RecoveryReport:
        """Resolve messages NODE left in `sending` (it crashed, lost power, or its lease ran out).

        resend: back to queued once, flagged possible_duplicate; a message that
        was already a possible duplicate fails instead (never a third copy).
        fail: failed with a reason saying it may or may not have gone out.
        CONN: run inside the caller's transaction (a takeover holds the node's row locked).
        """
        now = now or utcnow()
        inflight = and_(Message.state == S, Message.node == node)
        with self.engine.begin() if conn is None else contextlib.nullcontext(conn) as c:
            ids = select(Message.id).where(inflight)
            c.execute(update(Attempt).where(Attempt.message_id.in_(ids), Attempt.ended_at.is_(None))
                      .values(ended_at=now, result="interrupted", error=f"{why} mid-send"))
            # Opt-out is final: a member who said STOP meanwhile gets no second copy.
            cancelled = c.execute(update(Message).where(inflight, _MEMBER_BARRED).values(
                state=MessageState.CANCELLED.value, updated_at=now,
                reason=f"{_BARRED_REASON}; in flight when {why}, not resent")).rowcount
            if policy == "resend":
                # The interruption was the gateway's, not the recipient's: it costs the devices' budget.
                resent = c.execute(update(Message).where(inflight, Message.possible_duplicate.is_(False))
                                   .values(state=Q, device=None, possible_duplicate=True, updated_at=now,
                                           attempts=Message.attempts - 1,
                                           device_failures=Message.device_failures + 1,
                                           reason=f"in flight when {why}; resent once")).rowcount
                failed = c.execute(update(Message).where(inflight).values(
                    state=MessageState.FAILED.value, updated_at=now,
                    reason="in flight at two interruptions; not resent again")).rowcount
            else:
                resent = 0
                failed = c.execute(update(Message).where(inflight).values(
                    state=MessageState.FAILED.value, updated_at=now,
                    reason=f"in flight when {why}; may or may not have been sent")).rowcount
            c.execute(_CANCEL_WITHDRAWN, {"now": now})
        return RecoveryReport(resent, failed, cancelled)

    def sweep_withdrawn(self, now: datetime | None = None) -> int:
        """Cancel what waits in the queue for an alert that was cancelled or corrected."""
        with self.engine.begin() as c:
            return c.execute(_CANCEL_WITHDRAWN, {"now": now or utcnow()}).rowcount

    def expire_alert(self, alert_id: int, now: datetime | None = None) -> int:
        now = now or utcnow()
        with self.engine.begin() as c:
            return c.execute(update(Message).where(
                Message.alert_id == alert_id, Message.state.in_((Q, MessageState.RETRY.value)))
                .values(state=MessageState.EXPIRED.value, updated_at=now,
                        reason="alert expired before this message could be sent")).rowcount

    def expire_due(self, now: datetime | None = None) -> int:
        """Expire queued messages of every alert past its expiry; returns how many."""
        now = now or utcnow()
        with self.engine.connect() as c:
            due = c.scalars(select(Alert.id).where(
                Alert.state.in_((AlertState.ACTIVE.value, AlertState.PENDING_APPROVAL.value)),
                Alert.expires_at <= now)).all()
        expired = sum(self.expire_alert(a, now) for a in due)
        with self.engine.begin() as c:
            # System messages (STOP confirmations, keeper texts) are news only for a while.
            stale = now - timedelta(minutes=self.policy.expiry_system_minutes)
            expired += c.execute(update(Message).where(
                Message.alert_id.is_(None), Message.state.in_((Q, MessageState.RETRY.value)),
                Message.created_at <= stale)
                .values(state=MessageState.EXPIRED.value, updated_at=now,
                        reason=f"not sent within expiry_system_minutes = {self.policy.expiry_system_minutes}"
                        )).rowcount
            # Not approved in time: nothing will go out, so the alert is over.
            c.execute(update(Alert).where(Alert.state == AlertState.PENDING_APPROVAL.value,
                                          Alert.expires_at <= now)
                      .values(state=AlertState.DONE.value, finished_at=now))
        return expired

    def finish_alerts(self, now: datetime | None = None) -> int:
        """Mark active alerts with nothing left to send as done."""
        now = now or utcnow()
        pending = (select(Message.id).where(Message.alert_id == Alert.id, Message.state.in_(PENDING))
                   .exists())
        with self.engine.begin() as c:
            return c.execute(update(Alert).where(Alert.state == AlertState.ACTIVE.value, ~pending)
                             .values(state=AlertState.DONE.value, finished_at=now)).rowcount

    # ------------------------------------------------------------------ reports, replies
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

    def _match_reports(self, c, device: str, reps: list[DeliveryReport], window: timedelta,
                       idx: list[int], matched: list[int | None], node: str | None = None) -> None:
        since = min(r.at for r in reps) - window
        q = select(Message.id, Message.reference, Message.number, Message.sent_at).where(
            Message.device == device, Message.reference.in_({r.reference for r in reps}),
            Message.state == MessageState.SENT.value, Message.sent_at >= since)
        rows = c.execute(q if node is None else q.where(Message.node == node)).all()
        candidates: dict[tuple[int, str], list] = {}
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
                Message.state.in_(("sent", "delivered", "acknowledged")),
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
                                            Message.state.in_((Q, MessageState.RETRY.value)))
                      .values(state=MessageState.CANCELLED.value, updated_at=utcnow(),
                              reason="the member replied STOP"))
        return member

    def acknowledge(self, message_id: int) -> None:
        with self.engine.begin() as c:
            c.execute(update(Message).where(Message.id == message_id,
                                            Message.state.in_(("sent", "delivered")))
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
                    .values(processed_at=now)).rowcount:
                return None
            if opt_out is not None:
                self._set_opt_out(s, number, opt_out)
            if confirmation is not None:
                s.execute(insert(Message), [{
                    "alert_id": None, "member_id": member_id, "number": number, "channel": "sms",
                    "language": confirmation[1], "text": confirmation[0], "priority": Category.URGENT.priority,
                    "state": Q, "not_before": now, "attempts": 0, "created_at": now, "updated_at": now,
                    "segments": 0, "possible_duplicate": False, "reason": ""}])
                wake(s.connection())
            if ack_message_id is not None:
                s.execute(update(Message).where(Message.id == ack_message_id,
                                                Message.state.in_(("sent", "delivered")))
                          .values(state=MessageState.ACKNOWLEDGED.value, updated_at=now))
            row = InboundMessage(device=device, number=number, text=text, kind=kind, received_at=at,
                                 member_id=member_id, alert_id=alert_id)
            s.add(row)
        return row.id

    # ------------------------------------------------------------------ escalation (see gatewayd/escalation.py)
    def escalation_due(self, category: str, sent_before: datetime, now: datetime) -> list[int]:
        """Alerts of CATEGORY written before SENT_BEFORE that may still escalate: going out or done,
        neither cancelled nor corrected, not expired."""
        with self.engine.connect() as c:
            return list(c.scalars(select(Alert.id).where(
                Alert.category == category, Alert.created_at <= sent_before, Alert.expires_at > now,
                Alert.state.in_((AlertState.ACTIVE.value, AlertState.DONE.value)), Alert.superseded_by.is_(None))))

    def unconfirmed(self, alert_id: int) -> list[tuple]:
        """(member id, number, channel, language) of the alert's messages not yet confirmed on their
        channel (SMS: delivered, call: acknowledged) and not withdrawn, of members who have no message
        on the other channel yet."""
        confirmed = {"sms": (MessageState.DELIVERED.value, MessageState.ACKNOWLEDGED.value),
                     "voice": (MessageState.ACKNOWLEDGED.value,)}
        withdrawn = (MessageState.CANCELLED.value, MessageState.EXPIRED.value)
        with self.engine.connect() as c:
            rows = c.execute(select(Message.member_id, Message.number, Message.channel, Message.language,
                                    Message.state, (Member.opted_out | Member.active.is_(False)).label("barred"))
                             .join(Member, Member.id == Message.member_id)
                             .where(Message.alert_id == alert_id)).all()
        channels: dict[int, set[str]] = {}
        for r in rows:
            channels.setdefault(r.member_id, set()).add(r.channel)
        # STOP is final: a member who opted out (or was made inactive) after the first send is not escalated.
        return [(r.member_id, r.number, r.channel, r.language) for r in rows
                if len(channels[r.member_id]) == 1 and not r.barred
                and r.state not in confirmed.get(r.channel, ()) + withdrawn]

    def queue_escalation(self, alert_id: int, targets: list[tuple[int, str, str, str]], now: datetime) -> int:
        """Queue one message per (member id, number, channel, language) for the alert, flagged
        escalated, and put a finished alert back to active so the devices take them."""
        with self.session.begin() as s:
            # Locked: a cancel or correction writing the alert now is waited for and then seen,
            # so its `cancelled` is never overwritten with `active` (PostgreSQL row lock).
            alert = s.get(Alert, alert_id, with_for_update=True)
            if alert is None or alert.state not in (AlertState.ACTIVE.value, AlertState.DONE.value) \
                    or alert.superseded_by is not None:
                return 0    # cancelled or corrected meanwhile
            rows = [{**self._row(alert, member_id, number, channel, lang, now), "escalated": True}
                    for member_id, number, channel, lang in targets]
            if rows:
                s.execute(insert(Message), rows)
                alert.state, alert.finished_at = AlertState.ACTIVE.value, None
        return len(rows)

    def escalated_count(self, alert_id: int) -> dict[str, int]:
        """Escalated messages of an alert per channel."""
        with self.engine.connect() as c:
            return dict(c.execute(select(Message.channel, func.count()).where(
                Message.alert_id == alert_id, Message.escalated.is_(True)).group_by(Message.channel)).all())

    # ------------------------------------------------------------------ received: written ahead
    def receive(self, event: InboundText | DeliveryReport, node: str = "") -> int | None:
        """Commit what a device received before it is deleted from the SIM (or acknowledged).

        Returns the row's id; None when the same SMS (same `key`) was stored already, as
        after a crash between this commit and the delete. Raises when it cannot be stored:
        the device must then keep it.
        """
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
            return c.execute(insert(ReceivedEvent).returning(ReceivedEvent.id), [row]).scalar_one()

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

    def _silent_nodes(self, c) -> list[str]:
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

    # ------------------------------------------------------------------ calls coming in (voice)
    def callback_alerts(self, member_id: int, since: datetime) -> list[tuple[int, str, str, datetime]]:
        """(alert id, text in the member's language, category, created) of the alerts of the member's
        networks since SINCE, newest first: what the callback line reads. No drills, nothing cancelled,
        waiting for approval or corrected (the correction is read instead)."""
        with self.session() as s:
            member = s.get(Member, member_id)
            nets = [n.id for n in member.networks] if member is not None else []
            if not nets:
                return []
            from .model import alert_network
            rows = s.execute(select(Alert).join(alert_network, alert_network.c.alert_id == Alert.id)
                             .where(alert_network.c.network_id.in_(nets), Alert.created_at >= since,
                                    Alert.drill.is_(False), Alert.superseded_by.is_(None),
                                    Alert.state.in_((AlertState.ACTIVE.value, AlertState.DONE.value)))
                             .distinct().order_by(Alert.created_at.desc(), Alert.id.desc())).scalars().all()
            return [(a.id, self._message_text(a, "voice", member.language, a.created_at), a.category, a.created_at)
                    for a in rows]

    def record_callback(self, device: str, number: str, member_id: int | None, alert_ids: list[int],
                        at: datetime, kind: str) -> None:
        """A call to the box, in one transaction: the audit entry and, per alert it hears, an inbox row
        (handled: nothing to do) that puts the callback on the alert's page. A stranger's number is
        kept redacted."""
        from .phone import redact
        shown = number if member_id is not None else redact(number)
        with self.session.begin() as s:
            s.add(AuditEntry(actor=f"callback:{shown}", action=AuditAction.CALLBACK.value, at=at,
                             detail={"member_id": member_id, "alerts": list(alert_ids), "device": device}))
            for alert_id in alert_ids or [None]:
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
                                 at=press.at, detail={"alert_id": alert_id, "member_id": member.id if member else None}))
                s.execute(update(Message).where(
                    Message.alert_id == alert_id, Message.number == press.number,
                    Message.state.in_((MessageState.SENT.value, MessageState.DELIVERED.value,
                                       MessageState.VOICEMAIL.value, MessageState.RETRY.value)))
                    .values(state=MessageState.ACKNOWLEDGED.value, updated_at=utcnow(),
                            reason="confirmed by the member on the callback line"))
            s.add(InboundMessage(device=press.device, number=press.number, text=text, kind=kind, received_at=press.at,
                                 member_id=member.id if member else None, alert_id=alert_id, handled=True,
                                 handled_by=BY_CALL_KEY if press.message_id is not None else BY_CALLBACK_KEY))

    def record_inbound(self, device: str, number: str, text: str, kind: str, at: datetime,
                       member_id: int | None, alert_id: int | None) -> int:
        with self.session.begin() as s:
            row = InboundMessage(device=device, number=number, text=text, kind=kind, received_at=at,
                                 member_id=member_id, alert_id=alert_id)
            s.add(row)
        return row.id

    def message_state(self, message_id: int) -> tuple[str, str] | None:
        """(state, reason) of one message, or None."""
        with self.engine.connect() as c:
            row = c.execute(select(Message.state, Message.reason).where(Message.id == message_id)).first()
        return (row.state, row.reason) if row else None

    def inbound_since(self, since: datetime, contains: str) -> bool:
        """Has a text containing CONTAINS been received since SINCE?"""
        with self.engine.connect() as c:
            return c.scalar(select(InboundMessage.id).where(InboundMessage.received_at >= since,
                                                            InboundMessage.text.contains(contains))
                            .limit(1)) is not None

    def get_setting(self, key: str) -> dict:
        with self.session() as s:
            row = s.get(Setting, key)
            return dict(row.value) if row is not None and isinstance(row.value, dict) else {}

    def put_setting(self, key: str, value: dict) -> None:
        with self.session.begin() as s:
            row = s.get(Setting, key)
            if row is None:
                s.add(Setting(key=key, value=value))
            else:
                row.value = value

    def member_by_number(self, number: str) -> Member | None:
        with self.session() as s:
            return s.scalar(select(Member).where(Member.phone == number))

    # ------------------------------------------------------------------ devices, status
    def forget_devices(self, node: str, keep: set[str]) -> list[str]:
        """Delete NODE's device records other than KEEP (devices taken out of its config);
        other nodes' devices are theirs to keep. Returns the names forgotten."""
        with self.session.begin() as s:
            gone = list(s.scalars(select(Device.name).where(Device.node == node, Device.name.not_in(keep))))
            if gone:
                s.execute(delete(Device).where(Device.name.in_(gone)))
        return gone

    def record_device(self, name: str, kind: str, node: str, health: DeviceHealth,
                      sent: int = 0, failed: int = 0) -> None:
        """Upsert a device's last known state and add to its counters."""
        now = utcnow()
        with self.session.begin() as s:
            dev = s.get(Device, (node, name)) or Device(node=node, name=name, kind=kind, sent_count=0,
                                                        failed_count=0)
            dev.kind, dev.state = kind, health.state.value
            dev.signal, dev.registered = health.signal, health.registered
            dev.last_error, dev.detail, dev.updated_at = health.last_error, dict(health.detail), now
            dev.sent_count = (dev.sent_count or 0) + sent
            dev.failed_count = (dev.failed_count or 0) + failed
            s.add(dev)

    def devices(self) -> list[dict]:
        with self.engine.connect() as c:
            rows = c.execute(select(Device).order_by(Device.node, Device.name)).mappings().all()
        out = []
        for r in rows:
            d = dict(r)
            d["updated_at"] = d["updated_at"].isoformat() if d["updated_at"] else None
            out.append(d)
        return out

    def queue_depth(self, now: datetime | None = None) -> dict:
        """Queued (and retrying) messages by category and channel, plus the oldest one's age."""
        now = now or utcnow()
        waiting = Message.state.in_((Q, MessageState.RETRY.value))
        with self.engine.connect() as c:
            rows = c.execute(select(Message.priority, Message.channel, func.count())
                             .where(waiting).group_by(Message.priority, Message.channel)).all()
            oldest = c.scalar(select(func.min(Message.created_at)).where(waiting))
            sending = c.scalar(select(func.count()).select_from(Message).where(Message.state == S))
        names = {3: "urgent", 2: "feedback", 1: "prevention"}
        by_cat: dict[str, dict[str, int]] = {}
        for prio, channel, n in rows:
            by_cat.setdefault(names.get(prio, str(prio)), {})[channel] = n
        if oldest is not None and oldest.tzinfo is None:
            from datetime import timezone
            oldest = oldest.replace(tzinfo=timezone.utc)
        return {"queued": sum(n for *_, n in rows), "sending": sending, "by_category": by_cat,
                "oldest_queued_seconds": round((now - oldest).total_seconds(), 1) if oldest else 0.0}

    def has_pending(self) -> bool:
        with self.engine.connect() as c:
            return c.scalar(select(Message.id).where(Message.state.in_(PENDING)).limit(1)) is not None


__all__ = ["Store", "AlertRequest", "EnqueueResult", "Claimed", "RecoveryReport", "ImportFailed",
           "category_of"]
