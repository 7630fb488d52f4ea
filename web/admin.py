"""Admin: users, alert templates, API tokens; devices and the audit log.

Devices are visible to every role (an officer should see that a modem is down
before sending); everything else here is for admins only.
"""
from __future__ import annotations

import math

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from gatewayd.errors import InputError, NotFound
from gatewayd.model import AuditAction, AuditEntry, Role
from gatewayd.nodes import overview
from gatewayd.store import LANGUAGES

from . import get_cfg, get_store, queries
from .auth import audit, roles_required
from .form_words import form_reason
from .queries import to_int as _int

bp = Blueprint("admin", __name__)
AUDIT_PAGE = 100




# ---------------------------------------------------------------------- devices
@bp.get("/devices")
def devices():
    store = get_store()
    page = "_devices.html" if request.args.get("fragment") else "devices.html"   # devices.js refreshes the fragment
    devices = queries.device_quotas(get_cfg(), store, store.devices())
    return render_template(page, devices=devices, nodes=overview(store, devices), queue=store.queue_depth())


@bp.get("/devices.json")
def devices_json():
    store = get_store()
    devices = queries.device_quotas(get_cfg(), store, store.devices())
    return jsonify({"devices": devices, "nodes": overview(store, devices), "queue": store.queue_depth()})


