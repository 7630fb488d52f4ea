"""Members and networks: list, add, edit, deactivate; CSV import with preview.

Coordinators work on the members of their networks, admins on all; police may
look (read-only) at the members of their zone's networks.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from gatewayd.errors import InputError, NotFound
from gatewayd.model import AuditAction, Role
from gatewayd.store import (
    LANGUAGES,
    MEMBER_CHANNELS,
    ImportFailed,
    ImportRow,
    RowError,
    csv_separator,
    foreign_row_error,
    record_line,
)

from . import get_store, import_words, queries
from .auth import audit, roles_required
from .form_words import form_reason
from .queries import to_int as _int

bp = Blueprint("members", __name__)

MAX_CSV_BYTES = 2 * 1024 * 1024


def _scope() -> tuple[int, ...] | None:
    return None if g.user.is_admin else g.user.network_ids




def _require_editor():
    if not g.user.can_edit_members:
        abort(403)


def _member_or_404(member_id: int):
    store = get_store()
    if not queries.member_in_scope(store, member_id, _scope()):
        abort(404)
    try:
        return queries.member(store, member_id)
    except NotFound:
        abort(404)


@bp.get("/members")
def index():
    store = get_store()
    network_id = _int(request.args.get("network"))
    if network_id is not None and not g.user.sees_network(network_id):
        abort(404)
    q = (request.args.get("q") or "").strip()[:100]
    page = queries.member_page(store, _scope(), network_id, q, _int(request.args.get("page"), 1))
    nets = queries.networks(store, _scope())
    return render_template("members.html", page=page, networks=nets, network_id=network_id, q=q)


def _member_form_values(form) -> dict:
    return {"phone": (form.get("phone") or "").strip(), "name": (form.get("name") or "").strip(),
            "channel": (form.get("channel") or "").strip(), "lang": (form.get("lang") or "nl").strip(),
            "network_ids": [i for i in (_int(v) for v in form.getlist("networks")) if i is not None],
            "opted_out": form.get("opted_out") == "1"}


def _render_member_form(values: dict, errors: dict, member=None, status: int = 200):
    return render_template("member_form.html", v=values, errors=errors, member=member,
                           networks=queries.networks(get_store(), _scope()), channels=MEMBER_CHANNELS,
                           member_languages=LANGUAGES), status


@bp.route("/members/new", methods=["GET", "POST"])
def new():
    _require_editor()
    if request.method == "GET":
        nid = _int(request.args.get("network"))
        return _render_member_form({"phone": "", "name": "", "channel": "", "lang": "nl",
                                    "network_ids": [nid] if nid else [], "opted_out": False}, {})
    v = _member_form_values(request.form)
    try:
        m = get_store().save_member(None, v["phone"], v["name"], v["channel"], v["lang"], v["network_ids"],
                          _scope())
    except InputError as exc:
        return _render_member_form(v, {exc.field: import_words.input_reason(exc)}, status=400)
    audit(AuditAction.MEMBER_ADD, {"member_id": m.id, "networks": v["network_ids"]})
    flash(_("Member added."), "success")
    return redirect(url_for("members.index"))


@bp.route("/members/<int:member_id>", methods=["GET", "POST"])
def edit(member_id: int):
    m = _member_or_404(member_id)
    if request.method == "GET":
        v = {"phone": m.phone, "name": m.name, "channel": m.channel, "lang": m.language,
             "network_ids": [n.id for n in m.networks], "opted_out": m.opted_out}
        return _render_member_form(v, {}, member=m)
    _require_editor()
    v = _member_form_values(request.form)
    # An opted-out member's box is not offered (STOP is final): no box means "unchanged".
    opted_out = True if v["opted_out"] else (None if m.opted_out else False)
    try:
        get_store().save_member(member_id, v["phone"], v["name"], v["channel"], v["lang"], v["network_ids"],
                                _scope(), opted_out=opted_out)
    except InputError as exc:
        return _render_member_form(v, {exc.field: import_words.input_reason(exc)}, member=m, status=400)
    audit(AuditAction.MEMBER_EDIT, {"member_id": member_id, "networks": v["network_ids"], "opted_out": v["opted_out"]})
    flash(_("Member saved."), "success")
    return redirect(url_for("members.edit", member_id=member_id))


@bp.post("/members/<int:member_id>/active")
def set_active(member_id: int):
    _require_editor()
    _member_or_404(member_id)
    active = request.form.get("active") == "1"
    try:
        get_store().set_member_active(member_id, active, _scope())
    except InputError as exc:
        flash(import_words.input_reason(exc), "error")
        return redirect(url_for("members.edit", member_id=member_id))
    audit(AuditAction.MEMBER_ACTIVATE if active else AuditAction.MEMBER_DEACTIVATE, {"member_id": member_id})
    flash(_("Member reactivated.") if active else _("Member deactivated: no more alerts."), "info")
    return redirect(url_for("members.edit", member_id=member_id))


# ---------------------------------------------------------------------- CSV import
@bp.route("/members/import", methods=["GET", "POST"])
def import_csv():
    """Step 1 (GET/POST 'preview'): read the file, show rows and per-row errors. Step 2 ('import'): write."""
    _require_editor()
    store = get_store()
    nets = queries.networks(store, _scope())
    if request.method == "GET":
        # One network in scope: nothing to choose, so it is chosen.
        only = nets[0].id if len(nets) == 1 else None
        return render_template("import.html", networks=nets, errors={}, rows=None, row_errors=[], text="",
                               network_id=_int(request.args.get("network")) or only)
    network_id = _int(request.form.get("network"))
    text, errors = _csv_text(), {}
    net = next((n for n in nets if n.id == network_id), None)
    if net is None:
        errors["network"] = _("Choose a network.")
    if not text.strip():
        errors["file"] = _("Choose a CSV file (columns name,phone,channel,lang) or paste its content.")
    rows: list[ImportRow] | None = None
    row_errors: list[RowError] = []
    if not errors:
        try:
            rows, row_errors = store.parse_member_csv(text)
        except InputError as exc:
            errors[exc.field] = import_words.input_reason(exc)
        else:
            foreign = store.foreign_rows(rows, _scope())
            if foreign:
                rows = [r for r in rows if r not in foreign]
                row_errors = row_errors + [foreign_row_error(r) for r in foreign]
    shown = [import_words.row_error(e) for e in row_errors]
    if errors or request.form.get("step") != "import":
        return render_template("import.html", networks=nets, errors=errors, rows=rows, row_errors=shown,
                               text=text, network_id=network_id), (400 if errors else 200)
    assert net is not None          # no network chosen is an error above
    skip_bad = request.form.get("skip_bad") == "1"
    try:
        imported, bad = store.import_members(net.name, text, skip_bad=skip_bad, scope=_scope())
    except ImportFailed as exc:
        return render_template("import.html", networks=nets, errors={"file": import_words.nothing_imported(
            len(exc.errors))}, rows=rows, row_errors=[import_words.row_error(e) for e in exc.errors], text=text,
            network_id=network_id), 400
    except InputError as exc:
        return render_template("import.html", networks=nets, errors={"file": import_words.input_reason(exc)}, rows=rows,
                               row_errors=shown, text=text, network_id=network_id), 400
    audit(AuditAction.MEMBER_IMPORT, {"network": net.name, "imported": imported, "skipped_rows": len(bad)})
    flash(ngettext("%(num)s member imported into %(net)s.", "%(num)s members imported into %(net)s.", imported,
                   net=net.name), "success")
    return redirect(url_for("members.index", network=net.id))


@bp.post("/members/import/bad-rows.csv")
def bad_rows_csv():
    """The rows of an import preview that have errors, as typed, with the error beside: fix them and re-import."""
    import csv
    import io

    from flask import Response
    _require_editor()
    text = request.form.get("text") or ""
    try:
        _rows, row_errors = get_store().parse_member_csv(text)
    except InputError:
        abort(400)
    # The records by the file line the store names them by (record_line); written back with the file's own
    # separator (a semicolon list from Belgian Excel opens there again).
    sep = csv_separator(text)
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    records = {record_line(reader.line_num, r): r for r in reader if r}
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep)
    # Lower case, like the file's own name,phone,… columns; in the page language, like the errors beneath it.
    writer.writerow(next(iter(records.values()), []) + [_("error")])
    for error in row_errors:
        if error.line in records:
            writer.writerow(records[error.line] + [import_words.reason(error)])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=rows-with-errors.csv"})


def _csv_text() -> str:
    """The CSV from the upload, else from the text area (the preview carries it on)."""
    upload = request.files.get("file")
    if upload and upload.filename:
        raw = upload.read(MAX_CSV_BYTES + 1)[:MAX_CSV_BYTES]
        for enc in ("utf-8-sig", "cp1252"):   # Excel on Windows saves cp1252
            try:
                return raw.decode(enc)
            except UnicodeDecodeError:
                continue
    return request.form.get("text") or ""


# ---------------------------------------------------------------------- networks
@bp.get("/networks")
def networks():
    store = get_store()
    nets = queries.networks(store, _scope())
    return render_template("networks.html", networks=nets,
                           counts=queries.network_member_counts(store, tuple(n.id for n in nets)))


@bp.route("/networks/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def network_new():
    return _network_form(None)


@bp.route("/networks/<int:network_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def network_edit(network_id: int):
    return _network_form(network_id)


def _network_form(network_id: int | None):
    store = get_store()
    net = None
    if network_id is not None:
        net = next((n for n in queries.networks(store, (network_id,))), None)
        if net is None:
            abort(404)
    v = {"name": net.name if net else "", "zone": net.zone if net else ""}
    if request.method == "GET":
        return render_template("network_form.html", v=v, errors={}, net=net)
    v = {"name": request.form.get("name") or "", "zone": request.form.get("zone") or ""}
    try:
        saved = store.save_network(network_id, v["name"], v["zone"])
    except InputError as exc:
        return render_template("network_form.html", v=v, errors={exc.field: form_reason(exc)}, net=net), 400
    audit(AuditAction.NETWORK_ADD if network_id is None else AuditAction.NETWORK_EDIT,
          {"network_id": saved.id, "name": saved.name, "zone": saved.zone})
    flash(_("Network saved."), "success")
    return redirect(url_for("members.networks"))
