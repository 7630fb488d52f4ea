"""Start page, compose -> preview -> confirm -> send, live status, cancel, feedback.

The send path is deliberately two POSTs: /alerts/confirm validates and restates
what will happen (nothing is written), /alerts/send enqueues it in one store
transaction. A one-time token on the confirm page makes a double click send once.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from gatewayd.errors import InputError, NotFound
from gatewayd.model import AlertChannel, AlertState, AuditAction, Category, MessageState
from gatewayd.outcomes import ChannelKind
from gatewayd.phone import redact
from gatewayd.placeholders import fields_of, fill, slots
from gatewayd.store import (
    ALERT_CHANNELS,
    CATEGORIES,
    LANGUAGES,
    MAX_TEXT,
    PENDING,
    REACHED_STATES,
    WAITING,
    AlertRequest,
)

from . import get_cfg, get_store, queries
from .auth import audit
from .form_words import form_reason
from .labels import LANGUAGE_NAMES
from .queries import to_int as _int

bp = Blueprint("alerts", __name__)

# CATEGORIES (gatewayd.store) come in the order the compose form offers them.
CHANNEL_MODES = ALERT_CHANNELS
CANCELLABLE_STATES = WAITING   # what Store.cancel_alert stops
MAX_FIELDS = 12        # slots per template the form reads (field_0 .. field_11)
# The store's field names -> the form's, so an error lands next to the right input.
_FIELD_MAP = {"text": "text_nl", "network": "networks", "text[nl]": "text_nl", "text[fr]": "text_fr",
              "text[de]": "text_de", "text[en]": "text_en"}


@dataclass
class Compose:
    """A compose form as submitted: values to redisplay, errors per field, the request when valid."""

    network_ids: list[int] = field(default_factory=list)
    category: str = ""
    template: str = ""
    channel: str = AlertChannel.MEMBER.value
    texts: dict[str, str] = field(default_factory=dict)
    parent_id: int | None = None
    correct_id: int | None = None           # a correction supersedes this alert
    drill: bool = False                     # a rehearsal: everything runs, nothing leaves the box
    errors: dict[str, str] = field(default_factory=dict)
    request: AlertRequest | None = None
    network_names: list[str] = field(default_factory=list)
    fields: dict[int, str] = field(default_factory=dict)     # the template's slots as filled in, by index
    langs: list[str] | None = None          # the languages chosen to send in (None: every text written)


class _SentTokens:
    """Confirm tokens already used -> alert id, so a repeated 'send' never sends twice."""

    def __init__(self, size: int = 1000):
        self._done: OrderedDict[str, int] = OrderedDict()
        self._size = size
        self.lock = threading.Lock()

    def get(self, token: str) -> int | None:
        return self._done.get(token)

    def put(self, token: str, alert_id: int) -> None:
        self._done[token] = alert_id
        while len(self._done) > self._size:
            self._done.popitem(last=False)


def _sent_tokens() -> _SentTokens:
    return current_app.extensions.setdefault("gatewayd.sent_tokens", _SentTokens())


def content_digest(c: Compose) -> str:
    """What a confirm token vouches for: everything that decides who gets which text."""
    import hashlib
    import json
    content = {"networks": sorted(c.network_ids), "category": c.category, "channel": c.channel,
               "texts": {k: v for k, v in sorted(c.texts.items()) if v}, "parent": c.parent_id,
               "correct": c.correct_id, "drill": c.drill}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class _ConfirmTokens:
    """Tokens the confirm page handed out: token -> (user id, content digest, issued at).

    Kept in the page's process (waitress runs one), so a token is something this server
    gave this user for this exact alert, not any string; it lives CONFIRM_FOR seconds.
    """

    CONFIRM_FOR = 30 * 60

    def __init__(self, size: int = 5000):
        self._issued: OrderedDict[str, tuple[int, str, float]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def issue(self, user_id: int, c: Compose) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = (user_id, content_digest(c), time.monotonic())
            while len(self._issued) > self._size:
                self._issued.popitem(last=False)
        return token

    def matches(self, token: str, user_id: int, c: Compose) -> bool:
        with self._lock:
            entry = self._issued.get(token)
        if entry is None:
            return False
        owner, digest, at = entry
        return (owner == user_id and secrets.compare_digest(digest, content_digest(c))
                and time.monotonic() - at <= self.CONFIRM_FOR)


def _confirm_tokens() -> _ConfirmTokens:
    return current_app.extensions.setdefault("gatewayd.confirm_tokens", _ConfirmTokens())




def parse_compose(form) -> Compose:
    """Read and check a compose form for the current user; never raises for bad input."""
    user = g.user
    c = Compose(network_ids=[i for i in (_int(v) for v in form.getlist("networks")) if i is not None],
                category=(form.get("category") or "").strip(), template=(form.get("template") or "").strip(),
                channel=(form.get("channel") or AlertChannel.MEMBER.value).strip(),
                texts={lang: (form.get(f"text_{lang}") or "").replace("\r\n", "\n").strip() for lang in LANGUAGES},
                parent_id=_int(form.get("parent_id")), correct_id=_int(form.get("correct_id")),
                drill=form.get("drill") in ("1", "on", "true") or get_cfg().dispatch.drill)
    _apply_template_fields(c, form)
    if c.correct_id is not None:
        _prepare_correction(c)
    if c.category not in CATEGORIES:
        c.errors["category"] = _("Choose a category.")
    elif c.category not in user.send_categories:
        c.errors["category"] = _("Your role may not send this category.")
    if c.channel not in CHANNEL_MODES:
        c.errors["channel"] = _("Choose how to reach the members.")
    if c.parent_id is not None:
        try:
            parent = queries.alert(get_store(), c.parent_id)
        except NotFound:
            parent = None
        if parent is None or not can_view(parent):
            c.errors["parent_id"] = _("The alert this follows up does not exist.")
        elif not covers(parent):
            c.errors["parent_id"] = _("Alert %(id)s also went to networks outside yours: only someone whose "
                                      "networks cover all of its recipients can follow it up.", id=parent.id)
        elif parent.drill:
            c.drill = True      # feedback on a drill is part of the drill: it must not reach anyone
        elif c.category and c.category != Category.FEEDBACK:
            c.errors["category"] = _("A follow-up to an alert is always feedback.")
    outside = [i for i in c.network_ids if i not in user.network_ids]
    if outside:
        c.errors["networks"] = _("You may not send to one of the chosen networks.")
    elif not c.network_ids and c.parent_id is None and c.correct_id is None:
        c.errors["networks"] = _("Choose at least one network.")
    nets = {n.id: n.name for n in queries.networks(get_store(), tuple(c.network_ids))}
    c.network_names = [nets[i] for i in c.network_ids if i in nets]
    if len(c.network_names) != len(c.network_ids) and "networks" not in c.errors:
        c.errors["networks"] = _("One of the chosen networks does not exist.")
    filled = {k: v for k, v in c.texts.items() if v}
    if not filled:
        c.errors["text_nl"] = _("Write the text in at least one language.")
    c.errors.update(_unfilled_slots(c, filled))
    if c.errors:
        return c
    default = filled.get("nl") or next(iter(filled.values()))
    # A correction names no network (it goes to who had the original); "-" satisfies the validation.
    networks = tuple(c.network_names) or (("-",) if c.correct_id is not None else ())
    req = AlertRequest(networks=networks, category=c.category, text=default, texts=filled,
                       channel=c.channel, author=user.username, parent_id=c.parent_id, drill=c.drill)
    try:
        get_store().validate_alert(req)     # the same checks enqueue_alert applies
    except InputError as exc:
        c.errors[_FIELD_MAP.get(exc.field, exc.field)] = form_reason(exc)
        return c
    if c.channel != AlertChannel.VOICE:
        sms_texts = (_with_heading(filled, get_store().sender_of_networks(c.network_ids))
                     if get_cfg().dispatch.sender_first else filled)
        c.errors.update(_too_long(sms_texts))
        if c.errors:
            return c
    c.request = req
    return c


def _apply_template_fields(c: Compose, form) -> None:
    """Write the template's fields (street, time, ...) into every language's text; drop languages not chosen."""
    c.fields = {i: v.strip() for i in range(MAX_FIELDS) if (v := form.get(f"field_{i}")) is not None}
    tpl = queries.template_by_key(get_store(), c.template) if c.template else None
    if tpl is not None and c.fields:
        c.texts = _unfill(c.texts, tpl.texts, form)
        c.texts = fill(c.texts, tpl.texts, c.fields)
    if form.get("langs_chosen"):
        # The form offers one "send in this language" box per text: a language left unticked is not sent,
        # so a template's text in a language nobody looked at never goes out by default.
        c.langs = [lang for lang in LANGUAGES if lang in form.getlist("langs")]
        c.texts = {lang: (text if lang in c.langs else "") for lang, text in c.texts.items()}


def _unfill(texts: dict[str, str], template: dict[str, str], form) -> dict[str, str]:
    """TEXTS back to the template's text where they are exactly what the values filled in last time
    (the form returned after an error, or "Change" on the confirm page) carried: so a field corrected
    then (street, time) reaches the text instead of being ignored because its slot is already gone."""
    applied = {i: v for i in range(MAX_FIELDS) if (v := (form.get(f"applied_{i}") or "").strip())}
    if not applied:
        return texts
    before = fill({lang: template.get(lang, "") for lang in texts}, template, applied)
    return {lang: (template[lang] if text and text == before[lang] and lang in template else text)
            for lang, text in texts.items()}


def template_as_it_was(c: Compose) -> tuple[list[str], list[str]]:
    """(edited, untouched): the languages whose text the dispatcher changed beyond the template's fields, and
    the languages still sending the template's text as it was (fields filled in). Both at once means the
    untouched ones lack what was added ("two men in black jackets"): the confirm page says so."""
    tpl = queries.template_by_key(get_store(), c.template) if c.template else None
    if tpl is None:
        return [], []
    filled = fill({lang: tpl.texts.get(lang, "") for lang in c.texts}, tpl.texts, c.fields)

    def same(lang: str, text: str) -> bool:      # a textarea sends CR LF whatever the template was stored with
        return " ".join(text.split()) == " ".join(filled[lang].split())
    written = {lang: text for lang, text in c.texts.items() if text}
    edited = [lang for lang, text in written.items() if not same(lang, text)]
    untouched = [lang for lang, text in written.items() if lang in tpl.texts and same(lang, text)]
    return (edited, untouched) if edited and untouched else ([], [])


def _unfilled_slots(c: Compose, texts: dict[str, str]) -> dict[str, str]:
    """One error per template slot still in a text, on its field when the template has one, else on the text."""
    tpl = queries.template_by_key(get_store(), c.template) if c.template else None
    fields = fields_of(tpl.texts) if tpl is not None else []
    errors: dict[str, str] = {}
    for lang, text in texts.items():
        for name in slots(text):
            f = next((f for f in fields if f.names.get(lang) == name), None)
            if f is not None:
                errors.setdefault(f"field_{f.index}", _("Fill in “%(name)s”: the texts still hold [%(slot)s].",
                                                         name=f.label(_ui_lang()), slot=name))
            else:
                errors.setdefault(f"text_{lang}", _("The text still holds the placeholder [%(slot)s]: "
                                                    "replace it or remove the brackets.", slot=name))
    return errors


def _ui_lang() -> str:
    from flask_babel import get_locale
    return str(get_locale() or "nl")


def _prepare_correction(c: Compose) -> None:
    """A correction keeps the original's category and channel and addresses no network itself."""
    try:
        original = queries.alert(get_store(), c.correct_id) if c.correct_id is not None else None
    except NotFound:
        original = None
    if original is None or not can_view(original):
        c.errors["correct_id"] = _("The alert to correct does not exist.")
        c.correct_id = None
        return
    if not covers(original):
        c.errors["correct_id"] = _("Alert %(id)s also went to networks outside yours: only someone whose "
                                   "networks cover all of its recipients can correct it.", id=original.id)
    elif original.superseded_by is not None:
        c.errors["correct_id"] = _("Alert %(id)s was already corrected by alert %(by)s; correct that one.",
                                   id=original.id, by=original.superseded_by)
    c.category, c.channel, c.network_ids, c.parent_id = original.category, original.channel_mode, [], None
    # A correction is a drill exactly when the original was (the store decides so).
    if get_cfg().dispatch.drill and not original.drill:
        # In drill mode nothing may leave the box, but the store would send a correction of a
        # real alert for real: refuse rather than surprise.
        c.errors["correct_id"] = _("Drill mode is on: a correction of alert %(id)s (a real alert) would go out "
                                   "for real. Switch drill mode off to correct it.", id=original.id)
    c.drill = bool(original.drill)


