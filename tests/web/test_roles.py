"""Who may do what: police (zone), coordinator (own networks), admin."""
from __future__ import annotations

import pytest

from .conftest import csrf_token, login_as, network_id


def form(client, world, network, category="urgent"):
    return {"csrf_token": csrf_token(client), "networks": [str(network_id(world, network))],
            "category": category, "channel": "member", "text_nl": "Test"}


@pytest.mark.parametrize("path", ["/audit", "/admin/users", "/admin/templates", "/admin/tokens", "/networks/new"])
@pytest.mark.parametrize("role", ["agent", "coord"])
def test_admin_pages_refuse_other_roles(client, world, role, path):
    login_as(client, world, role)
    assert client.get(path).status_code == 403


def test_police_cannot_send_outside_their_zone(police, world):
    resp = police.post("/alerts/confirm", data=form(police, world, "Zuidrand"))
    assert resp.status_code == 400 and "id=\"error-networks\"" in resp.get_data(as_text=True)


def test_police_compose_lists_only_zone_networks(police):
    html = police.get("/alerts/new").get_data(as_text=True)
    assert "Lindeknoppen" in html and "Zuidrand" not in html


def test_coordinator_cannot_send_urgent(coordinator, world):
    resp = coordinator.post("/alerts/confirm", data=form(coordinator, world, "Kerkwijk", "urgent"))
    assert resp.status_code == 400 and "id=\"error-category\"" in resp.get_data(as_text=True)


def test_coordinator_may_send_prevention_to_own_network(coordinator, world):
    resp = coordinator.post("/alerts/confirm", data=form(coordinator, world, "Kerkwijk", "prevention"))
    assert resp.status_code == 200


def test_coordinator_cannot_send_to_other_network(coordinator, world):
    resp = coordinator.post("/alerts/confirm", data=form(coordinator, world, "Lindeknoppen", "prevention"))
    assert resp.status_code == 400


def test_admin_cannot_compose(admin):
    assert admin.get("/alerts/new").status_code == 403


def test_coordinator_sees_only_own_members(coordinator):
    html = coordinator.get("/members").get_data(as_text=True)
    assert "Kim Janssens" in html and "An Peeters" not in html


def test_coordinator_cannot_open_member_of_other_network(coordinator, world):
    from sqlalchemy import select

    from gatewayd.model import Member
    with world.session() as s:
        mid = s.scalar(select(Member.id).where(Member.name == "Zoë Zuid"))
    assert coordinator.get(f"/members/{mid}").status_code == 404


def test_police_may_not_edit_members(police, world):
    resp = police.post("/members/new", data={"csrf_token": csrf_token(police), "phone": "0475 00 00 01",
                                              "networks": [str(network_id(world, "Lindeknoppen"))]})
    assert resp.status_code == 403


def test_alert_outside_scope_is_not_found(client, world):
    from gatewayd.store import AlertRequest
    aid = world.enqueue_alert(AlertRequest(networks=("Zuidrand",), category="urgent", text="x")).alert_id
    login_as(client, world, "agent")
    assert client.get(f"/alerts/{aid}").status_code == 404


def test_status_json_outside_scope_is_not_found(client, world):
    from gatewayd.store import AlertRequest
    aid = world.enqueue_alert(AlertRequest(networks=("Zuidrand",), category="urgent", text="x")).alert_id
    login_as(client, world, "coord")
    assert client.get(f"/alerts/{aid}/status.json").status_code == 404


def test_coordinator_cannot_cancel_urgent_alert(client, world):
    from gatewayd.store import AlertRequest
    aid = world.enqueue_alert(AlertRequest(networks=("Kerkwijk",), category="urgent", text="x")).alert_id
    login_as(client, world, "coord")
    assert client.post(f"/alerts/{aid}/cancel", data={"csrf_token": csrf_token(client)}).status_code == 403
