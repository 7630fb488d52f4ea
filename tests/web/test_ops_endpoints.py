"""/healthz and /metrics: served without a login, nothing personal in them."""
from __future__ import annotations

import shutil

import pytest

from gatewayd.channels.base import DeviceHealth, DeviceState
from web import create_app

from .conftest import make_cfg


def test_metrics_are_prometheus_text_without_login(client, world):
    world.record_device("sim1", "sms", "n", DeviceHealth(DeviceState.UP, signal=18))
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    body = r.get_data(as_text=True)
    assert "gatewayd_" in body and "sim1" in body
    assert "+32" not in body                       # no phone numbers


def test_healthz_says_unhealthy_without_a_daemon(client):
    r = client.get("/healthz")
    assert r.status_code == 503 and r.is_json


def test_healthz_is_ok_with_a_device_up_and_a_fresh_heartbeat(client, world):
    world.record_device("sim1", "sms", "n", DeviceHealth(DeviceState.UP, signal=18))
    r = client.get("/healthz")
    assert r.status_code == 200, r.get_json()


def test_other_pages_still_need_a_login(client):
    assert client.get("/devices").status_code == 302


# ---------------------------------------------------------------------- who may read them (issue 11)
TOKEN = "scrape-token-0123456789abcdef"


def stranger(app, ip="203.0.113.9"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def broken_sim(world):
    world.record_device("sim1", "sms", "n", DeviceHealth(DeviceState.UP, signal=18))
    world.record_device("sim2", "sms", "n",
                        DeviceHealth(DeviceState.DOWN, last_error="+CME ERROR: 10 SIM not inserted"))


def test_metrics_refused_to_a_stranger(app, world):
    broken_sim(world)
    resp = stranger(app).get("/metrics")
    assert resp.status_code == 403 and "gatewayd_queue_depth" not in resp.get_data(as_text=True)


def test_healthz_tells_a_stranger_only_up_degraded_or_down(app, world):
    broken_sim(world)
    resp = stranger(app).get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "degraded"}
    assert "SIM not inserted" not in resp.get_data(as_text=True)


def test_healthz_down_for_a_stranger_is_a_503_without_details(app):
    resp = stranger(app).get("/healthz")
    assert resp.status_code == 503 and resp.get_json() == {"status": "down"}


def test_loopback_reads_everything(client, world):
    broken_sim(world)
    body = client.get("/healthz").get_json()
    assert body["status"] == "degraded" and body["devices"]["sim2"]["last_error"].startswith("+CME")


@pytest.fixture
def token_app(tmp_path, template_db, world):
    db = tmp_path / "t.db"
    shutil.copy(template_db, db)
    return create_app(make_cfg(db, metrics_token=TOKEN, metrics_allow=["10.9.0.0/16"]), world)


def test_the_metrics_token_opens_them_from_anywhere(token_app, world):
    broken_sim(world)
    who = stranger(token_app)
    assert who.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert "devices" in who.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
    assert who.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 403


def test_the_allow_list_is_the_configured_one(token_app, world):
    assert stranger(token_app, "10.9.4.2").get("/metrics").status_code == 200
    assert stranger(token_app, "127.0.0.1").get("/metrics").status_code == 403
