"""Read-only view queries the police page needs: paging, scoping to a user's networks, previews.

Shaped for pages, not for the daemon. Nothing here writes: every write goes through
`gatewayd.store.Store`, which checks the rules; these only read, through
`Store.reading()` / `Store.connection()`.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import selectinload
from sqlalchemy.sql.elements import ColumnElement

from gatewayd.capacity import configured_seconds
from gatewayd.config import Config
from gatewayd.errors import NotFound
from gatewayd.model import (
    Alert,
    AlertTemplate,
    ApiToken,
    Category,
    InboundMessage,
    Member,
    Message,
    Network,
    User,
    alert_network,
    member_network,
    utcnow,
)
from gatewayd.outcomes import ChannelKind
from gatewayd.phone import redact
from gatewayd.store import OUT_STATES, REACHED_STATES, RECEIVED_STATES, WAITING, Store

PAGE_SIZE = 50
MAX_DB_INT = 2**63 - 1      # SQLite and PostgreSQL BIGINT; a larger number is no id of ours


def to_int(value, default=None):
    """VALUE from a form or query string as an int usable in SQL, else DEFAULT (never raises)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if -MAX_DB_INT <= number <= MAX_DB_INT else default
def templates(store: Store) -> list[AlertTemplate]:
    with store.reading() as s:
        return list(s.scalars(select(AlertTemplate).order_by(AlertTemplate.position, AlertTemplate.id)))


def template_by_key(store: Store, key: str) -> AlertTemplate | None:
    with store.reading() as s:
        return s.scalar(select(AlertTemplate).where(AlertTemplate.key == key))


# ---------------------------------------------------------------------- networks
def networks(store: Store, ids: tuple[int, ...] | None = None) -> list[Network]:
    """Networks by name; only IDS when given."""
    with store.reading() as s:
        q = select(Network).order_by(Network.name)
        if ids is not None:
            q = q.where(Network.id.in_(ids))
        return list(s.scalars(q))


def network_member_counts(store: Store, ids: tuple[int, ...]) -> dict[int, dict[str, int]]:
    """network id -> {"total", "active", "opted_out"} member counts."""
    with store.connection() as c:
        rows = c.execute(select(member_network.c.network_id, func.count(),
                                func.sum(case((Member.active.is_(True), 1), else_=0)),
                                func.sum(case((Member.opted_out.is_(True), 1), else_=0)))
                         .join(Member, Member.id == member_network.c.member_id)
                         .where(member_network.c.network_id.in_(ids)).group_by(member_network.c.network_id)).all()
    return {nid: {"total": n, "active": a or 0, "opted_out": o or 0} for nid, n, a, o in rows}


# ---------------------------------------------------------------------- members
@dataclass
class MemberPage:
    members: list[dict]
    total: int
    page: int
    pages: int
    hidden: int = 0          # rows left out because they are outside the reader's networks


