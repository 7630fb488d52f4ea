"""Inbox, admin pages (users, templates, tokens), devices and the HTTP API."""
from __future__ import annotations

import re

from sqlalchemy import select

from gatewayd.model import AlertTemplate, ApiToken, AuditAction, AuditEntry, InboundMessage, User, utcnow
from gatewayd.store import AlertRequest

from .conftest import PASSWORD, csrf_token


# ---------------------------------------------------------------------- inbox
def _inbound(world, network="Lindeknoppen", number="+32470123456", text="Verdachte wagen gezien"):
    aid = world.enqueue_alert(AlertRequest(networks=(network,), category="urgent", text="x")).alert_id
    mid = world.member_by_number(number).id
    return world.record_inbound("sim1", number, text, "report", utcnow(), mid, aid), aid


def test_inbox_shows_report_linked_to_alert(police, world):
    _, aid = _inbound(world)
    html = police.get("/inbox").get_data(as_text=True)
    assert "Verdachte wagen gezien" in html and f'href="/alerts/{aid}"' in html


def test_inbox_hides_reports_outside_scope(coordinator, world):
    _inbound(world)
    assert "Verdachte wagen gezien" not in coordinator.get("/inbox").get_data(as_text=True)


def test_mark_handled(police, world):
    iid, _ = _inbound(world)
    police.post(f"/inbox/{iid}/handled", data={"csrf_token": csrf_token(police), "handled": "1"})
    with world.session() as s:
        row = s.get(InboundMessage, iid)
    assert row.handled and row.handled_by == "agent"


def test_mark_handled_outside_scope_is_not_found(coordinator, world):
    iid, _ = _inbound(world)
    resp = coordinator.post(f"/inbox/{iid}/handled", data={"csrf_token": csrf_token(coordinator)})
    assert resp.status_code == 404


# ---------------------------------------------------------------------- devices, audit
def test_devices_page_shows_queue_depth(police, world):
    world.enqueue_alert(AlertRequest(networks=("Lindeknoppen",), category="urgent", text="x"))
    html = police.get("/devices").get_data(as_text=True)
    assert re.search(r"<dd>2</dd>", html)


def test_audit_page_lists_entries(admin, world):
    world.audit("agent", AuditAction.ALERT_CANCEL, {"alert_id": 7}, "10.0.0.1")
    html = admin.get("/audit").get_data(as_text=True)
    assert AuditAction.ALERT_CANCEL.value in html and "10.0.0.1" in html


def test_audit_page_has_no_write_forms(admin):
    html = admin.get("/audit").get_data(as_text=True)
    assert 'method="post"' not in html.split("<main")[1]


# ---------------------------------------------------------------------- users
def test_admin_creates_user(admin, world):
    admin.post("/admin/users/new", data={"csrf_token": csrf_token(admin), "username": "nieuw", "role": "police",
                                         "zone": "Zone Zuid", "password": PASSWORD})
    with world.session() as s:
        assert s.scalar(select(User.zone).where(User.username == "nieuw")) == "Zone Zuid"


def test_short_password_is_a_form_error(admin):
    resp = admin.post("/admin/users/new", data={"csrf_token": csrf_token(admin), "username": "nieuw",
                                                "role": "police", "password": "kort"})
    assert resp.status_code == 400 and 'id="error-password"' in resp.get_data(as_text=True)


def test_user_change_is_audited(admin, world):
    with world.session() as s:
        uid = s.scalar(select(User.id).where(User.username == "agent"))
    admin.post(f"/admin/users/{uid}", data={"csrf_token": csrf_token(admin), "role": "police", "zone": "Zone Zuid",
                                           "active": "1"})
    with world.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.USER_EDIT.value))
    assert entry.detail["zone"] == "Zone Zuid"


def test_admin_cannot_demote_self(admin, world):
    with world.session() as s:
        uid = s.scalar(select(User.id).where(User.username == "admin"))
    resp = admin.post(f"/admin/users/{uid}", data={"csrf_token": csrf_token(admin), "role": "police",
                                                   "active": "1"})
    assert resp.status_code == 400