def _with_heading(texts: dict[str, str], sender: str) -> dict[str, str]:
    """The SMS texts as they will go out with [dispatch] sender_first: who and when in front."""
    from gatewayd.heading import with_heading
    from gatewayd.model import utcnow
    cfg = get_cfg()
    return {lang: with_heading(text, sender, utcnow(), lang, cfg.dispatch.timezone, spoken=False)
            for lang, text in texts.items()}


def _too_long(texts: dict[str, str]) -> dict[str, str]:
    """Texts the modem would refuse (more segments than [sms].max_segments): better now than as failures."""
    from gatewayd.sms import plan
    cfg = get_cfg()
    errors = {}
    for lang, text in texts.items():
        segments = plan(text, cfg.sms.smart_encoding).segments
        if segments > cfg.sms.max_segments:
            errors[f"text_{lang}"] = _("Needs %(n)s SMS segments; at most %(max)s are sent. Shorten the text.",
                                       n=segments, max=cfg.sms.max_segments)
    return errors


def can_view(alert) -> bool:
    """Admins see every alert; others alerts to their networks and their own."""
    user = g.user
    if user.is_admin or alert.author == user.username:
        return True
    return any(n.id in user.network_ids for n in alert.networks)


def can_approve(alert) -> bool:
    """Four-eyes: another person who may send this category to all its networks releases a waiting alert
    (approving sends it to every recipient, so like a follow-up it needs them all in scope)."""
    return (alert.state == AlertState.PENDING_APPROVAL.value and alert.author != g.user.username
            and alert.category in g.user.send_categories and can_view(alert) and covers(alert))


