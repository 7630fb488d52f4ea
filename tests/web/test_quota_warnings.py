"""SIM fair-use quotas on the page: preview and confirm warnings, the status page while SMS wait, device counters."""
from __future__ import annotations

import re

from gatewayd.channels.base import DeviceHealth, DeviceState

from .conftest import csrf_token, login_as
from .scenarios import TIGHT_SIM, deliver, send
from .test_alerts import compose_form


def test_preview_warns_when_the_sims_quota_cannot_carry_the_alert(make):
    c, store = make(modems=TIGHT_SIM, emulated=[])
    login_as(c, store, "agent")
    html = c.post("/alerts/preview", data=compose_form(c, store)).get_data(as_text=True)
    assert re.search(r'id="pv-quota"[^>]*>[^<]*allow 1 more SMS segment today; this needs 2\.', html)


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
    assert "allow 1 more SMS segment today; this needs 2." in html


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
    cell = re.search(r'<td class="quota"[^>]*id="quota-modem1">(.*?)</td>', html, re.S).group(1)
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
