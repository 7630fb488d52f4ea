"""Feedback, corrections and cancels reach every recipient of the alert they follow, so they need
all of its networks in scope; recipients outside one's networks are never named; the confirm step
is bound to what was previewed (issue 11, point 2)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gatewayd.model import Alert, Message
from gatewayd.store import AlertRequest
from web import queries as Q

from .conftest import csrf_token, login_as, network_id
from .test_admin_api import new_token
from .test_alerts import alert_count, compose_form, confirm_token


@pytest.fixture
def shared_alert(world):
    """An urgent alert to Lindeknoppen (zone Noord, the agent's) and Zuidrand (zone Zuid, not theirs)."""
    return world.enqueue_alert(AlertRequest(networks=("Lindeknoppen", "Zuidrand"), category="urgent",
                                            text="Inbraak", author="zuid-officer")).alert_id


@pytest.fixture
def own_alert(world):
    return world.enqueue_alert(AlertRequest(networks=("Lindeknoppen",), category="urgent", text="Inbraak",
                                            author="agent")).alert_id


def messages(world, alert_id) -> int:
    with world.session() as s:
        return s.scalar(select(func.count()).select_from(Message).where(Message.alert_id == alert_id))


def feedback_form(client, world, parent):
    return {"csrf_token": csrf_token(client), "category": "feedback", "channel": "member", "parent_id": str(parent),
            "text_nl": "Alles is weer rustig"}


def test_feedback_to_an_alert_partly_outside_scope_is_refused(police, world, shared_alert):
    form = feedback_form(police, world, shared_alert)
    assert police.post("/alerts/confirm", data=form).status_code == 400
    before = alert_count(world)
    resp = police.post("/alerts/send", data={**form, "confirm_token": "x" * 32})
    assert resp.status_code == 400 and alert_count(world) == before
    assert "networks outside yours" in resp.get_data(as_text=True)


def test_feedback_to_an_alert_fully_in_scope_goes_out(police, world, own_alert):
    form = feedback_form(police, world, own_alert)
    token = confirm_token(police.post("/alerts/confirm", data=form).get_data(as_text=True))
    resp = police.post("/alerts/send", data={**form, "confirm_token": token})
    assert resp.status_code == 302
    feedback = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert messages(world, feedback) == messages(world, own_alert)


def test_cancel_of_an_alert_partly_outside_scope_is_refused(police, world, shared_alert):
    resp = police.post(f"/alerts/{shared_alert}/cancel", data={"csrf_token": csrf_token(police)})
    assert resp.status_code == 403
    assert world.alert_status(shared_alert)["messages"] == {"queued": 3}


def test_correction_of_an_alert_partly_outside_scope_is_refused(police, world, shared_alert):
    form = {"csrf_token": csrf_token(police), "correct_id": str(shared_alert), "text_nl": "Verbetering"}
    assert police.post("/alerts/confirm", data=form).status_code == 400
    with world.session() as s:
        assert s.get(Alert, shared_alert).superseded_by is None


def test_the_alert_page_offers_no_follow_up_it_would_refuse(police, world, shared_alert):
    html = police.get(f"/alerts/{shared_alert}").get_data(as_text=True)
    assert 'id="feedback"' not in html and 'id="correct"' not in html


def test_the_alert_page_never_names_recipients_outside_scope(police, world, shared_alert):
    html = police.get(f"/alerts/{shared_alert}").get_data(as_text=True)
    assert "An Peeters" in html                    # Lindeknoppen: the agent's
    assert "Zoë" not in html and "Zuidrand" not in html
    assert 'id="hidden-recipients"' in html


def test_admins_see_every_recipient(admin, world, shared_alert):
    html = admin.get(f"/alerts/{shared_alert}").get_data(as_text=True)
    assert "Zoë" in html and 'id="hidden-recipients"' not in html


def test_recipients_page_counts_who_it_leaves_out(world, shared_alert):
    page = Q.recipients_page(world, shared_alert, 1, mask=True, scope=(network_id(world, "Lindeknoppen"),))
    assert (page.total, page.hidden) == (2, 1)


def test_api_feedback_needs_the_whole_parent_in_the_tokens_zone(admin, world, shared_alert):
    token = new_token(admin, zone="Zone Noord")
    resp = admin.post("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"},
                      json={"category": "feedback", "text": "Rustig", "parent_id": shared_alert})
    assert resp.status_code == 403 and resp.get_json()["field"] == "parent_id"
    assert alert_count(world) == 1


def test_api_feedback_in_zone_goes_out(admin, world, own_alert):
    token = new_token(admin, zone="Zone Noord")
    resp = admin.post("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"},
                      json={"category": "feedback", "text": "Rustig", "parent_id": own_alert})
    assert resp.status_code == 201