def covers(alert) -> bool:
    """Are all of ALERT's networks in the user's scope? A follow-up, correction or cancel reaches
    every recipient of the alert, so it needs them all (admins have every network)."""
    return g.user.is_admin or all(n.id in g.user.network_ids for n in alert.networks)


def can_cancel(alert) -> bool:
    return can_view(alert) and covers(alert) and (g.user.is_admin or alert.category in g.user.send_categories)


def _load_alert(alert_id: int):
    try:
        a = queries.alert(get_store(), alert_id)
    except NotFound:
        abort(404)
    if not can_view(a):
        abort(404)     # not 403: do not confirm that an alert exists outside one's scope
    return a


def build_preview(c: Compose) -> dict:
    """Recipients per channel, SMS encoding/segments per language, estimated time."""
    from gatewayd.sms import plan  # the very function the modem channel encodes with
    cfg, store = get_cfg(), get_store()
    if c.correct_id is not None:
        rp = queries.correction_recipients(store, c.correct_id)
    else:
        mode = c.channel if c.channel in CHANNEL_MODES else AlertChannel.MEMBER.value
        rp = queries.preview_recipients(store, c.network_ids, mode, c.parent_id)
    filled = {k: v for k, v in c.texts.items() if v}
    if cfg.dispatch.sender_first:
        filled = _with_heading(filled, store.sender_of_networks(c.network_ids))
    default = filled.get("nl") or next(iter(filled.values()), "")
    plans, sms_parts = [], 0
    for lang in LANGUAGES:
        text = filled.get(lang)
        if not text:
            continue
        p = plan(text, cfg.sms.smart_encoding)
        plans.append({"lang": lang, "plan": p, "chars": len(text), "too_long": p.segments > cfg.sms.max_segments})
    # Members whose language has no text get the default text.
    for lang, n in rp.sms_by_language.items():
        text = filled.get(lang, default)
        if text:
            sms_parts += n * plan(text, cfg.sms.smart_encoding).segments
    missing = [lang for lang in rp.per_language if lang not in filled]
    est = store.estimate(cfg, sms_parts, rp.per_channel.get(ChannelKind.VOICE.value, 0),
                         c.category if c.category in CATEGORIES else None)
    cap, ahead, eta = est.capacity, est.ahead, est.seconds
    quiet = ""
    if c.category == Category.PREVENTION:
        from gatewayd.model import utcnow
        from gatewayd.schedule import in_quiet_hours
        if in_quiet_hours(utcnow(), cfg.dispatch.quiet_hours, cfg.dispatch.timezone):
            quiet = cfg.dispatch.quiet_hours
    # Can the SIMs' remaining fair-use quotas carry it? (A drill uses none, but says what a real one would meet.)
    quota = queries.quota_check(cfg, store, sms_parts, c.category) if sms_parts else None
    return {"recipients": rp, "plans": plans, "sms_parts": sms_parts, "missing_languages": missing,
            "eta": eta, "capacity": cap, "ahead": ahead, "default_lang": next(iter(filled), "nl"),
            "quiet_hours": quiet, "needs_approval": c.category in cfg.dispatch.approval_categories,
            "drill": c.drill, "quota": quota, "escalation": _escalation_preview(c)}


