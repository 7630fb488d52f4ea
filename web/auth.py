"""Login, logout, language switch, and who may do what.

Roles (gatewayd.model.Role):
- police: send any category to the networks of their zone (User.zone == Network.zone);
- coordinator: keep the members of their networks (User.networks); send prevention
  and feedback to them;
- admin: users, devices, templates, API tokens; sees everything, sends nothing
  (an alert always has an accountable officer or coordinator behind it).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from gatewayd.model import AuditAction, Category, Network, Role, User
from gatewayd.passwords import hash_password, needs_rehash, verify_password
from gatewayd.store import throttle

from . import LANGUAGES, get_cfg, get_store

bp = Blueprint("auth", __name__)

# Verified when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password("not-a-real-password-0000")
PUBLIC_ENDPOINTS = {"auth.login", "auth.set_language", "static", "ops.health", "ops.metrics"}
SEND_CATEGORIES = {Role.POLICE.value: (Category.URGENT.value, Category.PREVENTION.value, Category.FEEDBACK.value),
                   Role.COORDINATOR.value: (Category.PREVENTION.value, Category.FEEDBACK.value),
                   Role.ADMIN.value: ()}
ROLE_NAMES = {"police": _l("Police"), "coordinator": _l("Coordinator"), "admin": _l("Administrator")}


@dataclass(frozen=True)
class CurrentUser:
    """The logged-in user as the page needs it, loaded once per request."""

    id: int
    username: str
    role: str
    zone: str
    network_ids: tuple[int, ...]    # the networks this user may address / keep
    session_version: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    @property
    def send_categories(self) -> tuple[str, ...]:
        return SEND_CATEGORIES.get(self.role, ())

    @property
    def can_send(self) -> bool:
        return bool(self.send_categories)

    @property
    def can_edit_members(self) -> bool:
        return self.role in (Role.ADMIN.value, Role.COORDINATOR.value)

    def sees_network(self, network_id: int) -> bool:
        return self.is_admin or network_id in self.network_ids


def load_user(user_id: int) -> CurrentUser | None:
    """The active user USER_ID with the networks in their scope, or None."""
    store = get_store()
    with store.reading() as s:
        user = s.get(User, user_id)
        if user is None or not user.active:
            return None
        if user.role == Role.POLICE.value:
            ids = tuple(s.scalars(select(Network.id).where(Network.zone == user.zone, Network.zone != "")
                                  .order_by(Network.name)))
        elif user.role == Role.ADMIN.value:
            ids = tuple(s.scalars(select(Network.id).order_by(Network.name)))
        else:
            ids = tuple(n.id for n in sorted(user.networks, key=lambda n: n.name))
        return CurrentUser(user.id, user.username, user.role, user.zone, ids, user.session_version or 0)


def bump_session_version(user_id: int) -> None:
    """End every session USER_ID has open, on every browser (they carry the old version)."""
    get_store().bump_session_version(user_id)


def start_session(user: User) -> None:
    """A fresh session for USER: nothing carried over from before the login but the language."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session["user_id"] = user.id
    session["ver"] = user.session_version or 0
    session["since"] = int(time.time())          # the absolute lifetime counts from here
    session.permanent = True                     # idle limit: PERMANENT_SESSION_LIFETIME, renewed per request


def _end_session() -> None:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def _session_user() -> CurrentUser | None:
    """The user of this request's session when it is still valid: same version, within its lifetime."""
    user_id, since = session.get("user_id"), session.get("since")
    if not isinstance(user_id, int) or not isinstance(since, int):
        return None
    if time.time() - since > get_cfg().web.session_hours * 3600 or since > time.time() + 60:
        return None
    user = load_user(user_id)
    if user is None or session.get("ver") != user.session_version:
        return None
    return user