# ---------------------------------------------------------------------- audit
@bp.get("/audit")
@roles_required(Role.ADMIN)
def audit_log():
    """The audit log, newest first, filterable by actor and action; read-only."""
    actor = (request.args.get("actor") or "").strip()[:80]
    action = (request.args.get("action") or "").strip()[:40]
    store = get_store()
    with store.reading() as s:
        q = select(AuditEntry)
        if actor:
            q = q.where(AuditEntry.actor == actor)
        if action:
            q = q.where(AuditEntry.action == action)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        pages = max(1, math.ceil(total / AUDIT_PAGE))
        page = min(max(1, _int(request.args.get("page"), 1)), pages)
        rows = list(s.scalars(q.order_by(AuditEntry.id.desc()).limit(AUDIT_PAGE).offset((page - 1) * AUDIT_PAGE)))
        actions = list(s.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
    return render_template("audit.html", rows=rows, page=page, pages=pages, total=total, actor=actor,
                           action=action, actions=actions)


# ---------------------------------------------------------------------- users
@bp.get("/admin/users")
@roles_required(Role.ADMIN)
def users():
    return render_template("users.html", users=queries.users(get_store()))


def _user_values(form) -> dict:
    return {"username": (form.get("username") or "").strip(), "role": form.get("role") or "",
            "zone": (form.get("zone") or "").strip(), "password": form.get("password") or "",
            "network_ids": [i for i in (_int(v) for v in form.getlist("networks")) if i is not None],
            "active": form.get("active", "1") == "1"}


def _user_form(v, errors, user=None, status=200):
    return render_template("user_form.html", v=v, errors=errors, user=user, roles=[r.value for r in Role],
                           networks=queries.networks(get_store())), status


@bp.route("/admin/users/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def user_new():
    if request.method == "GET":
        return _user_form({"username": "", "role": Role.POLICE.value, "zone": "", "password": "", "network_ids": [],
                           "active": True}, {})
    v = _user_values(request.form)
    store = get_store()
    names = tuple(n.name for n in queries.networks(store, tuple(v["network_ids"])))
    try:
        user = store.add_user(v["username"], v["password"], v["role"], v["zone"], names)
    except InputError as exc:
        field = {"name": "username"}.get(exc.field, exc.field)
        return _user_form(v, {field: form_reason(exc)}, status=400)
    audit(AuditAction.USER_ADD, {"user": user.username, "role": user.role, "zone": user.zone, "networks": list(names)})
    flash(_("User created."), "success")
    return redirect(url_for("admin.users"))


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def user_edit(user_id: int):
    store = get_store()
    user = next((u for u in queries.users(store) if u.id == user_id), None)
    if user is None:
        abort(404)
    if request.method == "GET":
        return _user_form({"username": user.username, "role": user.role, "zone": user.zone, "password": "",
                           "network_ids": [n.id for n in user.networks], "active": user.active}, {}, user)
    v = _user_values(request.form)
    v["username"] = user.username
    if user.id == g.user.id and (not v["active"] or v["role"] != Role.ADMIN):
        return _user_form(v, {"role": _("You cannot demote or deactivate yourself.")}, user, 400)
    try:
        saved = store.update_user(user_id, v["role"], v["zone"], v["network_ids"], v["active"], v["password"])
    except InputError as exc:
        return _user_form(v, {exc.field: form_reason(exc)}, user, 400)
    if saved.id == g.user.id:
        session["ver"] = saved.session_version   # one's own new password ends the other sessions, not this one
    audit(AuditAction.USER_EDIT, {"user": user.username, "role": v["role"], "zone": v["zone"], "active": v["active"],
                        "networks": v["network_ids"], "password_changed": bool(v["password"])})
    flash(_("User saved."), "success")
    return redirect(url_for("admin.users"))


@bp.post("/admin/users/<int:user_id>/logout")
@roles_required(Role.ADMIN)
def user_logout_everywhere(user_id: int):
    """End every session the user has open, on every device (a lost phone, a shared PC)."""
    from .auth import bump_session_version
    user = next((u for u in queries.users(get_store()) if u.id == user_id), None)
    if user is None:
        abort(404)
    bump_session_version(user_id)
    audit(AuditAction.USER_LOGOUT_EVERYWHERE, {"user": user.username})
    flash(_("%(user)s is logged out everywhere.", user=user.username), "info")
    return redirect(url_for("admin.user_edit", user_id=user_id))


# ---------------------------------------------------------------------- templates
@bp.get("/admin/templates")
@roles_required(Role.ADMIN)
def templates():
    return render_template("templates.html", templates=queries.templates(get_store()))


@bp.route("/admin/templates/<int:template_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def template_edit(template_id: int):
    store = get_store()
    tpl = next((t for t in queries.templates(store) if t.id == template_id), None)
    if tpl is None:
        abort(404)
    v = {"title": tpl.title, "category": tpl.category, **{f"text_{k}": tpl.texts.get(k, "") for k in LANGUAGES}}
    if request.method == "GET":
        return render_template("template_form.html", v=v, errors={}, tpl=tpl, text_languages=LANGUAGES)
    v = {"title": request.form.get("title") or "", "category": request.form.get("category") or "",
         **{f"text_{k}": request.form.get(f"text_{k}") or "" for k in LANGUAGES}}
    try:
        store.update_template(template_id, v["title"], v["category"],
                          {k: v[f"text_{k}"] for k in LANGUAGES}, g.user.username)
    except InputError as exc:
        return render_template("template_form.html", v=v, errors={exc.field: form_reason(exc)}, tpl=tpl,
                               text_languages=LANGUAGES), 400
    audit(AuditAction.TEMPLATE_EDIT, {"template": tpl.key})
    flash(_("Template saved."), "success")
    return redirect(url_for("admin.templates"))


# ---------------------------------------------------------------------- API tokens
@bp.route("/admin/tokens", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def tokens():
    """List tokens; POST creates one and shows it once."""
    store = get_store()
    new_token, errors, v = None, {}, {"name": "", "zone": ""}
    if request.method == "POST":
        v = {"name": request.form.get("name") or "", "zone": request.form.get("zone") or ""}
        try:
            row, new_token = store.create_token(v["name"], v["zone"], g.user.username)
        except InputError as exc:
            errors[exc.field] = form_reason(exc)
        else:
            audit(AuditAction.TOKEN_CREATE, {"token_id": row.id, "name": row.name, "zone": row.zone})
            v = {"name": "", "zone": ""}
    return render_template("tokens.html", tokens=queries.api_tokens(store), new_token=new_token, errors=errors,
                           v=v), (400 if errors else 200)


@bp.post("/admin/tokens/<int:token_id>/revoke")
@roles_required(Role.ADMIN)
def token_revoke(token_id: int):
    try:
        row = get_store().revoke_token(token_id)
    except NotFound:
        abort(404)
    audit(AuditAction.TOKEN_REVOKE, {"token_id": token_id, "name": row.name})
    flash(_("Token revoked."), "info")
    return redirect(url_for("admin.tokens"))
