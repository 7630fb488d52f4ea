"""Four-eyes approval on the page: who may approve, what waits, what the audit log says."""
from __future__ import annotations

from sqlalchemy import select

from gatewayd.model import AuditAction, AuditEntry

from .conftest import PASSWORD, csrf_token, login_as


def test_waiting_alert_shows_waiting_for_approval_to_another_user(approval):
    c, store, aid = approval
    login_as(c, store, "admin")
    assert 'id="pending-approval"' in c.get(f"/alerts/{aid}").get_data(as_text=True)


def test_waiting_alert_is_marked_in_the_alert_list(approval):
    c, store, aid = approval
    login_as(c, store, "agent2")
    assert "waiting for approval</span>" in c.get("/alerts").get_data(as_text=True)


def test_author_gets_no_approve_button(approval):
    c, store, aid = approval
    assert 'id="approve"' not in c.get(f"/alerts/{aid}").get_data(as_text=True)


def test_second_officer_gets_the_approve_button(approval):
    c, store, aid = approval
    login_as(c, store, "agent2")
    assert 'id="approve"' in c.get(f"/alerts/{aid}").get_data(as_text=True)


def test_author_posting_approve_is_refused_and_nothing_goes(approval):
    c, store, aid = approval
    resp = c.post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)})
    assert resp.status_code == 403 and store.alert_status(aid)["state"] == "pending_approval"


def test_user_who_may_not_send_the_category_cannot_approve(approval):
    c, store, aid = approval
    store.add_user("coord2", PASSWORD, "coordinator", networks=("Lindeknoppen",))
    login_as(c, store, "coord2")           # sees the alert (its network) but may not send urgent alerts
    assert c.post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)}).status_code == 403


def test_second_officer_approval_releases_the_messages(approval):
    c, store, aid = approval
    assert store.claim("sms", "sim1", "test") is None     # nothing goes while it waits
    login_as(c, store, "agent2")
    c.post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)})
    assert store.claim("sms", "sim1", "test") is not None


def test_audit_log_records_the_send_and_the_approval(approval):
    c, store, aid = approval
    login_as(c, store, "agent2")
    c.post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)})
    with store.session() as s:
        rows = [(e.actor, e.action) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))
                if isinstance(e.detail, dict) and e.detail.get("alert_id") == aid]
    assert rows == [("agent", AuditAction.ALERT_SEND.value), ("agent2", AuditAction.ALERT_APPROVE.value)]


def test_audit_page_shows_who_approved(approval):
    c, store, aid = approval
    login_as(c, store, "agent2")
    c.post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)})
    login_as(c, store, "admin")
    html = c.get(f"/audit?action={AuditAction.ALERT_APPROVE.value}").get_data(as_text=True)
    assert "agent2" in html


def test_approved_alert_page_names_the_approver(approval):
    c, store, aid = approval
    login_as(c, store, "agent2")
    c.post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)})
    html = c.get(f"/alerts/{aid}").get_data(as_text=True)
    assert "<dt>Approved by</dt><dd>agent2</dd>" in html
