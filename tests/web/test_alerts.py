"""Compose -> preview -> confirm -> send, status, cancel, feedback."""
from __future__ import annotations

from sqlalchemy import func, select

from gatewayd.model import Alert, AuditAction, AuditEntry, Message

from .conftest import csrf_token, login_as, network_id


def compose_form(client, world, text="Inbraak in de Lindestraat", network="Lindeknoppen", category="urgent", **extra):
    form = {"csrf_token": csrf_token(client), "networks": [str(network_id(world, network))],
            "category": category, "channel": "member", "text_nl": text}
    form.update(extra)
    return form


def alert_count(store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(Alert))


def confirm_token(html: str) -> str:
    import re
    return re.search(r'name="confirm_token" value="([^"]+)"', html).group(1)


def test_start_page_links_each_urgent_template_to_compose(police):
    html = police.get("/").get_data(as_text=True)
    assert 'href="/alerts/new?category=urgent&amp;template=burglary"' in html


def test_compose_from_template_fills_text_and_single_network(police, world):
    world.add_network("Alleen", zone="Zone Solo")
    html = police.get("/alerts/new?category=urgent&template=burglary").get_data(as_text=True)
    assert "BIN-alarm: inbraak in [straat]" in html


def test_compose_preselects_the_only_network_in_scope(client, world):
    world.add_user("solo", "correct-horse-battery", "police", zone="Zone Zuid")
    login_as(client, world, "solo")
    html = client.get("/alerts/new?category=urgent").get_data(as_text=True)
    nid = network_id(world, "Zuidrand")
    assert f'value="{nid}" checked' in html


def test_preview_shows_recipients_and_segments(police, world):
    form = compose_form(police, world, text="x" * 161)
    html = police.post("/alerts/preview", data=form).get_data(as_text=True)
    assert 'id="pv-members">2<' in html
    assert 'id="segments-nl">2 segments<' in html


def test_preview_shows_ucs2_for_text_outside_gsm_alphabet(police, world):
    form = compose_form(police, world, text="Let op ✓")
    html = police.post("/alerts/preview", data=form).get_data(as_text=True)
    assert "UCS-2" in html


def test_preview_lists_smart_encoding_replacements(police, world):
    # Long enough that the look-alikes save a segment (smart encoding only applies then).
    form = compose_form(police, world, text="Citroën “gestolen” in de Lindestraat. " + "x" * 80)
    html = police.post("/alerts/preview", data=form).get_data(as_text=True)
    assert "<code>ë</code>&rarr;<code>e</code>" in html


def test_preview_counts_opted_out_members_as_not_addressed(police, world):
    world.set_opt_out("+32470123456", True)
    html = police.post("/alerts/preview", data=compose_form(police, world)).get_data(as_text=True)
    assert 'id="pv-members">1<' in html


def test_confirm_restates_and_writes_nothing(police, world):
    resp = police.post("/alerts/confirm", data=compose_form(police, world))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "2 members of Lindeknoppen" in html or "2 leden" in html
    assert alert_count(world) == 0


def test_send_after_confirm_queues_one_message_per_recipient(police, world):
    form = compose_form(police, world)
    token = confirm_token(police.post("/alerts/confirm", data=form).get_data(as_text=True))
    resp = police.post("/alerts/send", data={**form, "confirm_token": token})
    assert resp.status_code == 302
    with world.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 2


def test_send_is_audited_with_the_alert_id(police, world):
    form = compose_form(police, world)
    token = confirm_token(police.post("/alerts/confirm", data=form).get_data(as_text=True))
    police.post("/alerts/send", data={**form, "confirm_token": token})
    with world.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.ALERT_SEND.value))
    assert entry.actor == "agent" and entry.detail["alert_id"] == 1


def test_double_send_of_one_confirmation_sends_once(police, world):
    form = compose_form(police, world)
    token = confirm_token(police.post("/alerts/confirm", data=form).get_data(as_text=True))
    police.post("/alerts/send", data={**form, "confirm_token": token})
    police.post("/alerts/send", data={**form, "confirm_token": token})
    assert alert_count(world) == 1


def test_send_without_confirmation_is_refused(police, world):
    resp = police.post("/alerts/send", data=compose_form(police, world))
    assert resp.status_code == 400 and alert_count(world) == 0


def test_four_clicks_from_start_page(client, world):
    """Start -> template button (1) -> tick network (2) -> preview and confirm (3) -> send (4)."""
    login_as(client, world, "agent")
    start = client.get("/").get_data(as_text=True)
    assert "/alerts/new?category=urgent&amp;template=burglary" in start                       # click 1
    page = client.get("/alerts/new?category=urgent&template=burglary").get_data(as_text=True)
    assert 'value="urgent" checked' in page
    form = compose_form(client, world, text="BIN-alarm: inbraak in Lindestraat")            # click 2 (network)
    confirm = client.post("/alerts/confirm", data=form).get_data(as_text=True)              # click 3
    resp = client.post("/alerts/send", data={**form, "confirm_token": confirm_token(confirm)})  # click 4
    assert resp.status_code == 302 and alert_count(world) == 1