# ---------------------------------------------------------------------- the confirm token
def test_any_string_is_no_confirm_token(police, world):
    resp = police.post("/alerts/send", data={**compose_form(police, world), "confirm_token": "A" * 40})
    assert resp.status_code == 400 and alert_count(world) == 0


def test_the_token_is_bound_to_the_confirmed_text(police, world):
    form = compose_form(police, world)
    token = confirm_token(police.post("/alerts/confirm", data=form).get_data(as_text=True))
    changed = {**form, "text_nl": "Iets heel anders dan bevestigd", "confirm_token": token}
    assert police.post("/alerts/send", data=changed).status_code == 400 and alert_count(world) == 0


def test_the_token_is_bound_to_the_confirmed_networks(police, world):
    form = compose_form(police, world)
    token = confirm_token(police.post("/alerts/confirm", data=form).get_data(as_text=True))
    more = {**form, "networks": [str(network_id(world, "Lindeknoppen")), str(network_id(world, "Kerkwijk"))],
            "confirm_token": token}
    assert police.post("/alerts/send", data=more).status_code == 400 and alert_count(world) == 0


def test_the_token_is_bound_to_the_user(app, world):
    agent = login_as(app.test_client(), world, "agent")
    form = compose_form(agent, world)
    token = confirm_token(agent.post("/alerts/confirm", data=form).get_data(as_text=True))
    world.add_user("agent2", "correct-horse-battery", "police", zone="Zone Noord")
    other = login_as(app.test_client(), world, "agent2")
    resp = other.post("/alerts/send", data={**compose_form(other, world), "confirm_token": token})
    assert resp.status_code == 400 and alert_count(world) == 0


def test_the_confirmed_alert_is_sent_once(police, world):
    form = compose_form(police, world)
    token = confirm_token(police.post("/alerts/confirm", data=form).get_data(as_text=True))
    first = police.post("/alerts/send", data={**form, "confirm_token": token})
    again = police.post("/alerts/send", data={**form, "confirm_token": token})
    assert first.status_code == again.status_code == 302 and alert_count(world) == 1


def test_approval_of_an_alert_partly_outside_scope_is_refused(police, world, shared_alert):
    """Approving releases the alert to every recipient: a four-eyes approver must be someone who may
    send it to all of them, not an officer of one of its networks."""
    from sqlalchemy import update

    from gatewayd.model import AlertState
    with world.session.begin() as s:      # the alert as it waits for a second person (zone Zuid wrote it)
        s.execute(update(Alert).where(Alert.id == shared_alert).values(state=AlertState.PENDING_APPROVAL.value))
    resp = police.post(f"/alerts/{shared_alert}/approve", data={"csrf_token": csrf_token(police)})
    assert resp.status_code == 403
    assert world.alert_status(shared_alert)["state"] == AlertState.PENDING_APPROVAL.value
    assert 'action="/alerts/%d/approve"' % shared_alert not in police.get(f"/alerts/{shared_alert}").get_data(
        as_text=True)


def test_the_alert_page_shows_no_callback_of_a_recipient_outside_scope(police, world, shared_alert):
    """Who called back about an alert is about its recipients: one outside the officer's networks is
    not shown, not even redacted."""
    from datetime import datetime, timezone

    from gatewayd.phone import redact
    at = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)
    zoe, an = world.member_by_number("+32473998877"), world.member_by_number("+32470123456")
    world.record_callback("voice0", zoe.phone, zoe.id, [shared_alert], at, "ack")
    world.record_callback("voice0", an.phone, an.id, [shared_alert], at, "ack")
    html = police.get(f"/alerts/{shared_alert}").get_data(as_text=True)
    assert redact(an.phone) in html
    assert redact(zoe.phone) not in html


def test_a_reply_from_a_recipient_outside_scope_stays_out_of_the_inbox(police, world, shared_alert):
    """Zoë (Zuidrand, zone Zuid) answers an alert that also went to zone Noord: zone Noord's officer
    does not get her name, her text or (on reveal) her full number."""
    from gatewayd.model import utcnow
    zoe = world.member_by_number("+32473998877")
    iid = world.record_inbound("sim1", zoe.phone, "Ik zag twee mannen", "report", utcnow(), zoe.id, shared_alert)
    html = police.get("/inbox").get_data(as_text=True)
    assert "Zoë" not in html and "Ik zag twee mannen" not in html
    assert police.post(f"/inbox/{iid}/number", data={"csrf_token": csrf_token(police)}).status_code == 404
