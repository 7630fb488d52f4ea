"""Corrections on the page: who the correction reaches, what of the original is cancelled, the links between them."""
from __future__ import annotations

import re

from sqlalchemy import select

from gatewayd.model import AuditAction, AuditEntry, Message

from .conftest import PASSWORD, csrf_token, login_as
from .scenarios import correct, deliver, send


def test_correction_reaches_exactly_who_had_the_original(half_sent):
    c, store, aid, numbers = half_sent
    new = correct(c, aid)
    with store.session() as s:
        got = set(s.scalars(select(Message.number).where(Message.alert_id == new)))
    assert got == set(numbers[:2])


def test_correction_cancels_the_original_where_it_had_not_gone(half_sent):
    c, store, aid, numbers = half_sent
    correct(c, aid)
    with store.session() as s:
        states = dict(s.execute(select(Message.number, Message.state).where(Message.alert_id == aid)).all())
    assert states == {numbers[0]: "sent", numbers[1]: "sending", numbers[2]: "cancelled"}


def test_correction_confirm_names_how_many_had_the_original(half_sent):
    c, store, aid, numbers = half_sent
    form = {"csrf_token": csrf_token(c), "correct_id": str(aid), "text_nl": "Correctie"}
    html = c.post("/alerts/confirm", data=form).get_data(as_text=True)
    assert "to the 2 members who already received it" in html


def test_original_page_links_to_its_correction(half_sent):
    c, store, aid, _ = half_sent
    new = correct(c, aid)
    html = c.get(f"/alerts/{aid}").get_data(as_text=True)
    assert re.search(rf'id="superseded">[^<]*<a href="/alerts/{new}">', html)


def test_correction_page_links_to_the_original(half_sent):
    c, store, aid, _ = half_sent
    new = correct(c, aid)
    html = c.get(f"/alerts/{new}").get_data(as_text=True)
    assert re.search(rf'id="corrects">[^<]*<a href="/alerts/{aid}">', html)


def test_corrected_alert_offers_no_second_correction(half_sent):
    c, store, aid, _ = half_sent
    correct(c, aid)
    assert 'id="correct"' not in c.get(f"/alerts/{aid}").get_data(as_text=True)


def test_correction_is_audited_with_the_original(half_sent):
    c, store, aid, _ = half_sent
    new = correct(c, aid)
    with store.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.ALERT_CORRECT.value))
    assert entry.actor == "agent" and entry.detail["alert_id"] == new and entry.detail["corrects"] == aid


def test_correction_of_a_category_needing_approval_says_so_on_confirm(make):
    c, store = make(dispatch={"approval_categories": ["urgent"]})
    store.add_user("agent2", PASSWORD, "police", zone="Zone Noord")
    login_as(c, store, "agent")
    aid = send(c, store)
    login_as(c, store, "agent2")
    c.post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)})
    deliver(store)
    login_as(c, store, "agent")
    form = {"csrf_token": csrf_token(c), "correct_id": str(aid), "text_nl": "Correctie"}
    html = c.post("/alerts/confirm", data=form).get_data(as_text=True)
    assert 'id="needs-approval"' in html
