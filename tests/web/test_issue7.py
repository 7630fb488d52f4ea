"""The page's side of issue 7: drills, SIM quotas in the preview / status / devices pages,
four-eyes approval and corrections. State is driven through the real store (claim/complete)."""
from __future__ import annotations

import re
import shutil
from datetime import timedelta

import pytest
from sqlalchemy import select

from gatewayd.channels.base import DeviceHealth, DeviceState, Outcome
from gatewayd.db import make_engine
from gatewayd.model import Alert, AuditEntry, Message, utcnow
from gatewayd.store import Store
from web import create_app

from .conftest import PASSWORD, csrf_token, login_as, make_cfg
from .test_alerts import compose_form, confirm_token

# One modem whose SIM may send one segment a day: two members never fit.
TIGHT_SIM = [{"name": "modem1", "port": "/dev/null", "quota_per_day": 1}]


@pytest.fixture
def make(tmp_path, template_db):
    """make(**cfg) -> (client, store) over a fresh copy of the test world with that config."""
    made = []

    def _make(**cfg_kw):
        db = tmp_path / f"w{len(made)}.db"
        shutil.copy(template_db, db)
        cfg = make_cfg(db, **cfg_kw)
        store = Store(make_engine(cfg.database.url), cfg.dispatch)
        made.append(store)
        app = create_app(cfg, store)
        app.config["TESTING"] = True
        return app.test_client(), store

    yield _make
    for s in made:
        s.engine.dispose()