def name_key(name: str | None) -> str:
    """A name as a person sorts it: "Émile" beside "Eva", "élodie" before both, not after "Zoë"."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _matches(name: str | None, phone: str, q: str) -> bool:
    """Does the search Q find this member? Its name without regard to accents or case ("emile" finds
    "Émile"), or its number by the digits typed (numbers are stored as +32..., "0470" looks for "470")."""
    if not q:
        return True
    digits = "".join(ch for ch in q if ch.isdigit()).lstrip("0")
    return name_key(q) in name_key(name) or bool(digits) and digits in phone


def member_page(store: Store, network_ids: tuple[int, ...] | None, network_id: int | None, q: str,
                page: int, show_inactive: bool = True) -> MemberPage:
    """One page of members in NETWORK_IDS (None = all), optionally one network and a search."""
    # Sorted by name across pages (not only within one), as a person sorts names: accents and case set aside
    # (SQLite's lower() leaves "É" as it is and "é" sorts after "z"). A network's members are a few
    # thousand at most: their ids and names are sorted here and one page of them is loaded.
    with store.reading() as s:
        base = select(Member.id, Member.name, Member.phone)
        if network_id is not None or network_ids is not None:
            base = base.join(member_network, member_network.c.member_id == Member.id)
            if network_id is not None:
                base = base.where(member_network.c.network_id == network_id)
            if network_ids is not None:
                base = base.where(member_network.c.network_id.in_(network_ids))
        if not show_inactive:
            base = base.where(Member.active.is_(True))
        found = [r for r in s.execute(base.distinct()).all() if _matches(r.name, r.phone, (q or "").strip())]
        found.sort(key=lambda r: (name_key(r.name), r.name or "", r.id))
        total = len(found)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(max(1, page), pages)
        ids = [r.id for r in found[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]]
        by_id = {m.id: m for m in s.scalars(select(Member).options(selectinload(Member.networks))
                                            .where(Member.id.in_(ids)))}
        members = [by_id[i] for i in ids]
        rows = [{"m": m, "networks": [n for n in m.networks if network_ids is None or n.id in network_ids]}
                for m in members]
    return MemberPage(rows, total, page, pages)


def member(store: Store, member_id: int) -> Member:
    with store.reading() as s:
        m = s.get(Member, member_id)
        if m is None:
            raise NotFound("member", member_id)
        m.networks  # load while the session is open  # noqa: B018
        return m


def member_in_scope(store: Store, member_id: int, allowed: tuple[int, ...] | None) -> bool:
    if allowed is None:
        return True
    with store.connection() as c:
        return c.scalar(select(member_network.c.member_id).where(
            member_network.c.member_id == member_id, member_network.c.network_id.in_(allowed)).limit(1)) is not None


def members_outside_scope(store: Store, numbers: list[str], allowed: tuple[int, ...] | None) -> set[str]:
    """Those NUMBERS that belong to a member none of whose networks is in ALLOWED (None = all are)."""
    if allowed is None or not numbers:
        return set()
    with store.connection() as c:
        known = set(c.scalars(select(Member.phone).where(Member.phone.in_(numbers))))
        seen = set(c.scalars(select(Member.phone).join(member_network, member_network.c.member_id == Member.id)
                             .where(Member.phone.in_(numbers), member_network.c.network_id.in_(allowed))))
    return known - seen


# ---------------------------------------------------------------------- alerts
def alert(store: Store, alert_id: int) -> Alert:
    with store.reading() as s:
        a = s.get(Alert, alert_id)
        if a is None:
            raise NotFound("alert", alert_id)
        a.networks  # noqa: B018
        return a


def recent_alerts(store: Store, network_ids: tuple[int, ...] | None, limit: int = 20) -> list[dict]:
    """The newest alerts to NETWORK_IDS (None = all) with their message counts per state."""
    with store.reading() as s:
        q = select(Alert).options(selectinload(Alert.networks)).order_by(Alert.id.desc()).limit(limit)
        if network_ids is not None:
            q = q.where(Alert.id.in_(select(alert_network.c.alert_id)
                                     .where(alert_network.c.network_id.in_(network_ids))))
        alerts = list(s.scalars(q))
        ids = [a.id for a in alerts]
        counts: dict[int, dict[str, int]] = {}
        for aid, state, n in s.execute(select(Message.alert_id, Message.state, func.count())
                                       .where(Message.alert_id.in_(ids))
                                       .group_by(Message.alert_id, Message.state)):
            if aid is not None:
                counts.setdefault(aid, {})[state] = n
    return [{"alert": a, "counts": counts.get(a.id, {})} for a in alerts]


def recipients_page(store: Store, alert_id: int, page: int, mask: bool, state: str = "",
                    scope: tuple[int, ...] | None = None) -> MemberPage:
    """One page of an alert's messages: number (masked when MASK), channel, state, reason.

    Only recipients who are members of SCOPE's networks (None = all); `hidden` counts the others,
    who are never named to this user.
    """
    with store.reading() as s:
        base = select(Message).where(Message.alert_id == alert_id)
        if state:
            base = base.where(Message.state == state)
        everyone = s.scalar(select(func.count()).select_from(base.subquery())) or 0
        if scope is not None:
            base = base.where(Message.member_id.in_(
                select(member_network.c.member_id).where(member_network.c.network_id.in_(scope))))
        total = s.scalar(select(func.count()).select_from(base.subquery())) or 0
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(max(1, page), pages)
        rows = s.execute(base.with_only_columns(Message.id, Message.number, Message.channel, Message.language,
                                                Message.state, Message.attempts, Message.device, Message.reason,
                                                Message.updated_at, Member.name)
                         .outerjoin(Member, Member.id == Message.member_id)
                         .order_by(Message.id).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    out = [{"id": r.id, "number": redact(r.number) if mask else r.number, "name": r.name or "",
            "channel": r.channel, "language": r.language, "state": r.state, "attempts": r.attempts,
            "device": r.device or "", "reason": r.reason, "updated_at": r.updated_at} for r in rows]
    return MemberPage(out, total, page, pages, hidden=everyone - total)


# ---------------------------------------------------------------------- preview
@dataclass
class RecipientPreview:
    per_channel: dict[str, int]                     # sms / voice -> messages
    per_language: dict[str, int]                    # language -> members addressed
    sms_by_language: dict[str, int]                 # language -> SMS messages
    skipped: dict[str, int]
    members: int                                    # distinct members addressed

    @property
    def total(self) -> int:
        return sum(self.per_channel.values())


def preview_recipients(store: Store, network_ids: list[int], mode: str, parent_id: int | None) -> RecipientPreview:
    """What `Store.enqueue_alert` would queue, computed by the store's own rules without writing.

    Uses the store's recipient and row helpers so the preview cannot drift from the send.
    """
    rows, counts, skipped = store.planned_messages(network_ids, mode, parent_id)
    langs: dict[str, set[int]] = {}
    sms_langs: dict[str, int] = {}
    for r in rows:
        langs.setdefault(r["language"], set()).add(r["member_id"])
        if r["channel"] == ChannelKind.SMS:
            sms_langs[r["language"]] = sms_langs.get(r["language"], 0) + 1
    members = len({r["member_id"] for r in rows})
    return RecipientPreview(counts, {k: len(v) for k, v in sorted(langs.items())}, sms_langs, skipped, members)


def correction_recipients(store: Store, original_id: int) -> RecipientPreview:
    """Who a correction of ORIGINAL_ID reaches: the messages of it already on their way or received."""
    with store.connection() as c:
        rows = c.execute(select(Message.member_id, Message.channel, Message.language)
                         .where(Message.alert_id == original_id, Message.state.in_(RECEIVED_STATES))).all()
    counts = {k.value: 0 for k in ChannelKind}
    langs: dict[str, set] = {}
    sms_langs: dict[str, int] = {}
    for member_id, channel, lang in rows:
        counts[channel] = counts.get(channel, 0) + 1
        langs.setdefault(lang, set()).add(member_id)
        if channel == ChannelKind.SMS:
            sms_langs[lang] = sms_langs.get(lang, 0) + 1
    members = len({r.member_id for r in rows})
    return RecipientPreview(counts, {k: len(v) for k, v in sorted(langs.items())}, sms_langs, {}, members)


# ---------------------------------------------------------------------- inbox
def inbox(store: Store, network_ids: tuple[int, ...] | None, only_open: bool, page: int,
          include_unlinked: bool = False) -> MemberPage:
    """Inbound messages from members of NETWORK_IDS or from strangers about their alerts (None = all).

    INCLUDE_UNLINKED adds texts from unknown numbers about no alert: someone must read them.
    """
    with store.reading() as s:
        base = select(InboundMessage.id)
        if network_ids is not None:
            in_members = select(member_network.c.member_id).where(member_network.c.network_id.in_(network_ids))
            in_alerts = select(alert_network.c.alert_id).where(alert_network.c.network_id.in_(network_ids))
            # A member's text belongs to their networks; only a stranger's answer goes by its alert
            # (a recipient outside one's networks is never named, even on a shared alert).
            conds: list[ColumnElement[bool]] = [
                InboundMessage.member_id.in_(in_members),
                and_(InboundMessage.member_id.is_(None), InboundMessage.alert_id.in_(in_alerts))]
            if include_unlinked:
                conds.append(and_(InboundMessage.member_id.is_(None), InboundMessage.alert_id.is_(None)))
            base = base.where(or_(*conds))
        if only_open:
            base = base.where(InboundMessage.handled.is_(False))
        total = s.scalar(select(func.count()).select_from(base.subquery())) or 0
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(max(1, page), pages)
        rows = s.execute(select(InboundMessage, Member.name, Alert.drill)
                         .outerjoin(Member, Member.id == InboundMessage.member_id)
                         .outerjoin(Alert, Alert.id == InboundMessage.alert_id)
                         .where(InboundMessage.id.in_(base))
                         .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
                         .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return MemberPage([{"msg": m, "member_name": name or "", "alert_drill": bool(drill)} for m, name, drill in rows],
                      total, page, pages)


def member_progress(store: Store, alert_id: int) -> dict:
    """Members an alert addresses and how many it reached (one member may get an SMS and a call),
    with messages per channel: {"total", "reached", "channels": {channel: {"total", "reached"}}}."""
    reached_states = REACHED_STATES
    is_reached = case((Message.state.in_(reached_states), 1), else_=0)
    with store.connection() as c:
        total = c.scalar(select(func.count(func.distinct(Message.member_id))).where(Message.alert_id == alert_id))
        reached = c.scalar(select(func.count(func.distinct(Message.member_id))).where(
            Message.alert_id == alert_id, Message.state.in_(reached_states)))
        rows = c.execute(select(Message.channel, func.count(), func.sum(is_reached))
                         .where(Message.alert_id == alert_id).group_by(Message.channel)).all()
    return {"total": total or 0, "reached": reached or 0,
            "channels": {ch: {"total": n, "reached": int(r or 0)} for ch, n, r in rows}}


def open_inbox_count(store: Store, network_ids: tuple[int, ...] | None, include_unlinked: bool = False) -> int:
    """How many inbound messages in scope nobody has handled yet (the navigation's badge)."""
    return inbox(store, network_ids, True, 1, include_unlinked=include_unlinked).total


def inbound_in_scope(store: Store, inbound_id: int, network_ids: tuple[int, ...] | None,
                     include_unlinked: bool = False) -> InboundMessage:
    """The inbound message INBOUND_ID when the user's scope covers it; NotFound otherwise."""
    with store.reading() as s:
        msg = s.get(InboundMessage, inbound_id)
        if msg is None:
            raise NotFound("message", inbound_id)
        if network_ids is None or (include_unlinked and msg.member_id is None and msg.alert_id is None):
            return msg
        ok_member = msg.member_id is not None and s.scalar(select(member_network.c.member_id).where(
            member_network.c.member_id == msg.member_id, member_network.c.network_id.in_(network_ids)).limit(1))
        ok_alert = msg.member_id is None and msg.alert_id is not None and s.scalar(
            select(alert_network.c.alert_id).where(alert_network.c.alert_id == msg.alert_id,
                                                   alert_network.c.network_id.in_(network_ids)).limit(1))
        if not (ok_member or ok_alert):
            raise NotFound("message", inbound_id)
        return msg


# ---------------------------------------------------------------------- users
def users(store: Store) -> list[User]:
    with store.reading() as s:
        out = list(s.scalars(select(User).order_by(User.username)))
        for u in out:
            u.networks  # noqa: B018
        return out


# ---------------------------------------------------------------------- API tokens
def api_tokens(store: Store) -> list[ApiToken]:
    with store.reading() as s:
        return list(s.scalars(select(ApiToken).order_by(ApiToken.id.desc())))


# ---------------------------------------------------------------------- quotas, drills
def quota_check(cfg: Config, store: Store, sms_segments: int, category: str):
    """gatewayd.quota.check_alert for SMS_SEGMENTS more, or None when no SIM has a fair-use quota.

    A fresh tracker per call: the page process sends nothing, so counts come from the database.
    """
    from gatewayd.quota import QuotaCheck, QuotaTracker, check_alert, sms_devices
    tracker = QuotaTracker.from_config(store, cfg)
    if not tracker.limits:
        return None
    now = utcnow()
    check = check_alert(tracker, cfg, sms_segments, category, now)
    # check_alert counts only segments left; a SIM whose distinct-recipient quota is full still shows
    # segments left (or inf) although the dispatcher gives it nothing. Count such a SIM as 0.
    full = {n for n in tracker.limits if not tracker.allows(n, now)}
    if check.fits and full:
        remaining = sum(0.0 if n in full else tracker.remaining(n, now) for n, _ in sms_devices(cfg))
        fits = sms_segments <= remaining
        check = QuotaCheck(sms_segments, remaining, fits,
                           (not fits) and category == Category.URGENT and tracker.urgent_may_exceed)
    return check


def _segments(text: str, smart: bool, cache: dict) -> int:
    from gatewayd.sms import plan
    if text not in cache:
        cache[text] = plan(text, smart).segments
    return cache[text]


def pending_sms_segments(cfg: Config, store: Store, alert_id: int) -> int:
    """SMS segments of ALERT_ID's messages still waiting (queued or retry)."""
    with store.connection() as c:
        rows = c.execute(select(Message.text, func.count()).where(
            Message.alert_id == alert_id, Message.channel == ChannelKind.SMS.value,
            Message.state.in_(WAITING)).group_by(Message.text)).all()
    cache: dict = {}
    return sum(n * _segments(text, cfg.sms.smart_encoding, cache) for text, n in rows)


def device_quotas(cfg: Config, store: Store, devices: list[dict]) -> list[dict]:
    """DEVICES with "quota" counters: counted now for this gateway's modems (as `gatewayd status`
    does), else what the daemon that owns the device last wrote into its detail."""
    from gatewayd.nodes import local_node_id
    from gatewayd.quota import QuotaTracker
    me = local_node_id(cfg)
    tracker = QuotaTracker.from_config(store, cfg, node=me)
    now = utcnow()
    for d in devices:
        # Only this box's own modems are counted here: another node may name its modem alike.
        if d["name"] in tracker.limits and (me is None or d["node"] == me):
            d["quota"] = tracker.snapshot(d["name"], now)
        else:
            q = (d.get("detail") or {}).get("quota")
            d["quota"] = q if isinstance(q, dict) and q else None
    return devices


def drill_report(cfg: Config, store: Store, alert_id: int) -> dict:
    """What a drill would have sent: messages and segments per channel, members, how long it took
    and how long the configured devices would need (capacity.configured_seconds, as the CLI's report says)."""
    with store.connection() as c:
        rows = c.execute(select(Message.channel, Message.state, Message.text, Message.segments, func.count())
                         .where(Message.alert_id == alert_id)
                         .group_by(Message.channel, Message.state, Message.text, Message.segments)).all()
        members = c.scalar(select(func.count(func.distinct(Message.member_id)))
                           .where(Message.alert_id == alert_id)) or 0
    cache: dict = {}
    sms = calls = segments = would_reach = 0
    for channel, state, text, segs, n in rows:
        if channel == ChannelKind.SMS:
            sms += n
            segments += n * (segs if segs else _segments(text, cfg.sms.smart_encoding, cache))
        else:
            calls += n
        if state in OUT_STATES:
            would_reach += n
    report = store.alert_report(alert_id)
    return {"members": members, "sms": sms, "segments": segments, "calls": calls, "would_reach": would_reach,
            "total": sms + calls, "estimated_seconds": configured_seconds(cfg, segments, calls),
            "took_seconds": report.get("took_seconds")}
