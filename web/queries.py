"""Reads and small writes the police page needs that are not queue operations.

Kept out of gatewayd/store.py on purpose: these are shaped for pages (paging,
scoping to a user's networks, preview arithmetic), not for the daemon.
"""
from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import selectinload

from gatewayd.config import Config
from gatewayd.errors import InputError, NotFound
from gatewayd.model import (Alert, AlertTemplate, ApiToken, Category, InboundMessage, Member, Message, MessageState,
                            Network, User, alert_network, member_network, utcnow)
from gatewayd.phone import redact
from gatewayd.store import FOREIGN_NUMBER, LANGUAGES, Store

PAGE_SIZE = 50
MAX_DB_INT = 2**63 - 1      # SQLite and PostgreSQL BIGINT; a larger number is no id of ours


def to_int(value, default=None):
    """VALUE from a form or query string as an int usable in SQL, else DEFAULT (never raises)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if -MAX_DB_INT <= number <= MAX_DB_INT else default
PENDING_STATES = tuple(s.value for s in (MessageState.QUEUED, MessageState.RETRY, MessageState.SENDING))
WAITING_STATES = tuple(s.value for s in (MessageState.QUEUED, MessageState.RETRY))
# A message "reached" its member when it is on their phone: an SMS sent or delivered, a call
# heard (delivered, acknowledged) or a short message left on their answering machine. Reached
# is not heard: a voicemail still escalates (escalation goes by acknowledged). One tuple for the
# status page's messages figure and its members figure, so the two agree.
REACHED_STATES = tuple(s.value for s in (MessageState.SENT, MessageState.DELIVERED, MessageState.ACKNOWLEDGED,
                                         MessageState.VOICEMAIL))
# Average length of an answered alert call (ring + header + text + DTMF prompt);
# only used to estimate how long calls take, never to schedule them.
AVG_CALL_SECONDS = 45.0

DEFAULT_TEMPLATES = [
    ("suspicious_persons", "Verdachte personen / Personnes suspectes", "urgent", {
        "nl": "BIN-alarm: verdachte personen gezien in [straat]. Blijf binnen, sluit ramen en deuren. "
              "Bel 101 als u iets verdachts ziet.",
        "fr": "Alerte PLP : personnes suspectes signalées à [rue]. Restez à l'intérieur, fermez portes et "
              "fenêtres. Appelez le 101 si vous voyez quelque chose de suspect.",
        "de": "BIN-Alarm: verdächtige Personen in [Straße] gesehen. Bleiben Sie drinnen, schließen Sie Fenster "
              "und Türen. Rufen Sie 101 an, wenn Ihnen etwas verdächtig vorkommt.",
        "en": "BIN alert: suspicious persons seen in [street]. Stay inside, lock doors and windows. "
              "Call 101 if you see anything suspicious."}),
    ("burglary", "Inbraak / Cambriolage", "urgent", {
        "nl": "BIN-alarm: inbraak in [straat] rond [uur]. Daders mogelijk nog in de buurt. Niet zelf "
              "tussenkomen; bel 101 met signalement of nummerplaat.",
        "fr": "Alerte PLP : cambriolage à [rue] vers [heure]. Auteurs peut-être encore dans le quartier. "
              "N'intervenez pas ; appelez le 101 avec signalement ou plaque.",
        "de": "BIN-Alarm: Einbruch in [Straße] gegen [Uhr]. Täter eventuell noch in der Nähe. Nicht selbst "
              "eingreifen; rufen Sie 101 mit Beschreibung oder Kennzeichen an.",
        "en": "BIN alert: burglary in [street] around [time]. Suspects may still be nearby. Do not intervene; "
              "call 101 with a description or number plate."}),
    ("missing_person", "Vermiste persoon / Personne disparue", "urgent", {
        "nl": "BIN-oproep: vermiste persoon [naam], [leeftijd] jaar, [beschrijving]. Laatst gezien in [plaats]. "
              "Info? Bel 101.",
        "fr": "Appel PLP : personne disparue [nom], [âge] ans, [description]. Vue pour la dernière fois à "
              "[lieu]. Info ? Appelez le 101.",
        "de": "BIN-Aufruf: vermisste Person [Name], [Alter] Jahre, [Beschreibung]. Zuletzt gesehen in [Ort]. "
              "Hinweise an 101.",
        "en": "BIN appeal: missing person [name], aged [age], [description]. Last seen in [place]. "
              "Information? Call 101."}),
    ("stolen_vehicle", "Gestolen voertuig / Véhicule volé", "urgent", {
        "nl": "BIN-alarm: gestolen voertuig [merk, kleur], nummerplaat [plaat], richting [richting]. Gezien? "
              "Bel 101, niet volgen.",
        "fr": "Alerte PLP : véhicule volé [marque, couleur], plaque [plaque], direction [direction]. Vu ? "
              "Appelez le 101, ne suivez pas.",
        "de": "BIN-Alarm: gestohlenes Fahrzeug [Marke, Farbe], Kennzeichen [Kennzeichen], Richtung [Richtung]. "
              "Gesehen? 101 anrufen, nicht folgen.",
        "en": "BIN alert: stolen vehicle [make, colour], plate [plate], heading [direction]. Seen it? "
              "Call 101, do not follow."}),
    ("prevention_tip", "Preventietip / Conseil de prévention", "prevention", {
        "nl": "BIN-preventie: er zijn de laatste dagen meer inbraken in de buurt. Sluit ramen en deuren, "
              "ook bij kort vertrek.",
        "fr": "Prévention PLP : plus de cambriolages ces derniers jours dans le quartier. Fermez portes et "
              "fenêtres, même pour une courte absence.",
        "de": "BIN-Prävention: In den letzten Tagen gab es mehr Einbrüche in der Gegend. Schließen Sie Fenster "
              "und Türen, auch bei kurzer Abwesenheit.",
        "en": "BIN prevention: more burglaries in the area in recent days. Lock doors and windows, even when "
              "you leave briefly."}),
    ("all_clear", "Einde alarm / Fin d'alerte", "feedback", {
        "nl": "BIN-update: de situatie in [straat] is onder controle. Bedankt voor uw waakzaamheid.",
        "fr": "Mise à jour PLP : la situation à [rue] est sous contrôle. Merci pour votre vigilance.",
        "de": "BIN-Update: Die Lage in [Straße] ist unter Kontrolle. Danke für Ihre Aufmerksamkeit.",
        "en": "BIN update: the situation in [street] is under control. Thank you for your vigilance."}),
]


def seed_templates(store: Store) -> None:
    """Insert the common BIN templates when there are none (first start)."""
    with store.session.begin() as s:
        if s.scalar(select(func.count()).select_from(AlertTemplate)):
            return
        for pos, (key, title, category, texts) in enumerate(DEFAULT_TEMPLATES):
            s.add(AlertTemplate(key=key, title=title, category=category, texts=texts, position=pos,
                                updated_by="system"))


def templates(store: Store) -> list[AlertTemplate]:
    with store.session() as s:
        return list(s.scalars(select(AlertTemplate).order_by(AlertTemplate.position, AlertTemplate.id)))


def template_by_key(store: Store, key: str) -> AlertTemplate | None:
    with store.session() as s:
        return s.scalar(select(AlertTemplate).where(AlertTemplate.key == key))


def update_template(store: Store, template_id: int, title: str, category: str, texts: dict[str, str],
                    actor: str) -> AlertTemplate:
    """Change a template's title, category and texts; raises InputError naming the field."""
    title = (title or "").strip()
    if not title or len(title) > 120:
        raise InputError("title", "expected 1 to 120 characters")
    if category not in ("urgent", "prevention", "feedback"):
        raise InputError("category", f"{category!r} is not one of urgent, prevention, feedback")
    clean = {}
    for lang in LANGUAGES:
        text = (texts.get(lang) or "").strip()
        if len(text) > 1000:
            raise InputError(f"text_{lang}", "longer than 1000 characters")
        if text:
            clean[lang] = text
    if not clean:
        raise InputError("text_nl", "a template needs a text in at least one language")
    with store.session.begin() as s:
        tpl = s.get(AlertTemplate, template_id)
        if tpl is None:
            raise NotFound("template", template_id)
        tpl.title, tpl.category, tpl.texts = title, category, clean
        tpl.updated_by, tpl.updated_at = actor, utcnow()
    return tpl


