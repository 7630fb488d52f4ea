"""Alerts: validate, enqueue, approve, correct, cancel, report, estimate; and the templates they start from.

Every rule about what an alert may be is checked here (`validate_alert`), whether
it comes from the CLI, the page or the API; the page's preview asks the same
functions what a send would queue (`planned_messages`) and how long it would take
(`estimate`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from sqlalchemy import Row

from .. import reasons, schedule
from ..capacity import Capacity, capacity, seconds_to_reach
from ..config import Config
from ..errors import InputError, NotFound
from ..model import (
    Alert,
    AlertChannel,
    AlertState,
    Category,
    FormProblem,
    Language,
    Member,
    MemberChannel,
    Message,
    MessageState,
    Network,
    member_network,
    utcnow,
)
from ..outcomes import ChannelKind, DeviceState
from ..placeholders import leftover
from ..visible import has_visible
from ..vocabulary import CATEGORIES_OFFERED
from ..wakeup import wake
from .base import RECEIVED_STATES, WAITING, StoreBase, new_message_row

LANGUAGES = tuple(lang.value for lang in Language)
ALERT_CHANNELS = tuple(c.value for c in AlertChannel)
CATEGORIES = tuple(c.value for c in CATEGORIES_OFFERED)
MAX_TEXT = 1000
MAX_TITLE = 120
if TYPE_CHECKING:
    # (member id, phone, channel preference, language, opted out, active) of one member addressed.
    _Recipient = Row[int, str, str, str, bool, bool]
    # (message rows, counts per channel, members skipped per reason): what a send would queue.
    _Planned = tuple[list[dict[str, Any]], dict[str, int], dict[str, int]]



@dataclass(frozen=True)
class AlertRequest:
    """What a person asks to send; validated by `Store.enqueue_alert`."""

    networks: tuple[str, ...]
    category: str
    text: str
    texts: dict[str, str] = field(default_factory=dict)   # per language, optional
    channel: str = AlertChannel.MEMBER.value               # member | sms | voice
    author: str = "cli"
    parent_id: int | None = None
    drill: bool = False


@dataclass(frozen=True)
class EnqueueResult:
    alert_id: int
    messages: dict[str, int]          # channel -> count
    skipped: dict[str, int]           # reason -> members not addressed


@dataclass(frozen=True)
class Estimate:
    """How long reaching everyone would take: SECONDS (None: a needed channel has no device)."""

    seconds: float | None
    capacity: Capacity
    ahead: dict[str, int] = field(default_factory=dict)    # per channel, queued at equal or higher priority


def _refuse_placeholder(where: str, text: str) -> None:
    """A template's "[straat]" must never reach a member: refuse rather than send it."""
    left = leftover(text)
    if left:
        raise InputError(where, f"still holds the placeholder [{left}]: fill it in (or remove the brackets)",
                         FormProblem.PLACEHOLDER_LEFT, {"slot": left})


def _already_corrected(original_id: int, by: int | None) -> InputError:
    return InputError("alert", f"alert {original_id} was already corrected by alert {by}; correct that one")


def sender_of(networks: list[Network]) -> str:
    """Who an alert is from, as said first: the first network's police zone, else its name."""
    for net in networks or ():
        if net.zone:
            return net.zone
    return networks[0].name if networks else ""


def category_of(value: str) -> Category:
    try:
        return Category(value)
    except ValueError:
        raise InputError("category", f"{value!r} is not one of {', '.join(CATEGORIES)}",
                         FormProblem.CATEGORY_UNKNOWN) from None