# ---------------------------------------------------------------------- templates
def test_admin_edits_template_text(admin, world):
    with world.session() as s:
        tid = s.scalar(select(AlertTemplate.id).where(AlertTemplate.key == "burglary"))
    admin.post(f"/admin/templates/{tid}", data={"csrf_token": csrf_token(admin), "title": "Inbraak",
                                               "category": "urgent", "text_nl": "Nieuwe tekst", "text_de": "Neu"})
    with world.session() as s:
        assert s.get(AlertTemplate, tid).texts == {"nl": "Nieuwe tekst", "de": "Neu"}


def test_template_without_text_is_a_form_error(admin, world):
    with world.session() as s:
        tid = s.scalar(select(AlertTemplate.id).where(AlertTemplate.key == "burglary"))
    resp = admin.post(f"/admin/templates/{tid}", data={"csrf_token": csrf_token(admin), "title": "Inbraak",
                                                      "category": "urgent"})
    assert resp.status_code == 400 and 'id="error-text_nl"' in resp.get_data(as_text=True)


# ---------------------------------------------------------------------- tokens + API
def new_token(client, zone=""):
    html = client.post("/admin/tokens", data={"csrf_token": csrf_token(client), "name": "cloud-fallback",
                                              "zone": zone}).get_data(as_text=True)
    return re.search(r"<code>(gwd_[^<]+)</code>", html).group(1)


def test_token_is_stored_hashed(admin, world):
    token = new_token(admin)
    with world.session() as s:
        stored = s.scalar(select(ApiToken.token_hash))
    assert token not in stored and len(stored) == 64