def _escalation_preview(c: Compose):
    """What the escalation policy may add ("up to 12 calls if SMS are not delivered within 5 min")."""
    from gatewayd.escalation import escalate_after, plan
    cfg, store = get_cfg(), get_store()
    if c.correct_id is not None or escalate_after(cfg.dispatch, c.category) is None:
        return None
    rows, _counts, _skipped = store.planned_messages(c.network_ids, c.channel if c.channel in CHANNEL_MODES
                                                     else AlertChannel.MEMBER.value, c.parent_id)
    return plan(cfg.dispatch, c.category, rows)


def _compose_context(c: Compose) -> dict:
    store = get_store()
    nets = queries.networks(store, g.user.network_ids)
    tpls = queries.templates(store)
    parent = queries.alert(store, c.parent_id) if c.parent_id is not None and "parent_id" not in c.errors else None
    original = queries.alert(store, c.correct_id) if c.correct_id is not None else None
    return {"c": c, "networks": nets, "templates": tpls, "parent": parent, "original": original,
            "templates_data": {t.key: {"category": t.category, "texts": t.texts} for t in tpls},
            "template_fields": {t.key: fields_of(t.texts) for t in tpls}, "ui_lang": _ui_lang(),
            "error_targets": _error_targets(c, nets, tpls),
            "categories": [x for x in CATEGORIES if x in g.user.send_categories]}