class AlertStore(StoreBase):
    """What happens to alerts between a person writing one and its last message."""

    def expiry_for(self, category: Category) -> timedelta:
        return schedule.expiry_for(self.policy, category)

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
                raise InputError(where, f"{len(text)} characters; at most {MAX_TEXT}",
                                 FormProblem.TEXT_TOO_LONG, {"n": len(text), "max": MAX_TEXT})
            if "\x00" in text:
                raise InputError(where, "contains a NUL character", FormProblem.TEXT_NUL)
            if text.strip() and not has_visible(text):
                raise InputError(where, "only invisible characters (zero-width or format characters); "
                                        "write a text people can read", FormProblem.TEXT_INVISIBLE)
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
            nets = [self.network(s, n) for n in req.networks] if req.networks or parent is None \
                else list(parent.networks)
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

    def planned_messages(self, network_ids: list[int], mode: str, parent_id: int | None = None) -> _Planned:
        """(rows, counts per channel, skipped per reason) that enqueue_alert would write, for a preview.
        Same rules as the send, nothing written."""
        with self.session() as s:
            if parent_id is not None and not network_ids:
                recipients = self._parent_recipients(s, parent_id)
            else:
                recipients = self._network_recipients(s, network_ids) if network_ids else []
        preview = Alert(id=0, texts={}, text="", priority=0)
        return self._message_rows(preview, recipients, mode, utcnow())

    def _network_recipients(self, s: Session, network_ids: list[int]) -> list[_Recipient]:
        q = (select(Member.id, Member.phone, Member.channel, Member.language, Member.opted_out, Member.active)
             .join(member_network, member_network.c.member_id == Member.id)
             .where(member_network.c.network_id.in_(network_ids)).distinct().order_by(Member.id))
        return list(s.execute(q))

    def _parent_recipients(self, s: Session, parent_id: int) -> list[_Recipient]:
        """The members the parent alert addressed, with their current preferences."""
        ids = select(Message.member_id).where(Message.alert_id == parent_id, Message.member_id.is_not(None))
        q = (select(Member.id, Member.phone, Member.channel, Member.language, Member.opted_out, Member.active)
             .where(Member.id.in_(ids)).order_by(Member.id))
        return list(s.execute(q))

    def _message_rows(self, alert: Alert, recipients: list[_Recipient], mode: str, now: datetime) -> _Planned:
        rows: list[dict[str, Any]] = []
        counts = {k.value: 0 for k in ChannelKind}
        skipped: dict[str, int] = {}
        for member_id, phone, pref, lang, opted_out, active in recipients:
            if not active:
                skipped["inactive"] = skipped.get("inactive", 0) + 1
                continue
            if opted_out:
                skipped["opted out"] = skipped.get("opted out", 0) + 1
                continue
            channels = pref.split("+") if mode == AlertChannel.MEMBER else [mode]
            if mode == AlertChannel.SMS and pref == MemberChannel.VOICE:
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
                raise InputError("alert", f"alert {alert_id} is {alert.state}, not waiting for approval",
                                 FormProblem.NOT_WAITING, {"id": alert_id})
            if not approver or approver == alert.author:
                raise InputError("approver", "the author cannot approve their own alert; "
                                             "a second person must approve it")
            # Expiry counts from when the alert was written: a late approval must not send it late.
            if alert.expires_at <= now:
                raise InputError("alert", f"alert {alert_id} expired at {alert.expires_at:%Y-%m-%d %H:%M} UTC "
                                          "before it was approved; write a new one if it still matters",
                                 FormProblem.EXPIRED_UNAPPROVED, {"id": alert_id, "at": alert.expires_at})
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
            raise _already_corrected(original_id, by) from None

    def _correct(self, original_id: int, text: str, texts: dict[str, str], author: str,
                 now: datetime) -> EnqueueResult:
        with self.session.begin() as s:
            self._lock_opt_outs(s, exclusive=False)
            original = s.get(Alert, original_id)
            if original is None:
                raise NotFound("alert", original_id)
            if original.superseded_by is not None:
                raise _already_corrected(original_id, original.superseded_by)
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
                             .values(superseded_by=correction.id)).rowcount:  # type: ignore[attr-defined]
                raise _already_corrected(original_id, None)
            s.execute(update(Message).where(Message.alert_id == original_id, Message.state.in_(WAITING))
                      .values(state=MessageState.CANCELLED.value, updated_at=now,
                              reason=reasons.SUPERSEDED))
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
            counts = {k.value: sum(r["channel"] == k for r in rows) for k in ChannelKind}
        return EnqueueResult(correction.id, counts, {})

    def _row(self, alert: Alert, member_id: int | None, number: str, channel: str, lang: str,
             now: datetime) -> dict[str, Any]:
        """ALERT's message to one member on one channel, in the member's language when the alert has it."""
        return new_message_row(alert_id=alert.id, member_id=member_id, number=number, channel=channel,
                               language=lang, text=self._message_text(alert, channel, lang, now),
                               priority=alert.priority, now=now)

    def _message_text(self, alert: Alert, channel: str, lang: str, now: datetime) -> str:
        """The alert's text in LANG; with [dispatch] sender_first, who and when in front (spoken for a call)."""
        text: str = (alert.texts or {}).get(lang, alert.text)
        if not self.policy.sender_first:
            return text
        from ..heading import with_heading
        return with_heading(text, sender_of(alert.networks), alert.created_at or now, lang, self.policy.timezone,
                            spoken=channel == ChannelKind.VOICE)

    def sender_of_networks(self, network_ids: list[int]) -> str:
        """The sender said first for an alert to these networks (see sender_of)."""
        with self.session() as s:
            return sender_of(list(s.scalars(select(Network).where(Network.id.in_(network_ids)).order_by(Network.id))))

    def alert_report(self, alert_id: int) -> dict[str, Any]:
        """Everything about one alert, per recipient: what went (or, in a drill, would have gone) to whom."""
        status = self.alert_status(alert_id)
        with self.session() as s:
            alert = s.get(Alert, alert_id)
            if alert is None:       # deleted between the two reads (GDPR purge): as if never there
                raise NotFound("alert", alert_id)
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

    def alert_status(self, alert_id: int) -> dict[str, Any]:
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
            cancelled: int = c.execute(update(Message).where(Message.alert_id == alert_id,
                                                             Message.state.in_(WAITING))
                                       .values(state=MessageState.CANCELLED.value,
                                               reason=reasons.cancelled_by(actor), updated_at=now)).rowcount
            return cancelled

    # ------------------------------------------------------------------ escalation (see gatewayd/escalation.py)
    def escalation_due(self, category: str, sent_before: datetime, now: datetime) -> list[int]:
        """Alerts of CATEGORY written before SENT_BEFORE that may still escalate: going out or done,
        neither cancelled nor corrected, not expired."""
        with self.engine.connect() as c:
            return list(c.scalars(select(Alert.id).where(
                Alert.category == category, Alert.created_at <= sent_before, Alert.expires_at > now,
                Alert.state.in_((AlertState.ACTIVE.value, AlertState.DONE.value)), Alert.superseded_by.is_(None))))

    def unconfirmed(self, alert_id: int) -> list[tuple[int, str, str, str]]:
        """(member id, number, channel, language) of the alert's messages not yet confirmed on their
        channel (SMS: delivered, call: acknowledged) and not withdrawn, of members who have no message
        on the other channel yet."""
        confirmed = {ChannelKind.SMS.value: (MessageState.DELIVERED.value, MessageState.ACKNOWLEDGED.value),
                     ChannelKind.VOICE.value: (MessageState.ACKNOWLEDGED.value,)}
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

    # ------------------------------------------------------------------ estimate
    def estimate(self, cfg: Config, sms_parts: int, calls: int, category: str | None = None) -> Estimate:
        """How long the devices of CFG (less those the daemon reports down) need for SMS_PARTS segments
        and CALLS calls, after what waits at CATEGORY's priority or above (None: nothing counted ahead):
        the compose preview's live estimate. A report of what was sent asks capacity.configured_seconds."""
        down = {d["name"] for d in self.devices() if d.get("state") == DeviceState.DOWN}
        cap = capacity(cfg, down)
        ahead = self.queued_ahead(category) if category is not None else {}
        return Estimate(seconds_to_reach(sms_parts, calls, cap, ahead), cap, ahead)

    def queued_ahead(self, category: str) -> dict[str, int]:
        """Messages waiting with a priority at or above CATEGORY's, per channel."""
        prio = category_of(category).priority
        out: dict[str, int] = {}
        for cat, per_channel in self.queue_depth()["by_category"].items():
            if cat in CATEGORIES and Category(cat).priority >= prio:
                for ch, n in per_channel.items():
                    out[ch] = out.get(ch, 0) + n
        return out
