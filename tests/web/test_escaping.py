"""HTML/script in any stored text field is shown escaped, never executed."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from gatewayd.model import AlertTemplate, AuditAction, Member, Network, User, utcnow
from gatewayd.store import AlertRequest

from .conftest import login_as

EVIL = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;"


def assert_escaped(html: str):
    assert ESCAPED in html
    assert "<script>alert" not in html


@pytest.fixture
def evil_world(world):
    """Every free-text field of every table holds a script tag."""
    with world.session.begin() as s:
        net = s.scalar(select(Network).where(Network.name == "Lindeknoppen"))
        net.name = "Linde " + EVIL
        net.zone = "Zone Noord"
        m = s.scalar(select(Member).where(Member.phone == "+32470123456"))
        m.name = EVIL
        s.scalar(select(AlertTemplate).where(AlertTemplate.key == "burglary")).title = EVIL
        s.scalar(select(User).where(User.username == "coord")).zone = EVIL
    aid = world.enqueue_alert(AlertRequest(networks=("Linde " + EVIL,), category="urgent", text=EVIL,
                                           texts={"fr": EVIL}, author="agent")).alert_id
    mid = world.member_by_number("+32470123456").id
    world.record_inbound("sim1", "+32470123456", EVIL, "report", utcnow(), mid, aid)
    world.audit(EVIL, AuditAction.LOGIN_FAILED, {"username": EVIL}, "127.0.0.1")
    world.create_token(EVIL, EVIL, "admin")
    from gatewayd.channels.base import DeviceHealth, DeviceState
    world.record_device(EVIL, "sms", EVIL, DeviceHealth(DeviceState.DOWN, last_error=EVIL))
    return world


@pytest.mark.parametrize("path", ["/", "/alerts", "/alerts/1", "/alerts/new?template=burglary&category=urgent",
                                  "/members", "/networks", "/inbox", "/devices",
                                  "/devices?fragment=1"])
def test_police_pages_escape_stored_text(client, evil_world, path):
    login_as(client, evil_world, "agent")
    assert_escaped(client.get(path).get_data(as_text=True))


@pytest.mark.parametrize("path", ["/audit", "/admin/users", "/admin/templates", "/admin/tokens", "/members/1"])
def test_admin_pages_escape_stored_text(client, evil_world, path):
    login_as(client, evil_world, "admin")
    assert_escaped(client.get(path).get_data(as_text=True))


def test_preview_escapes_the_text(client, evil_world):
    from .conftest import csrf_token, network_id
    login_as(client, evil_world, "agent")
    html = client.post("/alerts/preview", data={
        "csrf_token": csrf_token(client), "networks": [str(network_id(evil_world, "Linde " + EVIL))],
        "category": "urgent", "channel": "member", "text_nl": EVIL}).get_data(as_text=True)
    assert_escaped(html)


def test_confirm_page_escapes_the_text_and_network(client, evil_world):
    from .conftest import csrf_token, network_id
    login_as(client, evil_world, "agent")
    html = client.post("/alerts/confirm", data={
        "csrf_token": csrf_token(client), "networks": [str(network_id(evil_world, "Linde " + EVIL))],
        "category": "urgent", "channel": "member", "text_nl": EVIL}).get_data(as_text=True)
    assert_escaped(html)


def test_login_page_escapes_the_username_echoed_back(client):
    import re
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    html = client.post("/login", data={"csrf_token": token, "username": EVIL, "password": "x"}).get_data(as_text=True)
    assert_escaped(html)