def _error_targets(c: Compose, nets, tpls) -> dict[str, str]:
    """Error key -> the id of the input it concerns, so the error summary can link to (and focus) it."""
    targets = {"channel": "channel", "drill": "drill"}
    targets.update({f"text_{lang}": f"text_{lang}" for lang in LANGUAGES})
    if nets:
        targets["networks"] = f"net_{nets[0].id}"
    cats = [x for x in CATEGORIES if x in g.user.send_categories]
    if cats:
        targets["category"] = f"cat_{c.category if c.category in cats else cats[0]}"
    targets.update({f"field_{f.index}": f"field_{c.template}_{f.index}"
                    for t in tpls if t.key == c.template for f in fields_of(t.texts)})
    return targets


# ---------------------------------------------------------------------- start page
@bp.get("/")
def home():
    """Start page: one button per template for senders, recent alerts, device summary."""
    store = get_store()
    scope = None if g.user.is_admin else g.user.network_ids
    tpls = [t for t in queries.templates(store)
            if t.category in g.user.send_categories and t.category != Category.FEEDBACK]
    devices = queries.device_quotas(get_cfg(), store, store.devices())
    return render_template("home.html", templates=tpls, alerts=queries.recent_alerts(store, scope, 10),
                           devices=devices, queue=store.queue_depth())


@bp.get("/alerts")
def index():
    scope = None if g.user.is_admin else g.user.network_ids
    return render_template("alerts.html", alerts=queries.recent_alerts(get_store(), scope, 200))