def require_login():
    """before_request: every endpoint but the public ones needs a user in a valid session."""
    if request.endpoint in PUBLIC_ENDPOINTS or (request.endpoint or "").startswith("api."):
        return None
    if request.endpoint is None:          # 404: let the error handler answer
        return None
    user = _session_user()
    if user is None:
        if "user_id" in session:
            _end_session()
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?") if request.method == "GET" else None))
    g.user = user
    return None


def roles_required(*roles: str):
    """Refuse (403) users whose role is not one of ROLES."""
    def deco(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if g.user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return deco


def client_ip() -> str:
    return request.remote_addr or ""


def audit(action: AuditAction, detail: dict | None = None, actor: str | None = None) -> None:
    """Write an audit entry for the current user (or ACTOR) from this request's address."""
    who = actor if actor is not None else (g.user.username if g.get("user") else "")
    get_store().audit(who, action, detail or {}, client_ip())


def template_globals() -> dict:
    return {"current_user": g.get("user"), "languages": LANGUAGES, "role_names": ROLE_NAMES,
            "current_lang": session.get("lang") or g.get("default_language", "nl")}


def _refuse_header_breaking(target: str | None) -> None:
    """A CR or LF in a redirect target is an attack on the Location header: 400, not a redirect."""
    if target and ("\r" in target or "\n" in target):
        abort(400)


def safe_next(target: str | None) -> str:
    """TARGET when it is a path on this site, else the start page.

    Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so
    "/\t/evil.example" would become "//evil.example", another site: any control
    character or whitespace makes the target unusable, as does anything with a scheme
    or a host.
    """
    _refuse_header_breaking(target)
    home = url_for("alerts.home")
    if not target or len(target) > 2000:
        return home
    if any(ch.isspace() or not ch.isprintable() for ch in target) or "\\" in target:
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return home
    return target


def check_credentials(username: str, password: str) -> User | None:
    """The active user with this USERNAME and PASSWORD, or None (constant-ish time)."""
    store = get_store()
    with store.reading() as s:
        user = s.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if needs_rehash(user.password_hash):
        store.rehash_password(user.id, password)
    return user


# ---------------------------------------------------------------------- routes
@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form; throttled per account, per address and per both, every outcome audited."""
    error = None
    username = ""
    _refuse_header_breaking(request.args.get("next"))
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()[:80]
        password = request.form.get("password") or ""
        ip = client_ip()
        refusal = throttle.reserve(get_store(), username, ip)
        if refusal is not None:
            audit(AuditAction.LOGIN_REFUSED_LOCKED, {"username": username, "scope": refusal.scope,
                                           "until": refusal.until.isoformat()}, actor=username)
            error = _("Too many failed attempts. Try again after %(time)s UTC.", time=refusal.until.strftime("%H:%M"))
        else:
            user = check_credentials(username, password) if username and password else None
            if user is None:
                locks = throttle.failed(get_store(), username, ip)
                audit(AuditAction.LOGIN_FAILED, {"username": username, "locked": bool(locks)}, actor=username)
                for lock in locks:
                    audit(AuditAction.LOGIN_LOCKED, {"username": username, "scope": lock.scope,
                                           "until": lock.until.isoformat()}, actor=username)
                error = (_("Too many failed attempts. Try again after %(time)s UTC.",
                           time=max(lk.until for lk in locks).strftime("%H:%M")) if locks
                         else _("Wrong username or password."))
            else:
                throttle.succeeded(get_store(), username, ip)
                start_session(user)
                audit(AuditAction.LOGIN, {"role": user.role}, actor=user.username)
                return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", error=error, username=username), (401 if error else 200)


@bp.post("/logout")
def logout():
    """Log out here and everywhere else: the session version moves on, every old cookie is dead."""
    audit(AuditAction.LOGOUT)
    bump_session_version(g.user.id)
    _end_session()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def set_language():
    lang = request.form.get("lang", "")
    target = safe_next(request.form.get("next"))
    if lang in LANGUAGES:
        session["lang"] = lang
    return redirect(target)