def _send(client, world, **kw):
    form = compose_form(client, world, **kw)
    token = confirm_token(client.post("/alerts/confirm", data=form).get_data(as_text=True))
    resp = client.post("/alerts/send", data={**form, "confirm_token": token})
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def test_status_json_counts_messages_per_state(police, world):
    alert_id = _send(police, world)
    data = police.get(f"/alerts/{alert_id}/status.json").get_json()
    assert data["counts"] == {"queued": 2} and data["finished"] is False


def test_alert_page_masks_numbers_for_non_admins(police, world):
    alert_id = _send(police, world)
    html = police.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert "+32470****56" in html and "+32470123456" not in html


def test_alert_page_shows_full_numbers_to_admin(client, world):
    login_as(client, world, "agent")
    alert_id = _send(client, world)
    login_as(client, world, "admin")
    assert "+32470123456" in client.get(f"/alerts/{alert_id}").get_data(as_text=True)


def test_cancel_cancels_what_has_not_gone(police, world):
    alert_id = _send(police, world)
    police.post(f"/alerts/{alert_id}/cancel", data={"csrf_token": csrf_token(police), "confirmed": "1"})
    assert police.get(f"/alerts/{alert_id}/status.json").get_json()["counts"] == {"cancelled": 2}


def test_feedback_goes_to_the_parent_recipients(police, world):
    parent = _send(police, world)
    form = {"csrf_token": csrf_token(police), "category": "feedback", "channel": "member",
            "text_nl": "Daders opgepakt, bedankt.", "parent_id": str(parent)}
    token = confirm_token(police.post("/alerts/confirm", data=form).get_data(as_text=True))
    resp = police.post("/alerts/send", data={**form, "confirm_token": token})
    child = int(resp.headers["Location"].rsplit("/", 1)[1])
    with world.session() as s:
        numbers = set(s.scalars(select(Message.number).where(Message.alert_id == child)))
    assert numbers == {"+32470123456", "+32471223344"}


def test_feedback_compose_page_names_the_parent(police, world):
    parent = _send(police, world)
    html = police.get(f"/alerts/new?parent={parent}").get_data(as_text=True)
    assert f'name="parent_id" value="{parent}"' in html


def test_preview_estimates_time_from_device_capacity(police, world):
    """600 SMS/min on sim1 (latency 0.01 s, default rate 600/min): 2 SMS take well under a minute."""
    html = police.post("/alerts/preview", data=compose_form(police, world)).get_data(as_text=True)
    assert 'id="pv-eta">under a minute<' in html


def test_login_redirect_keeps_the_page_asked_for(client):
    resp = client.get("/alerts/5")
    assert resp.headers["Location"].endswith("/login?next=/alerts/5")


def test_text_needing_more_segments_than_allowed_is_refused(police, world):
    form = compose_form(police, world, text="✓" * 500)      # UCS-2: 8 segments > max_segments 6
    resp = police.post("/alerts/confirm", data=form)
    assert resp.status_code == 400 and 'id="error-text_nl"' in resp.get_data(as_text=True)


def test_long_text_is_fine_for_voice_only(police, world):
    form = compose_form(police, world, text="✓" * 500, channel="voice")
    assert police.post("/alerts/confirm", data=form).status_code == 200


def test_preview_warns_prevention_waits_in_quiet_hours(client, world, tmp_path, template_db):
    import shutil

    from web import create_app

    from .conftest import make_cfg
    db = tmp_path / "q.db"
    shutil.copy(template_db, db)
    cfg = make_cfg(db)
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo
    now = datetime.now(ZoneInfo(cfg.dispatch.timezone))
    window = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=1)):%H:%M}"   # quiet right now
    cfg = type(cfg)(**{**cfg.__dict__, "dispatch": type(cfg.dispatch)(quiet_hours=window)})
    app = create_app(cfg, world)
    c = app.test_client()
    login_as(c, world, "agent")
    html = c.post("/alerts/preview", data=compose_form(c, world, category="prevention")).get_data(as_text=True)
    assert 'id="pv-quiet"' in html


def test_change_from_confirm_page_keeps_what_was_written(police, world):
    form = compose_form(police, world, text="Eigen tekst van de agent")
    html = police.post("/alerts/new", data=form).get_data(as_text=True)
    assert ">Eigen tekst van de agent</textarea>" in html


def test_edit_with_unknown_parent_is_a_form_error_not_a_crash(police, world):
    form = compose_form(police, world, parent_id="999", category="feedback")
    resp = police.post("/alerts/new", data=form)
    assert resp.status_code == 200 and 'id="error-parent_id"' in resp.get_data(as_text=True)


