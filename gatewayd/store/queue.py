"""The queue: enqueue, claim, complete, recover. The hot path and the message state machine.

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
import functools
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, literal, select, union_all, update
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import ColumnElement

from .. import reasons, schedule
from ..model import Alert, AlertState, Attempt, Category, Member, Message, MessageState, utcnow
from ..outcomes import ChannelKind, Delivery, Outcome, OutcomeKind
from ..wakeup import wake
from .base import PENDING, QUEUED, RETRY, SENDING, SYSTEM_PRIORITY, WAITING, StoreBase, new_message_row


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
    node: str = ""              # the node that claimed it: device names repeat across nodes


@dataclass(frozen=True)
class RecoveryReport:
    resent: int
    failed: int
    cancelled: int = 0     # the member opted out meanwhile: not resent


class LostClaim(RuntimeError):
    """A completed message was no longer ours to record (another node recovered it)."""

    def __init__(self, message_id: int):
        super().__init__(f"message {message_id} was no longer in sending on this device")
        self.message_id = message_id


@dataclass(frozen=True)
class _Taker:
    """Who claims: a device of KIND on NODE, at NOW."""

    kind: str
    device: str
    node: str
    now: datetime


@dataclass(frozen=True)
class _Source:
    """Where a claim takes from: one alert, or (ALERT_ID None) the system messages."""

    alert_id: int | None
    category: str
    drill: bool
    stamp: bool = False      # record the serve time (round-robin against a rival of equal priority)



# Hot-path statements, built once: the dispatcher runs them for every message.
def _picks(owner: ColumnElement[bool]) -> tuple[Select[Any], ...]:
    """The next message of one owner (an alert, or none for system messages): a due retry, then the oldest.

    Both walk ix_message_claim (alert_id, channel, state, not_before, id) in index
    order and stop at the first row: a retry still backing off lies beyond the
    `not_before <= now` range and is never read, however many there are.
    """
    channel = Message.channel == bindparam("kind")
    due_retry = (select(Message.id).where(owner, channel, Message.state == RETRY,
                                          Message.not_before <= bindparam("now"))
                 .order_by(Message.not_before, Message.id).limit(1))
    # Queued rows keep the not_before of their enqueue (a requeue does not move it): FIFO.
    fresh = (select(Message.id).where(owner, channel, Message.state == QUEUED)
             .order_by(Message.not_before, Message.id).limit(1))
    return due_retry, fresh


def _one_pick(picks: tuple[Select[Any], ...]) -> tuple[Select[Any], ...]:
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
                             Message.state == QUEUED).exists()
    | select(Message.id).where(Message.alert_id == Alert.id, Message.channel == bindparam("kind"),
                               Message.state == RETRY,
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
_TAKE = (update(Message).where((Message.state == QUEUED) | (Message.state == RETRY))
         .values(state=SENDING, device=bindparam("device"), node=bindparam("node"),
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


@functools.lru_cache(maxsize=None)
def _finish_statement(columns: frozenset[str]) -> Update:
    """The guarded update that records an outcome, one per set of columns written."""
    return (update(Message).where(Message.id == bindparam("message"), Message.state == SENDING,
                                  Message.device == bindparam("owner"), Message.node == bindparam("owner_node"))
            .values({c: bindparam(f"v_{c}") for c in sorted(columns)}))


_WITHDRAWN = select(Alert.id).where((Alert.state == AlertState.CANCELLED.value) | Alert.superseded_by.is_not(None))
_CANCEL_WITHDRAWN_VALUES = dict(state=MessageState.CANCELLED.value, updated_at=bindparam("now"),
                                reason=reasons.WITHDRAWN_IN_FLIGHT)
# The sweep starts from the (few) withdrawn alerts and seeks each one's waiting rows in
# ix_message_claim (alert, every channel, both waiting states): its cost follows the
# withdrawn alerts, not the size of the queue.
_WITHDRAWNWAITING = (select(Message.id).where(Message.alert_id.in_(_WITHDRAWN),
                                               Message.channel.in_([k.value for k in ChannelKind]),
                                               Message.state.in_(WAITING)))
_CANCEL_WITHDRAWN = (update(Message).where(Message.id.in_(_WITHDRAWNWAITING))
                     .values(**_CANCEL_WITHDRAWN_VALUES))
_CANCEL_IF_WITHDRAWN = (update(Message).where(Message.id == bindparam("message"), Message.state.in_(WAITING),
                                              Message.alert_id.in_(_WITHDRAWN))
                        .values(**_CANCEL_WITHDRAWN_VALUES))
_BARRED_REASON = "the member opted out (STOP) or was made inactive"
_CANCEL_BARRED = (update(Message).where(Message.id == bindparam("message"), Message.state == SENDING)
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
                  .where(Message.id == bindparam("message"), Message.state == SENDING,
                         Message.device == bindparam("owner"), Message.node == bindparam("owner_node")))
_END_ATTEMPT = (update(Attempt).where(Attempt.id == bindparam("attempt"))
                .values(ended_at=bindparam("ended_at"), result=bindparam("result"), error=bindparam("error")))


class QueueStore(StoreBase):
    """Claiming, completing and recovering messages: what `gatewayd run` does for every send."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Round-robin stamp: the alert served longest ago has the smallest value.
        self._last_stamp = 0.0
        self._serve_lock = threading.Lock()
        self._next_system_check = 0.0

    def enqueue_system_sms(self, number: str, text: str, language: str = "nl",
                           member_id: int | None = None, channel: str = ChannelKind.SMS.value) -> int:
        """Queue a message that belongs to no alert (opt-out confirmation, keeper alert, self-test)."""
        row = new_message_row(alert_id=None, member_id=member_id, number=number, channel=channel,
                              language=language, text=text, priority=SYSTEM_PRIORITY, now=utcnow())
        with self.engine.begin() as c:
            wake(c)
            message_id: int = c.execute(insert(Message).returning(Message.id), [row]).scalar_one()
            return message_id

    def message_state(self, message_id: int) -> tuple[str, str] | None:
        """(state, reason) of one message, or None."""
        with self.engine.connect() as c:
            row = c.execute(select(Message.state, Message.reason).where(Message.id == message_id)).first()
        return (row.state, row.reason) if row else None


    def queue_depth(self, now: datetime | None = None) -> dict[str, Any]:
        """Queued (and retrying) messages by category and channel, plus the oldest one's age."""
        now = now or utcnow()
        waiting = Message.state.in_(WAITING)
        with self.engine.connect() as c:
            rows = c.execute(select(Message.priority, Message.channel, func.count())
                             .where(waiting).group_by(Message.priority, Message.channel)).all()
            oldest = c.scalar(select(func.min(Message.created_at)).where(waiting))
            sending = c.scalar(select(func.count()).select_from(Message).where(Message.state == SENDING))
        by_cat: dict[str, dict[str, int]] = {}
        for prio, channel, n in rows:
            cat = Category.of_priority(prio)
            by_cat.setdefault(cat.value if cat else str(prio), {})[channel] = n
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=timezone.utc)
        return {"queued": sum(n for *_, n in rows), "sending": sending, "by_category": by_cat,
                "oldest_queued_seconds": round((now - oldest).total_seconds(), 1) if oldest else 0.0}

    def has_pending(self) -> bool:
        with self.engine.connect() as c:
            return c.scalar(select(Message.id).where(Message.state.in_(PENDING)).limit(1)) is not None


    # ------------------------------------------------------------------ claim
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
        taker = _Taker(kind, device, node, now)
        with self.engine.connect() as c:
            if time.monotonic() >= self._next_system_check:
                claimed = self._claim_from(c, taker, _Source(None, Category.URGENT.value, False))
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
                claimed = self._claim_from(c, taker, _Source(alert_id, category, bool(drill), stamp=rival))
                if claimed:
                    return claimed
        return None

    def _claim_from(self, c: Connection, taker: _Taker, source: _Source) -> Claimed | None:
        """The next message of SOURCE (an alert, or the system messages) for TAKER, or None."""
        system = source.alert_id is None
        if self._pg:
            picks = _SYSTEM_PICKS if system else _ALERT_PICKS
        else:
            picks = _SYSTEM_PICK_SQLITE if system else _ALERT_PICK_SQLITE
        for pick in picks:
            claimed = self._take(c, _TAKE_PICKED[pick], taker, source)
            if claimed is not None:
                return claimed
        return None

    def _take(self, c: Connection, stmt: Any, taker: _Taker, source: _Source) -> Claimed | None:
        """queued/retry -> sending, plus an Attempt row, in one transaction.

        A message whose member opted out or was made inactive is cancelled instead,
        and the next one is taken.
        """
        params = {"alert": source.alert_id, "kind": taker.kind, "now": taker.now, "device": taker.device,
                  "node": taker.node}
        while True:
            try:
                row = c.execute(stmt, params).first()
                if row is None:
                    c.rollback()
                    return None
                if row.alert_id is not None and row.member_out:
                    c.execute(_CANCEL_BARRED, {"message": row.id, "now": taker.now})
                    c.commit()
                    continue
                attempt_id = c.execute(_NEW_ATTEMPT, {"message_id": row.id, "device": taker.device,
                                                      "node": taker.node, "started_at": taker.now,
                                                      "error": ""}).scalar_one()
                if source.stamp:
                    c.execute(_SERVED, {"alert": source.alert_id, "stamp": self._stamp()})
                c.commit()
            except BaseException:
                c.rollback()
                raise
            return Claimed(row.id, attempt_id, source.alert_id, source.category, row.attempts,
                           row.possible_duplicate,
                           Delivery(row.id, row.number, row.text, row.language, source.category, source.alert_id,
                                    source.drill, row.attempts),
                           row.device_failures, taker.node)

    def still_claimed(self, claimed: Claimed, device: str) -> bool:
        """Is CLAIMED still this device's own claim (not taken over by another node meanwhile)?"""
        with self.engine.connect() as c:
            return c.scalar(_STILL_CLAIMED, {"attempt": claimed.attempt_id, "message": claimed.message_id,
                                             "owner": device, "owner_node": claimed.node}) is not None

    # ------------------------------------------------------------------ outcome
    def max_attempts(self, category: str) -> int:
        return schedule.max_attempts(self.policy, category)

    def backoff(self, attempts: int) -> timedelta:
        return schedule.backoff(self.policy, attempts)

    def complete(self, claimed: Claimed, device: str, outcome: Outcome, now: datetime | None = None) -> str:
        """Record OUTCOME of a claimed message; returns the message's new state.

        A member who opted out (or was made inactive) while the try was in flight
        ends `cancelled` whatever the device says; the Attempt row keeps what it said.
        """
        now = now or utcnow()
        k = outcome.kind
        with self.engine.begin() as c:
            if self._barred(c, claimed.message_id):
                values: dict[str, Any] = {
                    "updated_at": now, "state": MessageState.CANCELLED.value,
                    "reason": f"{_BARRED_REASON} while this try was in flight; the device said "
                              f"{k.value}{': ' + outcome.detail if outcome.detail else ''}"}
            else:
                values = {"updated_at": now, **self._outcome_values(claimed, device, outcome, now)}
            changed = c.execute(_finish_statement(frozenset(values)), {
                **{f"v_{k}": v for k, v in values.items()}, "message": claimed.message_id, "owner": device,
                "owner_node": claimed.node}).rowcount
            c.execute(_END_ATTEMPT, {"attempt": claimed.attempt_id, "ended_at": now, "result": k.value,
                                     "error": "" if k is OutcomeKind.SENT else outcome.detail})
            if values["state"] in WAITING:
                if c.execute(_CANCEL_IF_WITHDRAWN, {"message": claimed.message_id, "now": now}).rowcount:
                    values["state"] = MessageState.CANCELLED.value
        if not changed:
            raise LostClaim(claimed.message_id)
        return str(values["state"])

    def _barred(self, c: Connection, message_id: int) -> bool:
        """Has this message's member opted out or been made inactive? On PostgreSQL the
        member row is share-locked, so a STOP committing now waits for this transaction."""
        stmt: Any = _IS_BARRED
        if self._pg:
            stmt = (select(Member.opted_out | Member.active.is_(False))
                    .join(Message, and_(Message.member_id == Member.id, Message.alert_id.is_not(None)))
                    .where(Message.id == bindparam("message")).with_for_update(of=Member, read=True))
        return bool(c.scalar(stmt, {"message": message_id}))

    def _outcome_values(self, claimed: Claimed, device: str, outcome: Outcome, now: datetime) -> dict[str, Any]:
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
                return dict(state=RETRY, not_before=now + wait, possible_duplicate=True, reason=outcome.detail)
            return dict(state=RETRY, not_before=now + wait, reason=outcome.detail)
        return self._requeue_values(claimed, outcome, device)

    def voicemail_recall(self, category: str) -> timedelta | None:
        return schedule.voicemail_recall(self.policy, category)

    def _had_voicemail(self, message_id: int) -> bool:
        with self.engine.connect() as c:
            return c.scalar(select(Attempt.id).where(
                Attempt.message_id == message_id, Attempt.result == OutcomeKind.VOICEMAIL.value).limit(1)) is not None

    def _voicemail_values(self, claimed: Claimed, outcome: Outcome, now: datetime) -> dict[str, Any]:
        """An answering machine took the call: call again once (per category policy), else final."""
        recall = self.voicemail_recall(claimed.category)
        detail = f"voicemail: {outcome.detail}"
        if (recall is not None and claimed.attempts < self.max_attempts(claimed.category)
                and not self._had_voicemail(claimed.message_id)):
            return {"state": RETRY, "not_before": now + recall, "sent_at": now,
                    "reason": f"{detail}; calling again after {recall.total_seconds() / 60:g} min"}
        return {"state": MessageState.VOICEMAIL.value, "sent_at": now, "reason": detail}

    def _requeue_values(self, claimed: Claimed, outcome: Outcome, device: str) -> dict[str, Any]:
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
        return {**spent, "state": QUEUED, "device": None,
                "possible_duplicate": claimed.possible_duplicate or outcome.maybe_sent,
                "reason": f"requeued: {device} failed: {outcome.detail}"}

    # ------------------------------------------------------------------ recovery, expiry
    def recover_inflight(self, node: str, policy: str = "resend", now: datetime | None = None,
                         conn: Connection | None = None, why: str = "the daemon stopped") -> RecoveryReport:
        """Resolve messages NODE left in `sending` (it crashed, lost power, or its lease ran out).

        resend: back to queued once, flagged possible_duplicate; a message that
        was already a possible duplicate fails instead (never a third copy).
        fail: failed with a reason saying it may or may not have gone out.
        CONN: run inside the caller's transaction (a takeover holds the node's row locked).
        """
        now = now or utcnow()
        inflight = and_(Message.state == SENDING, Message.node == node)
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
                                   .values(state=QUEUED, device=None, possible_duplicate=True, updated_at=now,
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
                Message.alert_id == alert_id, Message.state.in_(WAITING))
                .values(state=MessageState.EXPIRED.value, updated_at=now,
                        reason=reasons.EXPIRED)).rowcount

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
            stale = now - schedule.system_expiry(self.policy)
            expired += c.execute(update(Message).where(
                Message.alert_id.is_(None), Message.state.in_(WAITING), Message.created_at <= stale)
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