# ---------------------------------------------------------------------- compose
@bp.route("/alerts/new", methods=["GET", "POST"])
def compose():
    """The compose form. GET takes ?category=&template=&parent= to start from; POST redisplays (edit)."""
    if not g.user.can_send:
        abort(403)
    if request.method == "POST":
        c = parse_compose(request.form)
        # Redisplay for editing: only an unusable parent alert is worth saying now.
        c.errors = {k: v for k, v in c.errors.items() if k in ("parent_id", "correct_id")}
        if "parent_id" in c.errors:
            c.parent_id = None
    else:
        c = Compose(category=request.args.get("category", ""), template=request.args.get("template", ""),
                    parent_id=_int(request.args.get("parent")), correct_id=_int(request.args.get("correct")),
                    drill=request.args.get("drill") == "1" or get_cfg().dispatch.drill)
        if c.correct_id is not None:
            original = _load_alert(c.correct_id)
            _prepare_correction(c)
            c.texts = dict(original.texts or {}) or {"nl": original.text}
            if c.category not in g.user.send_categories:
                abort(403)
            return render_template("compose.html", **_compose_context(c))
        if c.parent_id is not None:
            c.category = Category.FEEDBACK.value
            c.drill = c.drill or bool(_load_alert(c.parent_id).drill)   # 404 unless it exists and is in scope
        tpl = queries.template_by_key(get_store(), c.template) if c.template else None
        if tpl is not None:
            c.texts = dict(tpl.texts)
            c.category = c.category or tpl.category
        if c.category not in g.user.send_categories:
            c.category = g.user.send_categories[0] if c.category else ""
        if len(g.user.network_ids) == 1 and c.parent_id is None:
            c.network_ids = list(g.user.network_ids)   # one network in scope: nothing to choose
    return render_template("compose.html", **_compose_context(c))


# A compose form holds at most four texts of MAX_TEXT characters (4 bytes each in UTF-8, 3 bytes
# of %XX per byte once form-encoded) and a few short fields: anything bigger is refused (413)
# before it is even parsed, so a 2 MB "preview" costs nothing.
MAX_COMPOSE_BYTES = len(LANGUAGES) * MAX_TEXT * 4 * 3 + 16 * 1024


COMPOSE_ENDPOINTS = frozenset({"alerts.preview", "alerts.confirm", "alerts.send"})


def limit_compose_body() -> None:
    """before_request, ahead of the CSRF check (which reads the form): compose forms are small."""
    if request.endpoint in COMPOSE_ENDPOINTS:
        request.max_content_length = MAX_COMPOSE_BYTES


@bp.post("/alerts/preview")
def preview():
    """The live preview fragment for the compose form (fetched by compose.js)."""
    if not g.user.can_send:
        abort(403)
    c = parse_compose(request.form)
    # No text yet is no error here (the panel already says to write one); a text the send would refuse is.
    text_errors = [msg for key, msg in c.errors.items() if key.startswith("text")] if any(c.texts.values()) else []
    if text_errors:
        # The send would refuse these texts: say so, and plan nothing for them.
        return render_template("_preview.html", p=None, c=c, text_error=text_errors[0])
    # Preview what can be previewed even while the form is incomplete.
    allowed = [i for i in c.network_ids if i in g.user.network_ids]
    c.network_ids = allowed
    if not allowed and c.parent_id is None and c.correct_id is None:
        return render_template("_preview.html", p=None, c=c)
    if "parent_id" in c.errors or "correct_id" in c.errors:
        return render_template("_preview.html", p=None, c=c)
    return render_template("_preview.html", p=build_preview(c), c=c)


@bp.post("/alerts/confirm")
def confirm():
    """Validate and restate what will happen; nothing is written yet."""
    if not g.user.can_send:
        abort(403)
    c = parse_compose(request.form)
    if c.errors:
        return render_template("compose.html", **_compose_context(c)), 400
    edited, untouched = ([str(LANGUAGE_NAMES[lang]) for lang in langs] for langs in template_as_it_was(c))
    return render_template("confirm.html", c=c, p=build_preview(c), token=_confirm_tokens().issue(g.user.id, c),
                           edited=edited, untouched=untouched,
                           parent=queries.alert(get_store(), c.parent_id) if c.parent_id is not None else None,
                           original=queries.alert(get_store(), c.correct_id) if c.correct_id is not None else None)