def send(client, store, **kw) -> int:
    form = compose_form(client, store, **kw)
    token = confirm_token(client.post("/alerts/confirm", data=form).get_data(as_text=True))
    resp = client.post("/alerts/send", data={**form, "confirm_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def deliver(store, device="sim1", now=None, segments=1):
    """The dispatcher's two steps for one message: claim it, record it sent."""
    claimed = store.claim("sms", device, "test", now=now)
    assert claimed is not None
    store.complete(claimed, device, Outcome.sent(segments=segments), now=now)
    return claimed


def is_drill(store, alert_id) -> bool:
    with store.session() as s:
        return s.get(Alert, alert_id).drill


# ---------------------------------------------------------------------- drill: compose, confirm, send
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


# ---------------------------------------------------------------------- drill mode from config
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


# ---------------------------------------------------------------------- drill: marked everywhere
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


# ---------------------------------------------------------------------- drill report
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


# ---------------------------------------------------------------------- quotas
def test_preview_warns_when_the_sims_quota_cannot_carry_the_alert(make):
    c, store = make(modems=TIGHT_SIM, emulated=[])
    login_as(c, store, "agent")
    html = c.post("/alerts/preview", data=compose_form(c, store)).get_data(as_text=True)
    assert re.search(r'id="pv-quota"[^>]*>[^<]*allow 1 more SMS segments today; this needs 2\.', html)


def test_preview_says_the_rest_waits_when_urgent_may_not_exceed(make):
    c, store = make(modems=TIGHT_SIM, emulated=[])
    login_as(c, store, "agent")
    html = c.post("/alerts/preview", data=compose_form(c, store)).get_data(as_text=True)
    assert "The rest waits until the quotas allow it" in html and "goes out anyway" not in html


def test_preview_says_urgent_goes_anyway_when_allowed(make):
    c, store = make(modems=TIGHT_SIM, emulated=[], dispatch={"urgent_may_exceed_quota": True})
    login_as(c, store, "agent")
    html = c.post("/alerts/preview", data=compose_form(c, store)).get_data(as_text=True)
    assert "it goes out anyway" in html


def test_preview_of_prevention_waits_even_when_urgent_may_exceed(make):
    c, store = make(modems=TIGHT_SIM, emulated=[], dispatch={"urgent_may_exceed_quota": True})
    login_as(c, store, "agent")
    html = c.post("/alerts/preview", data=compose_form(c, store, category="prevention")).get_data(as_text=True)
    assert 'id="pv-quota"' in html and "goes out anyway" not in html


def test_preview_is_quiet_when_the_quota_suffices(make):
    c, store = make(modems=[{"name": "modem1", "port": "/dev/null", "quota_per_day": 350}], emulated=[])
    login_as(c, store, "agent")
    html = c.post("/alerts/preview", data=compose_form(c, store)).get_data(as_text=True)
    assert 'id="pv-quota"' not in html


def test_preview_counts_what_the_sim_already_sent_today(make):
    c, store = make(modems=[{"name": "modem1", "port": "/dev/null", "quota_per_day": 3}], emulated=[])
    login_as(c, store, "agent")
    send(c, store)
    deliver(store, device="modem1")
    deliver(store, device="modem1")       # 2 of 3 used: 1 left, the next alert needs 2
    html = c.post("/alerts/preview", data=compose_form(c, store)).get_data(as_text=True)
    assert "allow 1 more SMS segments today; this needs 2." in html


def test_confirm_repeats_the_quota_warning(make):
    c, store = make(modems=TIGHT_SIM, emulated=[])
    login_as(c, store, "agent")
    html = c.post("/alerts/confirm", data=compose_form(c, store)).get_data(as_text=True)
    assert 'id="confirm-quota"' in html


def test_status_page_warns_while_messages_wait_for_quota(make):
    c, store = make(modems=TIGHT_SIM, emulated=[])
    login_as(c, store, "agent")
    aid = send(c, store)
    html = c.get(f"/alerts/{aid}").get_data(as_text=True)
    assert re.search(r'<p class="banner warn" id="quota-warning">[^<]*this needs 2\.', html)


def test_status_json_carries_the_quota_warning_for_the_live_page(make):
    c, store = make(modems=TIGHT_SIM, emulated=[])
    login_as(c, store, "agent")
    aid = send(c, store)
    assert "this needs 2." in c.get(f"/alerts/{aid}/status.json").get_json()["quota_warning"]


def test_status_quota_warning_ends_when_nothing_waits(make):
    c, store = make(modems=TIGHT_SIM, emulated=[])
    login_as(c, store, "agent")
    aid = send(c, store)
    c.post(f"/alerts/{aid}/cancel", data={"csrf_token": csrf_token(c), "confirmed": "1"})
    assert c.get(f"/alerts/{aid}/status.json").get_json()["quota_warning"] == ""


def test_devices_page_shows_a_modems_quota_counters(make):
    c, store = make(modems=[{"name": "modem1", "port": "/dev/null", "quota_per_day": 2, "quota_per_month": 100,
                             "quota_recipients_per_month": 50}], emulated=[])
    login_as(c, store, "agent")
    send(c, store)
    deliver(store, device="modem1")
    store.record_device("modem1", "sms", "test", DeviceHealth(DeviceState.UP, signal=20, registered=True))
    html = c.get("/devices").get_data(as_text=True)
    cell = re.search(r'<td class="quota" id="quota-modem1">(.*?)</td>', html, re.S).group(1)
    assert re.sub(r"\s+", " ", cell).strip() == "today 1/2 · this month 1/100 · recipients this month 1/50"


def test_devices_page_marks_an_exhausted_sim(make):
    c, store = make(modems=TIGHT_SIM, emulated=[])
    login_as(c, store, "agent")
    send(c, store)
    deliver(store, device="modem1")
    store.record_device("modem1", "sms", "test", DeviceHealth(DeviceState.UP))
    html = c.get("/devices?fragment=1").get_data(as_text=True)
    assert re.search(r'id="quota-modem1">[^<]*today 1/1.*?quota-exhausted', html, re.S)


def test_devices_page_shows_counters_another_daemon_reported(make):
    c, store = make()
    login_as(c, store, "agent")
    quota = {"day": 7, "day_limit": 350, "month": 9, "month_limit": 10000, "recipients_month": 4,
             "recipients_limit": 250, "exhausted": False}
    store.record_device("far-modem", "sms", "node2", DeviceHealth(DeviceState.UP, detail={"quota": quota}))
    html = c.get("/devices").get_data(as_text=True)
    assert re.search(r'id="quota-far-modem">\s*today 7/350', html)


def test_devices_json_includes_quota_counters(make):
    c, store = make(modems=TIGHT_SIM, emulated=[])
    login_as(c, store, "agent")
    store.record_device("modem1", "sms", "test", DeviceHealth(DeviceState.UP))
    dev = c.get("/devices.json").get_json()["devices"][0]
    assert dev["quota"]["day_limit"] == 1 and dev["quota"]["exhausted"] is False


# ---------------------------------------------------------------------- four-eyes
@pytest.fixture
def approval(make):
    c, store = make(dispatch={"approval_categories": ["urgent"]})
    store.add_user("agent2", PASSWORD, "police", zone="Zone Noord")
    login_as(c, store, "agent")
    return c, store, send(c, store)


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
    assert rows == [("agent", "alert_send"), ("agent2", "alert_approve")]


def test_audit_page_shows_who_approved(approval):
    c, store, aid = approval
    login_as(c, store, "agent2")
    c.post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)})
    login_as(c, store, "admin")
    html = c.get("/audit?action=alert_approve").get_data(as_text=True)
    assert "agent2" in html


