"""Login, logout, language switch, and who may do what.

Roles (gatewayd.model.Role):
- police: send any category to the networks of their zone (User.zone == Network.zone);
- coordinator: keep the members of their networks (User.networks); send prevention
  and feedback to them;
- admin: users, devices, templates, API tokens; sees everything, sends nothing
  (an alert always has an accountable officer or coordinator behind it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import wraps

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from gatewayd.model import AuditAction, Category, LoginThrottle, Network, Role, User, utcnow
from gatewayd.passwords import hash_password, needs_rehash, verify_password

from . import LANGUAGES, get_store

bp = Blueprint("auth", __name__)

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=5)
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
        return CurrentUser(user.id, user.username, user.role, user.zone, ids)


def require_login():
    """before_request: every endpoint but the public ones needs a user in the session."""
    if request.endpoint in PUBLIC_ENDPOINTS or (request.endpoint or "").startswith("api."):
        return None
    if request.endpoint is None:          # 404: let the error handler answer
        return None
    user_id = session.get("user_id")
    user = load_user(user_id) if user_id else None
    if user is None:
        session.pop("user_id", None)
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


def _safe_next(target: str | None) -> str:
    """Only local paths: a login link must not bounce the officer to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("alerts.home")


# ---------------------------------------------------------------------- throttling
def _throttle_key(username: str, ip: str) -> str:
    return f"{username.lower()[:80]}|{ip}"


def locked_until(username: str, ip: str):
    """When (UTC) the lock on USERNAME from IP ends, or None when not locked."""
    with get_store().reading() as s:
        row = s.get(LoginThrottle, _throttle_key(username, ip))
        if row and row.locked_until and row.locked_until > utcnow():
            return row.locked_until
    return None


def record_failure(username: str, ip: str) -> bool:
    """Count a failed login; True when this failure locked the account for this address."""
    return get_store().record_login_failure(_throttle_key(username, ip), MAX_FAILURES, LOCK_FOR)


def clear_failures(username: str, ip: str) -> None:
    get_store().clear_login_failures(_throttle_key(username, ip))


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
    """The login form; throttled per username and address, every outcome audited."""
    error = None
    username = ""
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()[:80]
        password = request.form.get("password") or ""
        ip = client_ip()
        until = locked_until(username, ip)
        if until is not None:
            audit(AuditAction.LOGIN_REFUSED_LOCKED, {"username": username}, actor=username)
            error = _("Too many failed attempts. Try again after %(time)s UTC.", time=until.strftime("%H:%M"))
        else:
            user = check_credentials(username, password) if username and password else None
            if user is None:
                locked = record_failure(username, ip)
                audit(AuditAction.LOGIN_FAILED, {"username": username, "locked": locked}, actor=username)
                error = (_("Too many failed attempts. Try again in 5 minutes.") if locked
                         else _("Wrong username or password."))
            else:
                clear_failures(username, ip)
                lang = session.get("lang")
                session.clear()           # a fresh session: nothing carried over from before login
                if lang:
                    session["lang"] = lang
                session["user_id"] = user.id
                session.permanent = True
                audit(AuditAction.LOGIN, {"role": user.role}, actor=user.username)
                return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, username=username), (401 if error else 200)


@bp.post("/logout")
def logout():
    audit(AuditAction.LOGOUT)
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def set_language():
    lang = request.form.get("lang", "")
    if lang in LANGUAGES:
        session["lang"] = lang
    return redirect(_safe_next(request.form.get("next")))
