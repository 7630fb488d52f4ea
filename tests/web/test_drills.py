"""Drills on the page and the API: composed, confirmed, sent, marked and reported; nothing goes on the air.
State is driven through the real store (claim/complete)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from gatewayd.model import utcnow
from gatewayd.outcomes import ChannelKind, DeviceHealth, DeviceState
from web import create_app

from .conftest import csrf_token, login_as, make_cfg
from .scenarios import correct, deliver, is_drill, send
from .test_alerts import compose_form, confirm_token


def test_compose_offers_a_drill_checkbox(make):
    c, store = make()
    login_as(c, store, "agent")
    html = c.get("/alerts/new?category=urgent").get_data(as_text=True)
    assert re.search(r'<input type="checkbox" name="drill" value="1" id="drill"\s*>', html)


def test_confirm_restates_a_ticked_drill(make):
    c, store = make()
    login_as(c, store, "agent")
    html = c.post("/alerts/confirm", data=compose_form(c, store, drill="1")).get_data(as_text=True)
    assert 'id="confirm-drill"' in html and ">Run the drill<" in html


def test_confirm_of_a_real_alert_says_nothing_of_drills(make):
    c, store = make()
    login_as(c, store, "agent")
    html = c.post("/alerts/confirm", data=compose_form(c, store)).get_data(as_text=True)
    assert 'id="confirm-drill"' not in html and ">Send now<" in html


def test_ticked_drill_is_sent_as_a_drill(make):
    c, store = make()
    login_as(c, store, "agent")
    assert is_drill(store, send(c, store, drill="1")) is True


def test_unticked_alert_is_real(make):
    c, store = make()
    login_as(c, store, "agent")
    assert is_drill(store, send(c, store)) is False


def test_change_from_confirm_keeps_the_drill_ticked(make):
    c, store = make()
    login_as(c, store, "agent")
    html = c.post("/alerts/new", data=compose_form(c, store, drill="1")).get_data(as_text=True)
    assert re.search(r'id="drill"\s+checked', html)


def test_feedback_on_a_drill_is_a_drill(make):
    c, store = make()
    login_as(c, store, "agent")
    parent = send(c, store, drill="1")
    form = {"csrf_token": csrf_token(c), "category": "feedback", "channel": "member",
            "text_nl": "Einde oefening.", "parent_id": str(parent)}
    token = confirm_token(c.post("/alerts/confirm", data=form).get_data(as_text=True))
    child = int(c.post("/alerts/send", data={**form, "confirm_token": token}).headers["Location"].rsplit("/", 1)[1])
    assert is_drill(store, child) is True


@pytest.mark.parametrize("path", ["/", "/alerts", "/alerts/new", "/inbox", "/devices", "/members"])
def test_config_drill_mode_is_announced_on_every_page(make, path):
    c, store = make(dispatch={"drill": True})
    login_as(c, store, "agent")
    assert 'id="drill-mode"' in c.get(path).get_data(as_text=True)


def test_no_drill_banner_without_drill_mode(make):
    c, store = make()
    login_as(c, store, "agent")
    assert 'id="drill-mode"' not in c.get("/").get_data(as_text=True)


def test_config_drill_mode_makes_every_alert_a_drill(make):
    c, store = make(dispatch={"drill": True})
    login_as(c, store, "agent")
    assert is_drill(store, send(c, store)) is True      # the form carried no drill field


def test_drill_mode_refuses_to_correct_a_real_alert(make, tmp_path):
    c, store = make()
    login_as(c, store, "agent")
    real = send(c, store)
    deliver(store)
    # The same database, now opened by a page in drill mode.
    cfg = make_cfg(store.engine.url.database, dispatch={"drill": True})
    app = create_app(cfg, store)
    d = app.test_client()
    login_as(d, store, "agent")
    form = {"csrf_token": csrf_token(d), "correct_id": str(real), "text_nl": "Correctie"}
    resp = d.post("/alerts/confirm", data=form)
    assert resp.status_code == 400 and 'id="error-correct_id"' in resp.get_data(as_text=True)


def test_alert_list_marks_drills(make):
    c, store = make()
    login_as(c, store, "agent")
    send(c, store)
    drill = send(c, store, drill="1")
    html = c.get("/alerts").get_data(as_text=True)
    rows = re.findall(r"<tr><td[^>]*><a href=\"/alerts/(\d+)\">.*?</tr>", html, re.S)
    marked = {int(m.group(1)) for m in re.finditer(r'<tr><td[^>]*><a href="/alerts/(\d+)">(?:(?!</tr>).)*badge drill',
                                                 html, re.S)}
    assert len(rows) == 2 and marked == {drill}


def test_status_json_says_drill(make):
    c, store = make()
    login_as(c, store, "agent")
    aid = send(c, store, drill="1")
    assert c.get(f"/alerts/{aid}/status.json").get_json()["drill"] is True


def test_inbox_link_to_a_drill_alert_is_marked(make):
    c, store = make()
    login_as(c, store, "agent")
    aid = send(c, store, drill="1")
    store.record_inbound("sim1", "+32470123456", "Gezien", "report", utcnow(), None, aid)
    html = c.get("/inbox").get_data(as_text=True)
    assert re.search(rf'href="/alerts/{aid}">#{aid}</a> <span class="badge drill"', html)


def test_alert_page_of_a_drill_says_nothing_left(make):
    c, store = make()
    login_as(c, store, "agent")
    aid = send(c, store, drill="1")
    assert 'id="alert-drill"' in c.get(f"/alerts/{aid}").get_data(as_text=True)


def test_drill_report_counts_what_would_have_been_sent(make):
    c, store = make()
    login_as(c, store, "agent")
    aid = send(c, store, drill="1", text="x" * 161)       # 2 members x 2 segments
    html = c.get(f"/alerts/{aid}").get_data(as_text=True)
    assert 'id="dr-sms">2 (4 segments)<' in html and 'id="dr-members">2<' in html


def test_drill_report_estimates_time_with_the_configured_devices(make):
    # 1 modem at 2 SMS/min: 2 members x 2 segments = 4 segments = about 2 minutes.
    c, store = make(modems=[{"name": "modem1", "port": "/dev/null", "sms_per_minute": 2}], emulated=[])
    login_as(c, store, "agent")
    aid = send(c, store, drill="1", text="x" * 161)
    assert 'id="dr-estimate">about 2 minutes<' in c.get(f"/alerts/{aid}").get_data(as_text=True)


def test_drill_report_estimates_with_the_configured_devices_whatever_their_state_now(make):
    """"Time the configured devices would need": the devices the config names, as before issue 13; not
    which of them happens to be down when the report is read (that is the compose preview's business)."""
    c, store = make(modems=[{"name": "modem1", "port": "/dev/null", "sms_per_minute": 2}], emulated=[])
    login_as(c, store, "agent")
    aid = send(c, store, drill="1", text="x" * 161)
    store.record_device("modem1", ChannelKind.SMS.value, "node-a", DeviceHealth(DeviceState.DOWN, last_error="unplugged"))
    assert 'id="dr-estimate">about 2 minutes<' in c.get(f"/alerts/{aid}").get_data(as_text=True)


def test_drill_report_shows_how_long_the_drill_took(make):
    c, store = make()
    login_as(c, store, "agent")
    aid = send(c, store, drill="1")
    t0 = utcnow()
    deliver(store, now=t0)
    deliver(store, now=t0 + timedelta(seconds=4))
    html = c.get(f"/alerts/{aid}").get_data(as_text=True)
    assert 'id="dr-took">4.0 s<' in html and 'id="dr-reached">2 / 2<' in html


def test_drill_report_masks_numbers_for_non_admins(make):
    c, store = make()
    login_as(c, store, "agent")
    aid = send(c, store, drill="1")
    html = c.get(f"/alerts/{aid}").get_data(as_text=True)
    assert "+32470****56" in html and "+32470123456" not in html


def test_real_alert_page_has_no_drill_report(make):
    c, store = make()
    login_as(c, store, "agent")
    aid = send(c, store)
    assert 'id="drill-report"' not in c.get(f"/alerts/{aid}").get_data(as_text=True)


def test_correction_of_a_drill_is_a_drill(make):
    c, store = make()
    login_as(c, store, "agent")
    aid = send(c, store, drill="1")
    deliver(store)
    assert is_drill(store, correct(c, aid)) is True


def test_api_queues_a_drill(make):
    from .test_admin_api import new_token
    c, store = make()
    login_as(c, store, "admin")
    token = new_token(c)
    resp = c.post("/api/v1/alerts", json={"networks": ["Lindeknoppen"], "category": "urgent", "text": "Oefening",
                                          "drill": True}, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201 and is_drill(store, resp.get_json()["id"]) is True


def test_api_refuses_a_drill_that_is_not_a_boolean(make):
    from .test_admin_api import new_token
    c, store = make()
    login_as(c, store, "admin")
    token = new_token(c)
    resp = c.post("/api/v1/alerts", json={"networks": ["Lindeknoppen"], "category": "urgent", "text": "x",
                                          "drill": "yes"}, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 400 and resp.get_json()["field"] == "drill"