@bp.post("/alerts/send")
def send():
    """Enqueue the confirmed alert (one transaction) and audit it; then show its status."""
    if not g.user.can_send:
        abort(403)
    c = parse_compose(request.form)
    if c.errors:
        return render_template("compose.html", **_compose_context(c)), 400
    token = request.form.get("confirm_token") or ""
    sent = _sent_tokens()
    with sent.lock:
        earlier = sent.get(token)
        if earlier is None and not _confirm_tokens().matches(token, g.user.id, c):
            # Not a token this page gave this user for exactly this alert (or it expired).
            c.errors["confirm"] = _("Confirm the alert before sending it: what you send must be what "
                                    "you confirmed.")
            return render_template("compose.html", **_compose_context(c)), 400
        if earlier is None:
            req = c.request
            assert req is not None          # a compose without errors has its request
            try:
                if c.correct_id is not None:
                    result = get_store().correct_alert(c.correct_id, req.text, req.texts, author=g.user.username)
                else:
                    result = get_store().enqueue_alert(req)
            except (InputError, NotFound) as exc:
                c.errors[_FIELD_MAP.get(getattr(exc, "field", "networks"), "networks")] = (
                    form_reason(exc) if isinstance(exc, InputError) else str(exc))
                return render_template("compose.html", **_compose_context(c)), 400
            sent.put(token, result.alert_id)
    if earlier is not None:
        flash(_("This alert was already sent; nothing was sent twice."), "info")
        return redirect(url_for("alerts.view", alert_id=earlier))
    audit(AuditAction.ALERT_CORRECT if c.correct_id is not None else AuditAction.ALERT_SEND,
          {"alert_id": result.alert_id, "category": c.category, "networks": c.network_names,
           "channel": c.channel, "parent_id": c.parent_id, "corrects": c.correct_id, "messages": result.messages,
           "skipped": result.skipped})
    if get_store().alert_status(result.alert_id)["state"] == AlertState.PENDING_APPROVAL.value:
        flash(_("Alert %(id)s waits for a second person's approval; nothing has been sent yet.",
                id=result.alert_id), "info")
    else:
        flash(ngettext("Alert %(id)s queued: %(num)s message.", "Alert %(id)s queued: %(num)s messages.",
                       sum(result.messages.values()), id=result.alert_id),
              "success")
    return redirect(url_for("alerts.view", alert_id=result.alert_id))


# ---------------------------------------------------------------------- status
def status_payload(alert_id: int) -> dict:
    """Counts per state plus what the page needs to say: pending, finished, all sent."""
    st = get_store().alert_status(alert_id)
    counts = st["messages"]
    total = sum(counts.values())
    pending = sum(counts.get(s, 0) for s in PENDING)
    reached = sum(counts.get(s, 0) for s in REACHED_STATES)
    finished = pending == 0 and st["state"] != AlertState.ACTIVE.value
    members = queries.member_progress(get_store(), alert_id)
    # The banner speaks of people ("not everyone was reached"), like the members line beside it: a member
    # on SMS and voice whose SMS went out is reached even if the call failed (the channel line shows that).
    everyone = (members["reached"] == members["total"] if members["total"] else reached == total) and total > 0
    return {"id": alert_id, "state": st["state"], "category": st["category"], "drill": bool(st["drill"]),
            "members": members["total"], "members_reached": members["reached"], "channels": members["channels"],
            "counts": counts, "total": total, "pending": pending,
            "reached": reached, "finished": finished, "all_sent": finished and everyone,
            "quota_warning": _waiting_quota_warning(alert_id, st, counts)}


def _waiting_quota_warning(alert_id: int, st: dict, counts: dict) -> str:
    """While SMS of a (real) alert wait, say so when the SIMs' remaining quotas cannot carry them."""
    if st["drill"] or not any(counts.get(s) for s in WAITING) or st["state"] not in (
            AlertState.ACTIVE.value, AlertState.PENDING_APPROVAL.value):
        return ""
    cfg, store = get_cfg(), get_store()
    if not any(m.quota_per_day or m.quota_per_month or m.quota_recipients_per_month for m in cfg.sims):
        return ""       # no SIM has a quota: nothing to count
    needed = queries.pending_sms_segments(cfg, store, alert_id)
    check = queries.quota_check(cfg, store, needed, st["category"]) if needed else None
    return quota_text(check) if check is not None and not check.fits else ""


def quota_text(check) -> str:
    """The page's words for a QuotaCheck that does not fit (QuotaCheck.message() is the core's English)."""
    if check.remaining == float("inf"):
        head = _("The SIMs' fair-use quotas allow %(left)s more SMS segments today; this needs %(needed)s.",
                 left=_("unlimited"), needed=check.needed)
    else:
        head = ngettext("The SIMs' fair-use quotas allow %(num)s more SMS segment today; this needs %(needed)s.",
                        "The SIMs' fair-use quotas allow %(num)s more SMS segments today; this needs %(needed)s.",
                        int(check.remaining), needed=check.needed)
    if check.sends_anyway:
        tail = _("It is urgent and urgent alerts may exceed the quota here: it goes out anyway, "
                 "at the risk of the operator blocking a SIM.")
    else:
        tail = _("The rest waits until the quotas allow it, or expires.")
    return f"{head} {tail}"