# ---------------------------------------------------------------------- networks
def networks(store: Store, ids: tuple[int, ...] | None = None) -> list[Network]:
    """Networks by name; only IDS when given."""
    with store.session() as s:
        q = select(Network).order_by(Network.name)
        if ids is not None:
            q = q.where(Network.id.in_(ids))
        return list(s.scalars(q))


def network_member_counts(store: Store, ids: tuple[int, ...]) -> dict[int, dict[str, int]]:
    """network id -> {"total", "active", "opted_out"} member counts."""
    with store.engine.connect() as c:
        rows = c.execute(select(member_network.c.network_id, func.count(), func.sum(case((Member.active.is_(True), 1), else_=0)),
                                func.sum(case((Member.opted_out.is_(True), 1), else_=0)))
                         .join(Member, Member.id == member_network.c.member_id)
                         .where(member_network.c.network_id.in_(ids)).group_by(member_network.c.network_id)).all()
    return {nid: {"total": n, "active": a or 0, "opted_out": o or 0} for nid, n, a, o in rows}


def save_network(store: Store, network_id: int | None, name: str, zone: str) -> Network:
    """Create (NETWORK_ID None) or rename / re-zone a network."""
    name, zone = (name or "").strip(), (zone or "").strip()
    if not name or len(name) > 120:
        raise InputError("name", "expected 1 to 120 characters")
    if len(zone) > 120:
        raise InputError("zone", "longer than 120 characters")
    if network_id is None:
        return store.add_network(name, zone)
    with store.session.begin() as s:
        net = s.get(Network, network_id)
        if net is None:
            raise NotFound("network", network_id)
        if s.scalar(select(Network.id).where(Network.name == name, Network.id != network_id)):
            raise InputError("name", f"a network called {name!r} already exists")
        net.name, net.zone = name, zone
    return net