def test_api_creates_alert(admin, world):
    token = new_token(admin)
    resp = admin.post("/api/v1/alerts", json={"networks": ["Lindeknoppen"], "category": "urgent", "text": "Test"},
                      headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201 and resp.get_json()["messages"] == {"sms": 2, "voice": 0}


def test_api_reads_alert_status(admin, world):
    token = new_token(admin)
    aid = world.enqueue_alert(AlertRequest(networks=("Kerkwijk",), category="urgent", text="x")).alert_id
    resp = admin.get(f"/api/v1/alerts/{aid}", headers={"Authorization": f"Bearer {token}"})
    assert resp.get_json()["messages"] == {"queued": 1}


def test_api_without_token_is_unauthorized(client):
    resp = client.post("/api/v1/alerts", json={"networks": ["Lindeknoppen"], "category": "urgent", "text": "x"})
    assert resp.status_code == 401


def test_api_ignores_a_logged_in_session(admin):
    """Token only: a browser session (and so a CSRF-able cookie) grants nothing on the API."""
    assert admin.get("/api/v1/alerts/1").status_code == 401


def test_revoked_token_is_refused(admin, world):
    token = new_token(admin)
    with world.session() as s:
        tid = s.scalar(select(ApiToken.id))
    admin.post(f"/admin/tokens/{tid}/revoke", data={"csrf_token": csrf_token(admin)})
    assert admin.get("/api/v1/alerts/1", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_api_bad_input_names_the_field(admin):
    token = new_token(admin)
    resp = admin.post("/api/v1/alerts", json={"networks": ["Lindeknoppen"], "category": "loud", "text": "x"},
                      headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 400 and resp.get_json()["field"] == "category"
    # Worded as before issue 13, the categories in the order the forms and --help offer them.
    assert resp.get_json()["error"] == "'loud' is not one of urgent, prevention, feedback"


def test_api_unknown_network_is_not_found_and_sends_nothing(admin, world):
    token = new_token(admin)
    resp = admin.post("/api/v1/alerts", json={"networks": ["Lindeknoppen", "Nergens"], "category": "urgent",
                                              "text": "x"}, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 404 and world.queue_depth()["queued"] == 0


def test_zone_token_cannot_address_other_zone(admin, world):
    token = new_token(admin, zone="Zone Noord")
    resp = admin.post("/api/v1/alerts", json={"networks": ["Zuidrand"], "category": "urgent", "text": "x"},
                      headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403


def test_api_non_json_body_is_bad_request(admin):
    token = new_token(admin)
    resp = admin.post("/api/v1/alerts", data="nope", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 400


# ---------------------------------------------------------------------- bad compose input
def test_compose_without_text_names_the_text_field(police, world):
    from .conftest import network_id
    resp = police.post("/alerts/confirm", data={"csrf_token": csrf_token(police), "category": "urgent",
                                                "networks": [str(network_id(world, "Lindeknoppen"))]})
    assert resp.status_code == 400 and 'id="error-text_nl"' in resp.get_data(as_text=True)


def test_compose_with_too_long_text_names_the_field(police, world):
    from .conftest import network_id
    resp = police.post("/alerts/confirm", data={"csrf_token": csrf_token(police), "category": "urgent",
                                                "networks": [str(network_id(world, "Lindeknoppen"))],
                                                "text_nl": "x", "text_fr": "y" * 1001})
    assert resp.status_code == 400 and 'id="error-text_fr"' in resp.get_data(as_text=True)


def test_compose_with_garbage_network_id_is_a_form_error(police):
    resp = police.post("/alerts/confirm", data={"csrf_token": csrf_token(police), "category": "urgent",
                                                "networks": ["abc"], "text_nl": "x"})
    assert resp.status_code == 400 and 'id="error-networks"' in resp.get_data(as_text=True)


def test_feedback_to_unknown_parent_is_a_form_error(police):
    resp = police.post("/alerts/confirm", data={"csrf_token": csrf_token(police), "category": "feedback",
                                                "parent_id": "999", "text_nl": "x"})
    assert resp.status_code == 400 and 'id="error-parent_id"' in resp.get_data(as_text=True)


def test_unknown_alert_page_is_not_found(police):
    assert police.get("/alerts/999").status_code == 404


def test_police_inbox_shows_texts_from_unknown_numbers(police, world):
    world.record_inbound("sim1", "+32479000000", "Inbreker in mijn tuin!", "report", utcnow(), None, None)
    assert "Inbreker in mijn tuin!" in police.get("/inbox").get_data(as_text=True)


def test_coordinator_inbox_hides_texts_from_unknown_numbers(coordinator, world):
    world.record_inbound("sim1", "+32479000000", "Inbreker in mijn tuin!", "report", utcnow(), None, None)
    assert "Inbreker in mijn tuin!" not in coordinator.get("/inbox").get_data(as_text=True)


def test_oversized_upload_is_answered_with_a_page(coordinator):
    import io
    data = {"csrf_token": csrf_token(coordinator), "file": (io.BytesIO(b"x" * (3 * 1024 * 1024)), "big.csv")}
    resp = coordinator.post("/members/import", data=data, content_type="multipart/form-data")
    assert resp.status_code == 413 and "2 MB" in resp.get_data(as_text=True)


def test_api_retry_with_same_idempotency_key_sends_once(admin, world):
    token = new_token(admin)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "incident-42"}
    body = {"networks": ["Lindeknoppen"], "category": "urgent", "text": "Test"}
    first = admin.post("/api/v1/alerts", json=body, headers=headers).get_json()["id"]
    again = admin.post("/api/v1/alerts", json=body, headers=headers)
    assert again.status_code == 200 and again.get_json()["id"] == first and world.queue_depth()["queued"] == 2


def test_api_different_idempotency_keys_send_twice(admin, world):
    token = new_token(admin)
    body = {"networks": ["Lindeknoppen"], "category": "urgent", "text": "Test"}
    for key in ("a", "b"):
        admin.post("/api/v1/alerts", json=body, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})
    assert world.queue_depth()["queued"] == 4


def test_devices_fragment_is_the_table_only(police):
    html = police.get("/devices?fragment=1").get_data(as_text=True)
    assert 'id="devices"' in html and "<html" not in html


def test_api_huge_parent_id_is_bad_request(admin):
    token = new_token(admin)
    resp = admin.post("/api/v1/alerts", json={"category": "feedback", "text": "x", "parent_id": 10**30},
                      headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 400 and resp.get_json()["field"] == "parent_id"


def test_api_huge_alert_id_is_not_found(admin):
    token = new_token(admin)
    resp = admin.get(f"/api/v1/alerts/{10**30}", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 404


def test_devices_page_shows_each_registration_domain(police, world):
    from gatewayd.channels.base import DeviceHealth, DeviceState
    detail = {"network": "registered", "registration": {"cs": "not registered, not searching", "ps": "not supported",
                                                         "eps": "registered, home network"}}
    world.record_device("lte1", "sms", "n1", DeviceHealth(DeviceState.UP, registered=True, detail=detail))
    unclear = {"network": "registration unclear", "registration": {"cs": "unknown"}}
    world.record_device("odd1", "sms", "n1", DeviceHealth(DeviceState.UP, registered=None, detail=unclear))
    html = police.get("/devices?fragment=1").get_data(as_text=True)
    lte = re.sub(r"\s+", " ", re.search(r'id="registration-lte1">(.*?)</td>', html, re.S).group(1))
    assert lte == "yes<br><small>CS: not registered, not searching · EPS: registered, home network</small>"
    odd = re.search(r'id="registration-odd1">(.*?)</td>', html, re.S).group(1)
    assert odd.startswith("registration unclear") and "CS: unknown" in odd


def test_devices_page_shows_every_node_its_heartbeat_and_its_devices(police, world):
    from datetime import timedelta

    from sqlalchemy import insert

    from gatewayd.channels.base import DeviceHealth, DeviceState
    from gatewayd.model import Node, utcnow
    with world.engine.begin() as c:
        c.execute(insert(Node), [
            {"id": "id-station", "name": "police station", "host": "pi1", "lease_seconds": 30,
             "heartbeat_at": utcnow() - timedelta(seconds=3)},
            {"id": "id-townhall", "name": "town hall", "host": "pi2", "lease_seconds": 30,
             "heartbeat_at": utcnow() - timedelta(seconds=300)}])
    world.record_device("modem1", "sms", "id-station", DeviceHealth(DeviceState.UP))
    world.record_device("modem1", "sms", "id-townhall", DeviceHealth(DeviceState.DOWN))
    html = police.get("/devices").get_data(as_text=True)
    rows = re.findall(r'<tr class="node (\w+)"><td[^>]*>([^<]*)</td><td class="text"[^>]*>([^<]*)</td>.*?</tr>', html,
                      re.S)
    assert [(s, n, i) for s, n, i in rows] == [("running", "police station", "id-station"),
                                               ("silent", "town hall", "id-townhall")]
    assert "modem1 (working)" in html and "modem1 (down)" in html      # the device state's label, as on the start page
    nodes = police.get("/devices.json").get_json()["nodes"]
    assert {n["id"]: n["state"] for n in nodes} == {"id-station": "running", "id-townhall": "silent"}
    assert all(n["heartbeat_age_seconds"] >= 3 for n in nodes)


def test_devices_page_shows_when_a_device_reported_in_local_time(police, world):
    # Every other time on the page is in [dispatch].timezone (Europe/Brussels here); the devices table said UTC.
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from gatewayd.channels.base import DeviceHealth, DeviceState
    world.record_device("modem1", "sms", "test", DeviceHealth(DeviceState.UP))
    updated = world.devices()[0]["updated_at"]
    local = datetime.fromisoformat(updated).replace(tzinfo=timezone.utc).astimezone(ZoneInfo("Europe/Brussels"))
    html = police.get("/devices").get_data(as_text=True)
    assert local.strftime("%Y-%m-%d %H:%M:%S %Z") in html and " UTC" not in html