def test_approved_alert_page_names_the_approver(approval):
    c, store, aid = approval
    login_as(c, store, "agent2")
    c.post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)})
    html = c.get(f"/alerts/{aid}").get_data(as_text=True)
    assert "<dt>Approved by</dt><dd>agent2</dd>" in html


# ---------------------------------------------------------------------- correction
@pytest.fixture
def half_sent(make):
    """An alert to 3 members: one sent, one in flight (sending), one still queued."""
    c, store = make()
    store.add_member("Lindeknoppen", "0474 55 66 77", "Els Claes")
    login_as(c, store, "agent")
    aid = send(c, store)
    with store.session() as s:
        numbers = list(s.scalars(select(Message.number).where(Message.alert_id == aid).order_by(Message.id)))
    deliver(store)                                           # first: sent
    assert store.claim("sms", "sim1", "test") is not None    # second: in flight
    return c, store, aid, numbers


def correct(c, original, text="Correctie: het was de Kerkstraat"):
    form = {"csrf_token": csrf_token(c), "correct_id": str(original), "text_nl": text}
    token = confirm_token(c.post("/alerts/confirm", data=form).get_data(as_text=True))
    resp = c.post("/alerts/send", data={**form, "confirm_token": token})
    return int(resp.headers["Location"].rsplit("/", 1)[1])


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
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "alert_correct"))
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


def test_correction_of_a_drill_is_a_drill(make):
    c, store = make()
    login_as(c, store, "agent")
    aid = send(c, store, drill="1")
    deliver(store)
    assert is_drill(store, correct(c, aid)) is True


# ---------------------------------------------------------------------- API
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


def test_start_page_says_when_a_sims_quota_is_exhausted(make):
    c, store = make(modems=TIGHT_SIM, emulated=[])
    login_as(c, store, "agent")
    send(c, store)
    deliver(store, device="modem1")
    store.record_device("modem1", "sms", "test", DeviceHealth(DeviceState.UP))
    assert 'modem1: working · <span class="quota-exhausted">quota exhausted</span>' in c.get("/").get_data(as_text=True)


def test_preview_warns_when_the_sims_recipient_quota_is_full(make):
    # The SIM may reach 1 distinct number a month and already did: it takes nothing more,
    # although it has segments left (check_alert alone would say the alert fits).
    c, store = make(modems=[{"name": "modem1", "port": "/dev/null", "quota_recipients_per_month": 1}], emulated=[])
    login_as(c, store, "agent")
    send(c, store)
    deliver(store, device="modem1")
    html = c.post("/alerts/preview", data=compose_form(c, store)).get_data(as_text=True)
    assert "allow 0 more SMS segments today; this needs 2." in html