@bp.get("/alerts/<int:alert_id>")
def view(alert_id: int):
    a = _load_alert(alert_id)
    page = _int(request.args.get("page"), 1)
    state = request.args.get("state", "")
    store = get_store()
    scope = None if g.user.is_admin else g.user.network_ids
    recips = queries.recipients_page(store, alert_id, page, mask=not g.user.is_admin, state=state, scope=scope)
    corrects = None          # this alert is the correction of that one (which links back here)
    if a.parent_id is not None:
        parent = queries.alert(store, a.parent_id)
        if parent.superseded_by == a.id:
            corrects = parent.id
    from gatewayd.escalation import escalate_after
    after = escalate_after(get_cfg().dispatch, a.category)
    escalation = ({"minutes": after.total_seconds() / 60, "queued": store.escalated_count(alert_id)}
                  if after is not None else None)
    callbacks = store.callbacks_of(alert_id)
    if not g.user.is_admin:
        # A recipient outside one's networks is never named, not even redacted.
        hidden = queries.members_outside_scope(store, [c["number"] for c in callbacks], scope)
        callbacks = [{**c, "number": redact(c["number"])} for c in callbacks if c["number"] not in hidden]
    return render_template("alert.html", a=a, s=status_payload(alert_id), recips=recips, state_filter=state,
                           corrects=corrects, callbacks=callbacks, escalation=escalation,
                           drill=queries.drill_report(get_cfg(), store, alert_id) if a.drill else None,
                           can_cancel=can_cancel(a), can_approve=can_approve(a),
                           can_correct=a.category in g.user.send_categories and a.superseded_by is None
                           and a.state != AlertState.PENDING_APPROVAL.value and covers(a),
                           can_feedback=Category.FEEDBACK.value in g.user.send_categories and covers(a),
                           shown_networks=[n for n in a.networks if scope is None or n.id in scope])


@bp.app_template_filter("localtime")
def localtime(dt):
    """A stored UTC time (or its ISO text, as the devices view carries it) in the box's configured time zone
    ([dispatch].timezone, e.g. Europe/Brussels)."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(ZoneInfo(get_cfg().dispatch.timezone))


@bp.get("/alerts/<int:alert_id>/status.json")
def status_json(alert_id: int):
    _load_alert(alert_id)
    return jsonify(status_payload(alert_id))


@bp.post("/alerts/<int:alert_id>/cancel")
def cancel(alert_id: int):
    a = _load_alert(alert_id)
    if not can_cancel(a):
        abort(403)
    if request.form.get("confirmed") != "1":
        # Ask once, with the figures: what stops now and what has already left (and cannot be recalled).
        counts = get_store().alert_status(alert_id)["messages"]
        will_stop = sum(counts.get(s, 0) for s in CANCELLABLE_STATES)
        ended = (MessageState.FAILED.value, MessageState.EXPIRED.value, MessageState.CANCELLED.value)
        left = sum(counts.values()) - will_stop - sum(counts.get(s, 0) for s in ended)
        return render_template("cancel.html", a=a, will_stop=will_stop, left=left)
    n = get_store().cancel_alert(alert_id, g.user.username)
    audit(AuditAction.ALERT_CANCEL, {"alert_id": alert_id, "cancelled": n})
    flash(ngettext("%(num)s message that had not gone yet was cancelled.",
                   "%(num)s messages that had not gone yet were cancelled.", n), "info")
    return redirect(url_for("alerts.view", alert_id=alert_id))


@bp.post("/alerts/<int:alert_id>/approve")
def approve(alert_id: int):
    """Release an alert waiting for approval (a second person, never its author)."""
    a = _load_alert(alert_id)
    if not can_approve(a):
        abort(403)
    try:
        get_store().approve_alert(alert_id, g.user.username)
    except InputError as exc:
        flash(form_reason(exc), "error")
        return redirect(url_for("alerts.view", alert_id=alert_id))
    audit(AuditAction.ALERT_APPROVE, {"alert_id": alert_id, "author": a.author})
    flash(_("Alert %(id)s approved: it is going out.", id=alert_id), "success")
    return redirect(url_for("alerts.view", alert_id=alert_id))
