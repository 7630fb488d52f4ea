"""Inbox: replies and member reports, linked to the alert they answer; mark handled."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gatewayd.errors import NotFound
from gatewayd.model import AuditAction, Role

from . import get_store, queries
from .auth import audit

bp = Blueprint("inbox", __name__)


def _scope():
    return None if g.user.is_admin else g.user.network_ids


def _unlinked() -> bool:
    """Police also read texts from unknown numbers (a resident not yet a member reporting something)."""
    return g.user.role == Role.POLICE


def _sees_full_numbers() -> bool:
    """Police call a witness back ("two men behind nr 14"): they may reveal a reporter's number, audited.
    Admins may too, the same way: every full number anyone sees is in the audit log."""
    return g.user.is_admin or g.user.role == Role.POLICE


@bp.app_context_processor
def _unread_badge():
    """The open inbox count beside "Inbox" in the navigation, on every page."""
    user = g.get("user")
    if user is None:
        return {}
    return {"inbox_open": queries.open_inbox_count(get_store(), _scope(), include_unlinked=_unlinked())}


def _render(revealed: int | None = None):
    show_all = request.args.get("all") == "1"
    page_no = queries.to_int(request.args.get("page"), 1)
    page = queries.inbox(get_store(), _scope(), not show_all, page_no, include_unlinked=_unlinked())
    return render_template("inbox.html", page=page, show_all=show_all,
                           can_reveal=_sees_full_numbers(), revealed=revealed)


@bp.get("/inbox")
def index():
    return _render()


@bp.post("/inbox/<int:inbound_id>/number")
def reveal_number(inbound_id: int):
    """Show one reporter's full number to police or an admin (to call back), and record who saw it."""
    if not _sees_full_numbers():
        abort(403)
    try:
        msg = queries.inbound_in_scope(get_store(), inbound_id, _scope(), include_unlinked=_unlinked())
    except NotFound:
        abort(404)
    audit(AuditAction.INBOX_NUMBER_SHOWN, {"inbound_id": inbound_id, "member_id": msg.member_id})
    return _render(revealed=inbound_id)


@bp.post("/inbox/<int:inbound_id>/handled")
def handled(inbound_id: int):
    store = get_store()
    try:
        queries.inbound_in_scope(store, inbound_id, _scope(), include_unlinked=_unlinked())
    except NotFound:
        abort(404)
    done = request.form.get("handled", "1") == "1"
    store.mark_handled(inbound_id, g.user.username, done)
    audit(AuditAction.INBOX_HANDLED if done else AuditAction.INBOX_REOPENED, {"inbound_id": inbound_id})
    flash(_("Marked as handled.") if done else _("Marked as open."), "info")
    # Back to the view it was pressed on ("Show all", page 2), not the open-only first page.
    show_all = request.args.get("all") == "1"
    page_no = queries.to_int(request.args.get("page"), 1)
    return redirect(url_for("inbox.index", all=1 if show_all else None, page=page_no if page_no > 1 else None))