# ---------------------------------------------------------------------- members
@dataclass
class MemberPage:
    members: list[dict]
    total: int
    page: int
    pages: int
    hidden: int = 0          # rows left out because they are outside the reader's networks


def member_page(store: Store, network_ids: tuple[int, ...] | None, network_id: int | None, q: str,
                page: int, show_inactive: bool = True) -> MemberPage:
    """One page of members in NETWORK_IDS (None = all), optionally one network and a search."""
    # Sorted by name across pages (not only within one): the sort key is selected so DISTINCT allows it.
    sort_key = func.lower(Member.name).label("sort_key")
    with store.session() as s:
        base = select(Member.id, sort_key)
        if network_id is not None or network_ids is not None:
            base = base.join(member_network, member_network.c.member_id == Member.id)
            if network_id is not None:
                base = base.where(member_network.c.network_id == network_id)
            if network_ids is not None:
                base = base.where(member_network.c.network_id.in_(network_ids))
        if q:
            q = q.strip()
            digits = "".join(ch for ch in q if ch.isdigit())
            match = Member.name.ilike(f"%{q}%")
            if digits:       # numbers are stored as +32..., so look for the digits only
                match = or_(match, Member.phone.like(f"%{digits.lstrip('0')}%"))
            base = base.where(match)
        if not show_inactive:
            base = base.where(Member.active.is_(True))
        base = base.distinct()
        total = s.scalar(select(func.count()).select_from(base.subquery())) or 0
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(max(1, page), pages)
        ids = list(s.scalars(base.order_by(sort_key, Member.id).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
        members = list(s.scalars(select(Member).options(selectinload(Member.networks))
                                 .where(Member.id.in_(ids)).order_by(func.lower(Member.name), Member.id)))
        rows = [{"m": m, "networks": [n for n in m.networks if network_ids is None or n.id in network_ids]}
                for m in members]
    return MemberPage(rows, total, page, pages)


def member(store: Store, member_id: int) -> Member:
    with store.session() as s:
        m = s.get(Member, member_id)
        if m is None:
            raise NotFound("member", member_id)
        m.networks  # load while the session is open  # noqa: B018
        return m


STOP_IS_FINAL = ("the member replied STOP: only they can opt in again, by texting START; "
                 "no page can re-subscribe them")
SHARED_MEMBER = ("this member is also in networks outside yours: only an admin can change "
                 "their number, opt-out or active state")


def _outside(m: Member, allowed: tuple[int, ...] | None) -> bool:
    """Is M also in a network outside ALLOWED (None = everything is allowed)?"""
    return allowed is not None and any(n.id not in allowed for n in m.networks)


def save_member(store: Store, member_id: int | None, phone: str, name: str, channel: str, lang: str,
                network_ids: list[int], allowed: tuple[int, ...] | None, opted_out: bool | None = None) -> Member:
    """Create or edit a member; its networks outside ALLOWED (None = all) are left as they were.

    A non-admin never reaches, through a number, a member outside their networks (nor learns
    who it is); a member shared with networks outside ALLOWED keeps their number, opt-out and
    active state unless an admin changes them; nobody here undoes a STOP.
    """
    e164, name, channel, lang = store.validate_member(phone, name, channel or None, lang)
    chosen = [i for i in network_ids if allowed is None or i in allowed]
    if not chosen and member_id is None:
        raise InputError("networks", "choose at least one network")
    with store.session.begin() as s:
        other = s.scalar(select(Member).where(Member.phone == e164))
        if other is not None and other.id != member_id:
            if allowed is None:
                raise InputError("phone", f"{e164} is already a member (#{other.id})")
            if any(n.id in allowed for n in other.networks):
                raise InputError("phone", f"{e164} is already a member of your networks; edit that member")
            raise InputError("phone", FOREIGN_NUMBER)
        if member_id is None:
            m = Member(phone=e164, consent_at=utcnow())
            s.add(m)
        else:
            m = s.get(Member, member_id)
            if m is None:
                raise NotFound("member", member_id)
            if m.phone != e164 and _outside(m, allowed):
                raise InputError("phone", SHARED_MEMBER)
        if opted_out is not None and opted_out != m.opted_out:
            if not opted_out:
                raise InputError("opted_out", STOP_IS_FINAL)
            if _outside(m, allowed):
                raise InputError("opted_out", SHARED_MEMBER)
            m.opted_out, m.opted_out_at = True, utcnow()
        m.phone, m.name, m.channel, m.language = e164, name, channel, lang
        kept = [n for n in m.networks if allowed is not None and n.id not in allowed]
        m.networks = kept + list(s.scalars(select(Network).where(Network.id.in_(chosen))))
        if not m.networks:
            raise InputError("networks", "choose at least one network")
    return m


def set_member_active(store: Store, member_id: int, active: bool,
                      allowed: tuple[int, ...] | None = None) -> Member:
    """(De)activate a member; InputError when they are shared with networks outside ALLOWED."""
    with store.session.begin() as s:
        m = s.get(Member, member_id)
        if m is None:
            raise NotFound("member", member_id)
        if m.active != active and _outside(m, allowed):
            raise InputError("active", SHARED_MEMBER)
        m.active = active
    return m


def member_in_scope(store: Store, member_id: int, allowed: tuple[int, ...] | None) -> bool:
    if allowed is None:
        return True
    with store.engine.connect() as c:
        return c.scalar(select(member_network.c.member_id).where(
            member_network.c.member_id == member_id, member_network.c.network_id.in_(allowed)).limit(1)) is not None


def members_outside_scope(store: Store, numbers: list[str], allowed: tuple[int, ...] | None) -> set[str]:
    """Those NUMBERS that belong to a member none of whose networks is in ALLOWED (None = all are)."""
    if allowed is None or not numbers:
        return set()
    with store.engine.connect() as c:
        known = set(c.scalars(select(Member.phone).where(Member.phone.in_(numbers))))
        seen = set(c.scalars(select(Member.phone).join(member_network, member_network.c.member_id == Member.id)
                             .where(Member.phone.in_(numbers), member_network.c.network_id.in_(allowed))))
    return known - seen


# ---------------------------------------------------------------------- alerts
def alert_networks(store: Store, alert_id: int) -> list[int]:
    with store.engine.connect() as c:
        return list(c.scalars(select(alert_network.c.network_id).where(alert_network.c.alert_id == alert_id)))


def alert(store: Store, alert_id: int) -> Alert:
    with store.session() as s:
        a = s.get(Alert, alert_id)
        if a is None:
            raise NotFound("alert", alert_id)
        a.networks  # noqa: B018
        return a


def recent_alerts(store: Store, network_ids: tuple[int, ...] | None, limit: int = 20) -> list[dict]:
    """The newest alerts to NETWORK_IDS (None = all) with their message counts per state."""
    with store.session() as s:
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
            counts.setdefault(aid, {})[state] = n
    return [{"alert": a, "counts": counts.get(a.id, {})} for a in alerts]


def recipients_page(store: Store, alert_id: int, page: int, mask: bool, state: str = "",
                    scope: tuple[int, ...] | None = None) -> MemberPage:
    """One page of an alert's messages: number (masked when MASK), channel, state, reason.

    Only recipients who are members of SCOPE's networks (None = all); `hidden` counts the others,
    who are never named to this user.
    """
    with store.session() as s:
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
        if r["channel"] == "sms":
            sms_langs[r["language"]] = sms_langs.get(r["language"], 0) + 1
    members = len({r["member_id"] for r in rows})
    return RecipientPreview(counts, {k: len(v) for k, v in sorted(langs.items())}, sms_langs, skipped, members)


def correction_recipients(store: Store, original_id: int) -> RecipientPreview:
    """Who a correction of ORIGINAL_ID reaches: the messages of it already on their way or received."""
    from gatewayd.store import RECEIVED_STATES
    with store.engine.connect() as c:
        rows = c.execute(select(Message.member_id, Message.channel, Message.language)
                         .where(Message.alert_id == original_id, Message.state.in_(RECEIVED_STATES))).all()
    counts = {"sms": 0, "voice": 0}
    langs: dict[str, set] = {}
    sms_langs: dict[str, int] = {}
    for member_id, channel, lang in rows:
        counts[channel] = counts.get(channel, 0) + 1
        langs.setdefault(lang, set()).add(member_id)
        if channel == "sms":
            sms_langs[lang] = sms_langs.get(lang, 0) + 1
    members = len({r.member_id for r in rows})
    return RecipientPreview(counts, {k: len(v) for k, v in sorted(langs.items())}, sms_langs, {}, members)


@dataclass
class Capacity:
    sms_per_minute: float = 0.0
    calls_per_minute: float = 0.0
    devices: list[str] = field(default_factory=list)


def capacity(cfg: Config, store: Store) -> Capacity:
    """Messages per minute the configured devices can send, leaving out devices the daemon reports down."""
    down = {d["name"] for d in store.devices() if d.get("state") == "down"}
    cap = Capacity()
    for m in cfg.sims:
        if m.name not in down:
            cap.sms_per_minute += m.sms_per_minute
            cap.devices.append(m.name)
    for e in cfg.emulated:
        if e.name in down:
            continue
        per_send = e.latency          # an emulated call lasts its latency
        rate = e.rate_per_minute if per_send <= 0 else min(e.rate_per_minute, e.capacity * 60.0 / per_send)
        if e.kind == "sms":
            cap.sms_per_minute += rate
        else:
            cap.calls_per_minute += rate
        cap.devices.append(e.name)
    a = cfg.asterisk
    if a is not None and "asterisk" not in down:
        cap.calls_per_minute += min(a.calls_per_minute, a.max_calls * 60.0 / AVG_CALL_SECONDS)
        cap.devices.append("asterisk")
    return cap


def estimate_seconds(sms_parts: int, calls: int, cap: Capacity, queued_ahead: dict[str, int]) -> float | None:
    """Seconds until the last recipient is reached, or None when a needed channel has no device.

    SMS and calls go out in parallel; messages of equal or higher priority already
    queued go first.
    """
    times = []
    for need, ahead, rate in ((sms_parts, queued_ahead.get("sms", 0), cap.sms_per_minute),
                              (calls, queued_ahead.get("voice", 0), cap.calls_per_minute)):
        if need <= 0:
            continue
        if rate <= 0:
            return None
        times.append((need + ahead) / rate * 60.0)
    return max(times, default=0.0)


def queued_ahead(store: Store, category: str) -> dict[str, int]:
    """Messages waiting with a priority at or above CATEGORY's, per channel."""
    prio = Category(category).priority
    names = {"urgent": 3, "feedback": 2, "prevention": 1}
    out: dict[str, int] = {}
    for cat, per_channel in store.queue_depth()["by_category"].items():
        if names.get(cat, 0) >= prio:
            for ch, n in per_channel.items():
                out[ch] = out.get(ch, 0) + n
    return out


# ---------------------------------------------------------------------- inbox
def inbox(store: Store, network_ids: tuple[int, ...] | None, only_open: bool, page: int,
          include_unlinked: bool = False) -> MemberPage:
    """Inbound messages from members of NETWORK_IDS or from strangers about their alerts (None = all).

    INCLUDE_UNLINKED adds texts from unknown numbers about no alert: someone must read them.
    """
    with store.session() as s:
        base = select(InboundMessage.id)
        if network_ids is not None:
            in_members = select(member_network.c.member_id).where(member_network.c.network_id.in_(network_ids))
            in_alerts = select(alert_network.c.alert_id).where(alert_network.c.network_id.in_(network_ids))
            # A member's text belongs to their networks; only a stranger's answer goes by its alert
            # (a recipient outside one's networks is never named, even on a shared alert).
            conds = [InboundMessage.member_id.in_(in_members),
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
    with store.engine.connect() as c:
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
    with store.session() as s:
        msg = s.get(InboundMessage, inbound_id)
        if msg is None:
            raise NotFound("message", inbound_id)
        if network_ids is None or (include_unlinked and msg.member_id is None and msg.alert_id is None):
            return msg
        ok_member = msg.member_id is not None and s.scalar(select(member_network.c.member_id).where(
            member_network.c.member_id == msg.member_id, member_network.c.network_id.in_(network_ids)).limit(1))
        ok_alert = msg.member_id is None and msg.alert_id is not None and s.scalar(select(alert_network.c.alert_id).where(
            alert_network.c.alert_id == msg.alert_id, alert_network.c.network_id.in_(network_ids)).limit(1))
        if not (ok_member or ok_alert):
            raise NotFound("message", inbound_id)
        return msg


def mark_handled(store: Store, inbound_id: int, actor: str, handled: bool = True) -> None:
    with store.session.begin() as s:
        msg = s.get(InboundMessage, inbound_id)
        if msg is None:
            raise NotFound("message", inbound_id)
        msg.handled, msg.handled_by = handled, actor if handled else ""


# ---------------------------------------------------------------------- users
def users(store: Store) -> list[User]:
    with store.session() as s:
        out = list(s.scalars(select(User).order_by(User.username)))
        for u in out:
            u.networks  # noqa: B018
        return out


def update_user(store: Store, user_id: int, role: str, zone: str, network_ids: list[int], active: bool,
                password: str = "") -> User:
    """Change a user's role, zone, networks, active flag and (when given) password."""
    from gatewayd.model import Role
    from gatewayd.passwords import MIN_LENGTH, hash_password
    try:
        role = Role(role).value
    except ValueError:
        raise InputError("role", f"{role!r} is not one of police, coordinator, admin") from None
    if len(zone or "") > 120:
        raise InputError("zone", "longer than 120 characters")
    if password and len(password) < MIN_LENGTH:
        raise InputError("password", f"shorter than {MIN_LENGTH} characters")
    with store.session.begin() as s:
        u = s.get(User, user_id)
        if u is None:
            raise NotFound("user", user_id)
        # A new password, another role or a deactivation ends the sessions opened before it.
        if password or role != u.role or (u.active and not active):
            u.session_version = (u.session_version or 0) + 1
        u.role, u.zone, u.active = role, (zone or "").strip(), active
        u.networks = list(s.scalars(select(Network).where(Network.id.in_(network_ids))))
        if password:
            u.password_hash = hash_password(password)
    return u


# ---------------------------------------------------------------------- API tokens
def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: Store, name: str, zone: str, actor: str) -> tuple[ApiToken, str]:
    """A new API token; the clear token is returned once and never stored."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise InputError("name", "expected 1 to 80 characters")
    token = "gwd_" + secrets.token_urlsafe(32)
    with store.session.begin() as s:
        row = ApiToken(name=name, token_hash=token_hash(token), prefix=token[:10], zone=(zone or "").strip(),
                       created_by=actor)
        s.add(row)
    return row, token


def api_tokens(store: Store) -> list[ApiToken]:
    with store.session() as s:
        return list(s.scalars(select(ApiToken).order_by(ApiToken.id.desc())))


def revoke_token(store: Store, token_id: int) -> ApiToken:
    with store.session.begin() as s:
        row = s.get(ApiToken, token_id)
        if row is None:
            raise NotFound("token", token_id)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
    return row


def token_by_secret(store: Store, token: str) -> ApiToken | None:
    """The live token matching TOKEN, its last use stamped; None when unknown or revoked."""
    digest = token_hash(token)
    with store.session.begin() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        if row is None or row.revoked_at is not None:
            return None
        row.last_used_at = utcnow()
    return row


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
                           (not fits) and category == "urgent" and tracker.urgent_may_exceed)
    return check


def _segments(text: str, smart: bool, cache: dict) -> int:
    from gatewayd.sms import plan
    if text not in cache:
        cache[text] = plan(text, smart).segments
    return cache[text]


def pending_sms_segments(cfg: Config, store: Store, alert_id: int) -> int:
    """SMS segments of ALERT_ID's messages still waiting (queued or retry)."""
    with store.engine.connect() as c:
        rows = c.execute(select(Message.text, func.count()).where(
            Message.alert_id == alert_id, Message.channel == "sms",
            Message.state.in_(WAITING_STATES)).group_by(Message.text)).all()
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


RECEIVED = tuple(s.value for s in (MessageState.SENT, MessageState.DELIVERED, MessageState.ACKNOWLEDGED))


def drill_report(cfg: Config, store: Store, alert_id: int) -> dict:
    """What a drill would have sent: messages and segments per channel, members, how long it took
    and how long the configured devices would need (gatewayd.quota.estimate_seconds)."""
    from gatewayd.quota import estimate_seconds
    with store.engine.connect() as c:
        rows = c.execute(select(Message.channel, Message.state, Message.text, Message.segments, func.count())
                         .where(Message.alert_id == alert_id)
                         .group_by(Message.channel, Message.state, Message.text, Message.segments)).all()
        members = c.scalar(select(func.count(func.distinct(Message.member_id)))
                           .where(Message.alert_id == alert_id)) or 0
    cache: dict = {}
    sms = calls = segments = would_reach = 0
    for channel, state, text, segs, n in rows:
        if channel == "sms":
            sms += n
            segments += n * (segs if segs else _segments(text, cfg.sms.smart_encoding, cache))
        else:
            calls += n
        if state in RECEIVED:
            would_reach += n
    report = store.alert_report(alert_id)
    return {"members": members, "sms": sms, "segments": segments, "calls": calls, "would_reach": would_reach,
            "total": sms + calls, "estimated_seconds": estimate_seconds(cfg, segments, calls),
            "took_seconds": report.get("took_seconds")}
