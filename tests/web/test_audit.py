"""The audit log speaks one vocabulary (gatewayd.model.AuditAction), whoever sends."""
import pytest
from sqlalchemy import func, select

from gatewayd.app import send_alert
from gatewayd.model import Alert, AuditAction, AuditEntry
from gatewayd.store import AlertRequest

from .test_alerts import compose_form, confirm_token


def _send_from_the_page(police, world) -> None:
    form = compose_form(police, world)
    token = confirm_token(police.post("/alerts/confirm", data=form).get_data(as_text=True))
    assert police.post("/alerts/send", data={**form, "confirm_token": token}).status_code == 302


def _send_from_the_cli(world) -> None:
    """What `gatewayd alert send` runs (in the daemon through the control socket, or itself)."""
    answer = send_alert(world, {"networks": ["Lindeknoppen"], "category": "urgent", "text": "Van de CLI",
                                "texts": {}, "channel": "member", "author": "cli-user", "parent_id": None,
                                "drill": False})
    assert answer["ok"], answer


def test_page_cli_and_api_sends_are_one_audit_action(police, world):
    _send_from_the_page(police, world)
    _send_from_the_cli(world)
    _, token = world.create_token("ops", "", "admin")
    resp = police.post("/api/v1/alerts", json={"networks": ["Lindeknoppen"], "category": "urgent", "text": "API"},
                       headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "incident-7"})
    assert resp.status_code == 201
    with world.reading() as s:
        rows = s.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.detail).order_by(AuditEntry.id)).all()
    sends = [(actor, action) for actor, action, detail in rows if "alert_id" in detail]
    assert [actor for actor, _ in sends] == ["agent", "cli-user", "api:ops"]
    assert {action for _, action in sends} == {AuditAction.ALERT_SEND.value}


def test_api_duplicate_check_finds_a_send_written_by_the_shared_path(police, world):
    """The API's replay check reads the audit entries `queue_alert` writes for the CLI and the API alike."""
    _, token = world.create_token("ops", "", "admin")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "incident-8"}
    body = {"networks": ["Lindeknoppen"], "category": "urgent", "text": "Eenmaal"}
    first = police.post("/api/v1/alerts", json=body, headers=headers).get_json()["id"]
    _send_from_the_cli(world)                 # an unrelated send in between, same action
    again = police.post("/api/v1/alerts", json=body, headers=headers)
    assert again.status_code == 200 and again.get_json() == {"id": first, "replayed": True}


def test_an_action_outside_the_vocabulary_is_refused(world):
    with pytest.raises(ValueError):
        world.audit("someone", "alert_send", {})


def test_api_replay_check_finds_a_send_recorded_before_the_upgrade(police, world):
    """A box upgraded within a day of an API send keeps that send's audit row as the API spelled it
    then (`alert_send`); the client's retry of the same request must not send the alert twice."""
    _, token = world.create_token("ops", "", "admin")
    sent = world.enqueue_alert(AlertRequest(networks=("Lindeknoppen",), category="urgent", text="Eenmaal",
                                            author="api:ops"))
    with world.session.begin() as s:   # the row as the API wrote it before AuditAction (Store.audit refuses it now)
        s.add(AuditEntry(actor="api:ops", action="alert_send", ip="", detail={
            "alert_id": sent.alert_id, "category": "urgent", "networks": ["Lindeknoppen"],
            "messages": sent.messages, "via": "api", "drill": False, "idempotency_key": "incident-9"}))
    retry = police.post("/api/v1/alerts", json={"networks": ["Lindeknoppen"], "category": "urgent", "text": "Eenmaal"},
                        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "incident-9"})
    assert retry.status_code == 200 and retry.get_json() == {"id": sent.alert_id, "replayed": True}
    with world.reading() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