# ---------------------------------------------------------------------- four-eyes approval, correction
def _approval_app(tmp_path, template_db, world):
    import shutil

    from web import create_app

    from .conftest import make_cfg
    db = tmp_path / "a.db"
    shutil.copy(template_db, db)
    cfg = make_cfg(db)
    cfg = type(cfg)(**{**cfg.__dict__, "dispatch": type(cfg.dispatch)(quiet_hours="",
                                                                      approval_categories=("urgent",))})
    world.policy = cfg.dispatch
    world.add_user("agent2", "correct-horse-battery", "police", zone="Zone Noord")
    return create_app(cfg, world)


def test_confirm_says_a_second_person_must_approve(tmp_path, template_db, world):
    c = _approval_app(tmp_path, template_db, world).test_client()
    login_as(c, world, "agent")
    html = c.post("/alerts/confirm", data=compose_form(c, world)).get_data(as_text=True)
    assert 'id="needs-approval"' in html


def test_author_cannot_approve_own_alert(tmp_path, template_db, world):
    c = _approval_app(tmp_path, template_db, world).test_client()
    login_as(c, world, "agent")
    aid = _send(c, world)
    assert c.post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)}).status_code == 403


def test_second_officer_approves_and_it_goes_out(tmp_path, template_db, world):
    c = _approval_app(tmp_path, template_db, world).test_client()
    login_as(c, world, "agent")
    aid = _send(c, world)
    assert world.alert_status(aid)["state"] == "pending_approval"
    login_as(c, world, "agent2")
    c.post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)})
    assert world.alert_status(aid)["state"] == "active"


def test_correction_goes_to_who_received_the_original(police, world):
    from sqlalchemy import update as sql_update
    aid = _send(police, world)
    with world.engine.begin() as conn:   # one of the two already went out, the other is still queued
        conn.execute(sql_update(Message).where(Message.number == "+32470123456").values(state="sent"))
    form = {"csrf_token": csrf_token(police), "correct_id": str(aid), "text_nl": "Correctie: Kerkstraat"}
    token = confirm_token(police.post("/alerts/confirm", data=form).get_data(as_text=True))
    resp = police.post("/alerts/send", data={**form, "confirm_token": token})
    new_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    with world.session() as s:
        numbers = list(s.scalars(select(Message.number).where(Message.alert_id == new_id)))
    assert numbers == ["+32470123456"]


def test_correction_compose_prefills_the_original_text(police, world):
    aid = _send(police, world, text="Oorspronkelijke tekst")
    html = police.get(f"/alerts/new?correct={aid}").get_data(as_text=True)
    assert ">Oorspronkelijke tekst</textarea>" in html and f'name="correct_id" value="{aid}"' in html


def test_preview_counts_segments_with_sender_and_time_first(tmp_path, template_db):
    # 150 characters fit one SMS; "Zone Noord 14:05: " in front makes two, and the preview says so.
    import shutil

    from gatewayd.db import make_engine
    from gatewayd.store import Store
    from tests.web.conftest import login_as, make_cfg
    from web import create_app
    db = tmp_path / "h.db"
    shutil.copy(template_db, db)
    cfg = make_cfg(db, dispatch={"sender_first": True})
    store = Store(make_engine(cfg.database.url), cfg.dispatch)
    app = create_app(cfg, store)
    app.config["TESTING"] = True
    client = login_as(app.test_client(), store, "agent")
    html = client.post("/alerts/preview", data=compose_form(client, store, text="x" * 150)).get_data(as_text=True)
    store.engine.dispose()
    assert 'id="segments-nl">2 segments<' in html


def _client_with(tmp_path, template_db, **dispatch):
    import shutil

    from gatewayd.db import make_engine
    from gatewayd.store import Store
    from tests.web.conftest import login_as, make_cfg
    from web import create_app
    db = tmp_path / "e.db"
    shutil.copy(template_db, db)
    cfg = make_cfg(db, dispatch=dispatch)
    store = Store(make_engine(cfg.database.url), cfg.dispatch)
    app = create_app(cfg, store)
    app.config["TESTING"] = True
    return login_as(app.test_client(), store, "agent"), store


def test_preview_says_what_escalation_may_add(tmp_path, template_db):
    client, store = _client_with(tmp_path, template_db, escalate_after_minutes_urgent=5.0)
    html = client.post("/alerts/preview", data=compose_form(client, store)).get_data(as_text=True)
    store.engine.dispose()
    assert 'id="pv-escalation"' in html and "if SMS are not delivered within 5 min" in html


def test_preview_without_an_escalation_policy_says_nothing_of_it(police, world):
    html = police.post("/alerts/preview", data=compose_form(police, world)).get_data(as_text=True)
    assert 'id="pv-escalation"' not in html


def test_alert_page_shows_the_escalation_policy(tmp_path, template_db):
    from gatewayd.store import AlertRequest
    client, store = _client_with(tmp_path, template_db, escalate_after_minutes_urgent=5.0)
    a = store.enqueue_alert(AlertRequest(networks=("Lindeknoppen",), category="urgent", text="Inbraak.",
                                         author="agent")).alert_id
    html = client.get(f"/alerts/{a}").get_data(as_text=True)
    store.engine.dispose()
    assert 'id="escalation"' in html and "After 5 min the other channel: 0 calls and 0 SMS queued so far." in html
