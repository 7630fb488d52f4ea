"""Inbox: replies and member reports, linked to the alert they answer; mark handled."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gatewayd.errors import NotFound
from gatewayd.model import AuditAction

from . import get_store
from . import queries as Q
from .auth import audit

bp = Blueprint("inbox", __name__)


def _scope():
    return None if g.user.is_admin else g.user.network_ids


def _unlinked() -> bool:
    """Police also read texts from unknown numbers (a resident not yet a member reporting something)."""
    return g.user.role == "police"


@bp.get("/inbox")
def index():
    show_all = request.args.get("all") == "1"
    page_no = Q.to_int(request.args.get("page"), 1)
    page = Q.inbox(get_store(), _scope(), not show_all, page_no, include_unlinked=_unlinked())
    return render_template("inbox.html", page=page, show_all=show_all, mask=not g.user.is_admin)


@bp.post("/inbox/<int:inbound_id>/handled")
def handled(inbound_id: int):
    store = get_store()
    try:
        Q.inbound_in_scope(store, inbound_id, _scope(), include_unlinked=_unlinked())
    except NotFound:
        abort(404)
    done = request.form.get("handled", "1") == "1"
    store.mark_handled(inbound_id, g.user.username, done)
    audit(AuditAction.INBOX_HANDLED if done else AuditAction.INBOX_REOPENED, {"inbound_id": inbound_id})
    flash(_("Marked as handled.") if done else _("Marked as open."), "info")
    return redirect(url_for("inbox.index"))
